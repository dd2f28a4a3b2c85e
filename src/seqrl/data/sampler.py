"""Context windows for the Decision Transformer, sampled with numpy fancy indexing.

Padding side: windows are padded on the RIGHT. A window starts at a uniformly random
transition of the dataset (so episodes are drawn in proportion to their length, as in CORL)
and covers the next K steps; steps past the episode's end are zero-filled and `mask` is False.
With a causal model, right padding means a real position never attends to a padded one, so
padding cannot change any real output, and evaluation can feed shorter contexts unpadded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seqrl.data.trajectories import TrajectoryDataset


@dataclass
class Batch:
    """A batch of context windows. Shapes for B windows of K steps."""

    returns_to_go: np.ndarray | torch.Tensor  # (B, K, 1) scaled returns-to-go
    states: np.ndarray | torch.Tensor  # (B, K, obs_dim) normalised observations; images: (B, K, *obs_shape) uint8
    actions: np.ndarray | torch.Tensor  # (B, K, act_dim) raw actions: float32, or int64 indices (B, K, 1) for Discrete data
    timesteps: np.ndarray | torch.Tensor  # (B, K) int64 position in the episode
    mask: np.ndarray | torch.Tensor  # (B, K) bool, False on padding

    def shard(self, rank: int, world: int) -> "Batch":
        """Process `rank`'s rows of the batch (seqrl.distributed: data-parallel training)."""
        from seqrl.distributed import shard_rows

        return shard_rows(self, rank, world)

    def to_torch(self, device: torch.device | str = "cpu") -> "Batch":
        device = torch.device(device)
        non_blocking = device.type == "cuda"

        def move(x: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(x))
            if non_blocking:
                t = t.pin_memory()
            return t.to(device, non_blocking=non_blocking)

        return Batch(*(move(x) for x in (self.returns_to_go, self.states, self.actions, self.timesteps, self.mask)))


class ContextSampler:
    """Samples (returns-to-go, states, actions, timesteps, mask) windows of length K.

    Observations are normalised with `state_mean`/`state_std` (default: the dataset's own) and
    returns-to-go multiplied by `rtg_scale`, once, up front; sampling is then pure gathering.
    Image observations are neither normalised nor copied: each batch gathers its uint8 stacks
    from the dataset's FrameStore, so nothing bigger than one batch of frames is ever made here
    (and nothing in float: the model's encoder scales them).
    """

    def __init__(
        self,
        dataset: TrajectoryDataset,
        context_len: int,
        *,
        rtg_scale: float = 1.0,
        discount: float = 1.0,
        state_mean: np.ndarray | None = None,
        state_std: np.ndarray | None = None,
    ) -> None:
        if context_len < 1:
            raise ValueError(f"context_len must be >= 1, got {context_len}")
        self.dataset = dataset
        self.context_len = context_len
        # Padded copies with one zero row at the end: out-of-episode positions gather that row,
        # so padding needs no extra masking pass.
        n = dataset.num_transitions
        if dataset.image:
            self._images = dataset.observations
        else:
            self._images = None
            mean = dataset.observation_mean if state_mean is None else np.asarray(state_mean, np.float32)
            std = dataset.observation_std if state_std is None else np.asarray(state_std, np.float32)
            self._states = np.zeros((n + 1, dataset.obs_dim), np.float32)
            self._states[:n] = (dataset.observations - mean) / std
        # The dataset's dtype: float32, or int64 indices for Discrete data (padding is index 0, masked).
        self._actions = np.zeros((n + 1, dataset.act_dim), dataset.actions.dtype)
        self._actions[:n] = dataset.actions
        self._rtg = np.zeros((n + 1, 1), np.float32)
        self._rtg[:n, 0] = dataset.returns_to_go(discount) * rtg_scale
        self._timesteps = np.append(dataset.timesteps, 0)
        self._episode_end = dataset.episode_ends[dataset.episode_index]  # (N,)
        self._offsets = np.arange(context_len)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        starts = rng.integers(0, self.dataset.num_transitions, size=batch_size)  # (B,)
        positions = starts[:, None] + self._offsets[None, :]  # (B, K)
        mask = positions < self._episode_end[starts][:, None]  # (B, K)
        index = np.where(mask, positions, self.dataset.num_transitions)  # padding -> zero row
        if self._images is not None:
            states = self._images[np.minimum(index, self.dataset.num_transitions - 1)]  # (B, K, *shape) uint8
            states[~mask] = 0  # padding, as the vector rows' zero row
        else:
            states = self._states[index]
        return Batch(
            returns_to_go=self._rtg[index],
            states=states,
            actions=self._actions[index],
            timesteps=self._timesteps[index],
            mask=mask,
        )
