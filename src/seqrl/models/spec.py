"""DataSpec: everything a model needs that comes from the data rather than the config.

It is computed once from the training dataset, saved in every checkpoint, and used again at
evaluation (normalising observations, scaling target returns) and to refuse data of another
shape.

The action space: continuous (a bounded Box, `action_low`/`action_high` per feature) unless
`num_actions` is set, for `Discrete(num_actions)` actions: then act_dim is 1 (the action index's
one column, as in `TrajectoryDataset`) and the bounds are empty. Specs written before discrete
actions existed have no `num_actions` and load as continuous; a continuous spec is written
without the field, exactly as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np

from seqrl.data.scores import reference_returns
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import CheckpointError, DatasetError


@dataclass(frozen=True)
class DataSpec:
    dataset: str
    env_id: str | None
    obs_dim: int
    act_dim: int
    max_timestep: int  # largest timestep the timestep embedding can index
    state_mean: tuple[float, ...]
    state_std: tuple[float, ...]
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    rtg_scale: float
    targets: tuple[float, ...]  # target returns for evaluation, unscaled
    ref_min_score: float | None
    ref_max_score: float | None
    # Keyword arguments the data's environment was made with (`seqrl collect --env-kwargs`), so
    # evaluation makes the same environment; None for the usual gymnasium defaults.
    env_kwargs: dict[str, Any] | None = None
    # n for Discrete(n) actions (indices 0..n-1, act_dim 1, no bounds); None for continuous ones.
    num_actions: int | None = None
    # The shape of image observations (uint8 (C, H, W) frame stacks or (H, W) frames), read by a
    # convolutional encoder that scales them by 1/255: they are never normalised, and state_mean
    # and state_std are empty. None for vector observations (obs_dim numbers, normalised).
    obs_shape: tuple[int, ...] | None = None

    @classmethod
    def from_dataset(
        cls,
        dataset: TrajectoryDataset,
        *,
        rtg_scale: float,
        targets: tuple[float, ...] | None,
        max_timestep: int | None = None,
    ) -> "DataSpec":
        env_id = dataset.metadata.get("env_id")
        try:
            ref_min, ref_max = reference_returns(env_id, dataset.metadata)
        except DatasetError:
            ref_min = ref_max = None
        if targets is None:
            # No preset: aim at the best return in the data, and at half of it (CORL's pattern).
            best = float(dataset.episode_returns.max())
            # The best return and one half of its size below it: best / 2 for a positive best (as
            # before), and below the best, not above it, on a task of negative returns (Acrobot's -15
            # gives -22.5, where -7.5 would ask for more than any episode got).
            targets = (best, best - abs(best) / 2)
        # Evaluation episodes may run longer than any in the data (up to the env's time limit);
        # leave room, and clamp beyond it.
        longest = int(dataset.episode_lengths.max())
        discrete = dataset.discrete
        image = dataset.image  # no per-pixel statistics: see obs_shape
        return cls(
            dataset=dataset.name,
            env_id=env_id,
            obs_dim=dataset.obs_dim,
            act_dim=dataset.act_dim,
            max_timestep=max_timestep or max(longest, 1000),
            state_mean=() if image else tuple(float(x) for x in dataset.observation_mean),
            state_std=() if image else tuple(float(x) for x in dataset.observation_std),
            action_low=() if discrete else tuple(float(x) for x in dataset.action_low),
            action_high=() if discrete else tuple(float(x) for x in dataset.action_high),
            rtg_scale=float(rtg_scale),
            targets=tuple(float(t) for t in targets),
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            env_kwargs=dict(dataset.metadata["env_kwargs"]) if dataset.metadata.get("env_kwargs") else None,
            num_actions=dataset.num_actions,
            obs_shape=dataset.observation_shape if image else None,
        )

    @property
    def discrete(self) -> bool:
        """Whether the actions are indices of a Discrete(num_actions) space."""
        return self.num_actions is not None

    @property
    def action_space(self) -> str:
        """The action space in words, for messages: `Discrete(4)` or `Box(3)`."""
        return f"Discrete({self.num_actions})" if self.discrete else f"Box({self.act_dim})"

    @property
    def image(self) -> bool:
        """Whether observations are uint8 images (a convolutional encoder, no normalisation)."""
        return self.obs_shape is not None

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """One observation's shape: (obs_dim,) for vectors, the image's shape for images."""
        return tuple(self.obs_shape) if self.image else (self.obs_dim,)

    @property
    def observations(self) -> str:
        """The observations in words, for messages: `obs_dim=8` or `uint8 images (4, 84, 84)`."""
        return f"uint8 images {tuple(self.obs_shape)}" if self.image else f"obs_dim={self.obs_dim}"

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if values["num_actions"] is None:
            del values["num_actions"]  # continuous: the layout every earlier seqrl wrote and reads
        if values["obs_shape"] is None:
            del values["obs_shape"]  # vector observations: likewise
        else:
            values["obs_shape"] = list(values["obs_shape"])
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DataSpec":
        values = dict(values)
        for key in ("state_mean", "state_std", "action_low", "action_high", "targets"):
            values[key] = tuple(values[key])
        if values.get("obs_shape") is not None:
            values["obs_shape"] = tuple(int(x) for x in values["obs_shape"])
        return cls(**values)

    @cached_property
    def _state_stats(self) -> tuple[np.ndarray, np.ndarray]:
        # Built once: evaluation normalises every environment step.
        return np.asarray(self.state_mean, np.float32), np.asarray(self.state_std, np.float32)

    def normalize_states(self, observations: np.ndarray) -> np.ndarray:
        """Vector observations normalised with the data's mean and std, as float32; images are
        handed on as uint8, unchanged (the model scales them)."""
        if self.image:
            return np.asarray(observations, np.uint8)
        mean, std = self._state_stats
        return ((observations - mean) / std).astype(np.float32)

    def check_compatible(self, dataset: TrajectoryDataset, what: str = "this checkpoint") -> None:
        """Refuse data whose observation or action sizes, or action space, differ from the model's."""
        if dataset.num_actions != self.num_actions:
            theirs = f"Discrete({dataset.num_actions})" if dataset.discrete else f"Box({dataset.act_dim})"
            raise CheckpointError(
                f"{what} was trained on {self.dataset} ({self.env_id}) with {self.action_space} actions, but "
                f"{dataset.name} ({dataset.metadata.get('env_id')}) has {theirs} actions"
            )
        if dataset.image != self.image or (self.image and dataset.observation_shape != self.observation_shape):
            theirs = f"uint8 images {dataset.observation_shape}" if dataset.image else f"obs_dim={dataset.obs_dim}"
            raise CheckpointError(
                f"{what} was trained on {self.dataset} ({self.env_id}) with {self.observations}, but "
                f"{dataset.name} ({dataset.metadata.get('env_id')}) has {theirs}"
            )
        if (dataset.obs_dim, dataset.act_dim) != (self.obs_dim, self.act_dim):
            raise CheckpointError(
                f"{what} was trained on {self.dataset} ({self.env_id}: obs_dim={self.obs_dim}, "
                f"act_dim={self.act_dim}) but {dataset.name} ({dataset.metadata.get('env_id')}) has "
                f"obs_dim={dataset.obs_dim}, act_dim={dataset.act_dim}; use `seqrl finetune` to transfer"
            )
