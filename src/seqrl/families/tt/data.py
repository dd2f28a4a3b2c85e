"""The Trajectory Transformer's data: transitions as rows of (state, action, reward, value),
discretized per dimension, and windows of them as flat token sequences.

Choices (the authors' code's, each an option on TTConfig):
- the last reward of an episode that ended in a terminal state is replaced by
  `termination_penalty` (-100), so the model learns what falling over costs;
- the value token is V_t = sum_{k > t} discount^(k-t-1) r_k: the reward-to-go from t+1 on, within
  the episode (0 at its last step);
- a window is `sequence_length` transitions starting at any transition (stride 1), taking every
  `step`-th one. Windows running past their episode's end are right-padded, and the padded
  targets are masked out of the loss, which is normalised by the real tokens (the authors'
  averages over padded tokens too).

The layout of one transition is `[s_0 .. s_{n-1}, a_0 .. a_{m-1}, r, V]` (T = n + m + 2 tokens),
and token ids carry per-dimension offsets (`ActionTokenizer`, a per-feature discretizer over
these T columns), so one embedding table serves every dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seqrl.data.tokenizer import ActionTokenizer
from seqrl.data.trajectories import TrajectoryDataset

REWARD_DIM, VALUE_DIM = 1, 1


def transition_rewards(dataset: TrajectoryDataset, termination_penalty: float | None) -> np.ndarray:
    """(N,) float32 rewards with the terminal ones replaced by `termination_penalty` (if given)."""
    rewards = dataset.rewards.astype(np.float32).copy()
    if termination_penalty is not None:
        rewards[dataset.terminations] = termination_penalty
    return rewards


def values_from(rewards: np.ndarray, dataset: TrajectoryDataset, discount: float) -> np.ndarray:
    """(N,) float32 V_t = sum_{k > t} discount^(k-t-1) r_k within each episode."""
    values = np.zeros(len(rewards), np.float64)
    for start, end in zip(dataset.episode_starts, dataset.episode_ends):
        running = 0.0
        for t in range(end - 1, start - 1, -1):  # backwards: V_t = r_{t+1} + discount * V_{t+1}
            values[t] = running
            running = float(rewards[t]) + discount * running
    return values.astype(np.float32)


def joined_transitions(dataset: TrajectoryDataset, discount: float, termination_penalty: float | None) -> np.ndarray:
    """(N, T) float32 rows `[state, action, reward, value]`, one per transition."""
    rewards = transition_rewards(dataset, termination_penalty)
    values = values_from(rewards, dataset, discount)
    return np.concatenate(
        [dataset.observations, dataset.actions, rewards[:, None], values[:, None]], axis=1
    ).astype(np.float32)


def fit_discretizer(joined: np.ndarray, num_bins: int, strategy: str) -> ActionTokenizer:
    """One quantizer per column of `joined`, with per-column token offsets (bins never collapse)."""
    return ActionTokenizer.fit(joined, num_bins, strategy=strategy, shared_range=False)


@dataclass
class TokenBatch:
    """B windows of L transitions as flat token sequences."""

    tokens: np.ndarray | torch.Tensor  # (B, L*T) int64 token ids (with offsets)
    mask: np.ndarray | torch.Tensor  # (B, L*T) bool, False on padding

    def to_torch(self, device: torch.device | str = "cpu") -> "TokenBatch":
        device = torch.device(device)
        return TokenBatch(*(torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in (self.tokens, self.mask)))


class TransitionWindowSampler:
    """Samples windows of `sequence_length` discretized transitions (right-padded, masked)."""

    def __init__(
        self, dataset: TrajectoryDataset, discretizer: ActionTokenizer, *, sequence_length: int, step: int = 1,
        discount: float = 0.99, termination_penalty: float | None = -100.0,
    ) -> None:
        self.dataset = dataset
        self.sequence_length = sequence_length
        joined = joined_transitions(dataset, discount, termination_penalty)
        n = dataset.num_transitions
        # One padding row at the end: out-of-episode positions gather it (any valid id will do,
        # causality keeps it out of real positions and the mask out of the loss).
        self._tokens = np.zeros((n + 1, joined.shape[1]), np.int64)
        self._tokens[:n] = discretizer.encode(joined)
        self._tokens[n] = discretizer.offsets
        self._episode_end = dataset.episode_ends[dataset.episode_index]  # (N,)
        self._offsets = np.arange(sequence_length) * step  # (L,)

    @property
    def transition_dim(self) -> int:
        return self._tokens.shape[1]

    def sample(self, batch_size: int, rng: np.random.Generator) -> TokenBatch:
        starts = rng.integers(0, self.dataset.num_transitions, size=batch_size)  # (B,)
        positions = starts[:, None] + self._offsets[None, :]  # (B, L)
        real = positions < self._episode_end[starts][:, None]  # (B, L)
        index = np.where(real, positions, self.dataset.num_transitions)
        tokens = self._tokens[index]  # (B, L, T)
        mask = np.repeat(real[:, :, None], tokens.shape[2], axis=2)  # (B, L, T)
        return TokenBatch(tokens.reshape(batch_size, -1), mask.reshape(batch_size, -1))
