"""An offline dataset held in memory: episodes stored back to back in flat arrays.

Flat arrays (rather than a list of per-episode arrays) let the sampler gather a whole batch
of context windows with one fancy-indexing call per field; `episode_starts` marks where each
episode begins.

Action spaces. A dataset's actions are continuous unless its metadata says otherwise:
- continuous (a bounded `Box`): `actions` is (N, act_dim) float32, with the bounds in
  `metadata["action_low"/"action_high"]`;
- discrete (`Discrete(n)`): `metadata["action_space"] == {"type": "Discrete", "n": n}` (Minari's
  name and fields for the space), and `actions` is (N, 1) int64 holding the action index
  0..n-1. The column is kept (act_dim 1) so every consumer indexes actions the same way;
  `dataset.discrete` and `dataset.num_actions` let later code ask. A discrete dataset has no
  action bounds: `action_low`/`action_high` refuse it rather than offer [0, n-1] as if the
  indices were a continuous quantity.
Multi-dimensional discrete spaces (`MultiDiscrete`) are not supported.

Observations are (N, obs_dim) float32 vectors, or uint8 images ((C, H, W) frame stacks or (H, W)
frames) kept in a `FrameStore` (seqrl.data.frames): each frame once, stacks rebuilt by index, so a
1M-frame Atari dataset takes 7 GB rather than 28 GB. `dataset.image` says which; indexing an image
dataset's `observations` returns uint8 arrays, and image observations have no mean or std.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator, Sequence

import numpy as np

from seqrl.data.frames import FrameStore, FrameStoreBuilder, image_shape_of
from seqrl.errors import DatasetError

# Actions a hair outside the space (float round-off, or a float64 policy clipped in float32)
# are accepted; anything further out means the data does not belong to this action space.
ACTION_BOUND_TOLERANCE = 1e-4
# The only action-space type besides the default continuous Box; Minari's name for it.
DISCRETE = "Discrete"


def discrete_action_space(n: int) -> dict[str, Any]:
    """The metadata entry that marks a dataset's actions as indices 0..n-1 of `Discrete(n)`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DatasetError(f"a Discrete action space needs a whole number of actions n >= 1, got {n!r}")
    return {"type": DISCRETE, "n": int(n)}


def _declared_action_space(metadata: dict[str, Any], name: str) -> int | None:
    """n for a dataset whose metadata declares Discrete(n) actions; None for continuous ones."""
    space = metadata.get("action_space")
    if space is None:
        return None
    kind = space.get("type") if isinstance(space, dict) else None
    if kind == "MultiDiscrete":
        raise DatasetError(f"{name}: MultiDiscrete action spaces are not supported (only Discrete(n) and Box)")
    if kind == "Box":
        return None
    if kind != DISCRETE:
        raise DatasetError(
            f"{name}: metadata['action_space'] must be {{'type': 'Discrete', 'n': N}} or a Box, got {space!r}"
        )
    return discrete_action_space(space.get("n"))["n"]


@dataclass(eq=False)
class TrajectoryDataset:
    """Episodes of (observation, action, reward, termination, truncation), back to back.

    `observations[i]` is the observation the agent saw before taking `actions[i]`; the
    observation after an episode's last action (which Minari stores and D4RL does not) is kept
    in `final_observations` when known.
    """

    observations: np.ndarray  # (N, obs_dim) float32
    actions: np.ndarray  # (N, act_dim) float32; discrete: (N, 1) int64 action indices
    rewards: np.ndarray  # (N,) float32
    terminations: np.ndarray  # (N,) bool: the episode ended in a terminal state
    truncations: np.ndarray  # (N,) bool: the episode was cut off (time limit, end of data)
    episode_starts: np.ndarray  # (E,) int64: index of each episode's first transition
    metadata: dict[str, Any] = field(default_factory=dict)
    final_observations: np.ndarray | None = None  # (E, obs_dim) or None

    def __post_init__(self) -> None:
        name = self.metadata.get("name", "dataset")
        n_actions = _declared_action_space(self.metadata, name)
        if not self.image:
            self.observations = np.asarray(self.observations, dtype=np.float32)
        self.actions = (
            np.asarray(self.actions, dtype=np.float32) if n_actions is None else _action_indices(self.actions, n_actions, name)
        )
        self.rewards = np.asarray(self.rewards, dtype=np.float32).reshape(-1)
        self.terminations = np.asarray(self.terminations).astype(bool).reshape(-1)
        self.truncations = np.asarray(self.truncations).astype(bool).reshape(-1)
        self.episode_starts = np.asarray(self.episode_starts, dtype=np.int64).reshape(-1)
        if self.observations.ndim == 1:  # (a FrameStore's ndim is 1 + the image's)
            self.observations = self.observations[:, None]
        if self.actions.ndim == 1:
            self.actions = self.actions[:, None]
        n = len(self.observations)
        if n == 0 or len(self.episode_starts) == 0:
            raise DatasetError(f"{name}: the dataset is empty (no transitions)")
        if (self.observations.ndim != 2 and not self.image) or self.actions.ndim != 2:
            raise DatasetError(
                f"{name}: observations and actions must be 2-D (steps, features), got shapes "
                f"{self.observations.shape} and {self.actions.shape}"
            )
        for key in ("actions", "rewards", "terminations", "truncations"):
            if len(getattr(self, key)) != n:
                raise DatasetError(
                    f"{name}: length mismatch: {n} observations but {len(getattr(self, key))} {key}"
                )
        starts = self.episode_starts
        if starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= n:
            raise DatasetError(
                f"{name}: episode_starts must begin at 0 and strictly increase below {n}"
            )
        for key in ("actions", "rewards") if self.image else ("observations", "actions", "rewards"):
            values = getattr(self, key)
            bad = ~np.isfinite(values)
            if bad.any():
                index = int(np.argwhere(bad)[0][0])
                raise DatasetError(f"{name}: {key} contain NaN or inf (first at step {index})")
        if self.final_observations is not None and self.image:
            if not isinstance(self.final_observations, FrameStore) or len(self.final_observations) != len(starts):
                raise DatasetError(f"{name}: an image dataset's final_observations must be a FrameStore of one "
                                   f"observation per episode ({len(starts)})")
        elif self.final_observations is not None:
            self.final_observations = np.asarray(self.final_observations, dtype=np.float32)
            if self.final_observations.shape != (len(starts), self.obs_dim):
                raise DatasetError(
                    f"{name}: final_observations has shape {self.final_observations.shape}, "
                    f"expected {(len(starts), self.obs_dim)}"
                )
        if n_actions is not None:
            if self.act_dim != 1:
                raise DatasetError(
                    f"{name}: a Discrete({n_actions}) dataset holds one action index per step, "
                    f"got actions of shape {self.actions.shape}"
                )
            outside = (self.actions < 0) | (self.actions >= n_actions)
            if outside.any():
                step = int(np.argwhere(outside)[0][0])
                raise DatasetError(
                    f"{name}: action[{step}] = {int(self.actions[step, 0])} is not an index of the "
                    f"Discrete({n_actions}) action space (0..{n_actions - 1})"
                )
        low, high = self.metadata.get("action_low"), self.metadata.get("action_high")
        if n_actions is not None and (low is not None or high is not None):
            raise DatasetError(
                f"{name}: a Discrete({n_actions}) dataset has no action bounds, but its metadata has "
                "action_low/action_high"
            )
        if low is not None and high is not None:
            low = np.broadcast_to(np.asarray(low, dtype=np.float64), (self.act_dim,))
            high = np.broadcast_to(np.asarray(high, dtype=np.float64), (self.act_dim,))
            outside = (self.actions < low - ACTION_BOUND_TOLERANCE) | (
                self.actions > high + ACTION_BOUND_TOLERANCE
            )
            if outside.any():
                step, feature = (int(v) for v in np.argwhere(outside)[0])
                raise DatasetError(
                    f"{name}: actions outside the action space: action[{step}][{feature}] = "
                    f"{self.actions[step, feature]:.4g}, bounds [{low[feature]:.4g}, {high[feature]:.4g}]"
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_episodes(
        cls, episodes: Sequence[dict[str, np.ndarray]], metadata: dict[str, Any] | None = None
    ) -> "TrajectoryDataset":
        """Build from a list of per-episode dicts.

        Each dict has `observations` (T or T+1 rows; with T+1 the last row is the final
        observation), `actions` (T), `rewards` (T), and optionally `terminations`/`truncations`
        (T, default: the episode is truncated at its last step).
        """
        metadata = dict(metadata or {})
        name = metadata.get("name", "dataset")
        obs, acts, rews, terms, truncs, finals, starts = [], [], [], [], [], [], []
        total = 0
        have_finals = True
        builder: FrameStoreBuilder | None = None  # image observations: compressed episode by episode
        for i, ep in enumerate(episodes):
            for key in ("observations", "actions", "rewards"):
                if key not in ep:
                    raise DatasetError(f"{name}: episode {i} is missing the key '{key}'")
            t = len(ep["actions"])
            if t == 0:
                raise DatasetError(f"{name}: episode {i} has no steps")
            o = np.asarray(ep["observations"])
            if len(o) == t + 1:
                finals.append(o[-1])
                o = o[:-1]
            elif len(o) == t:
                have_finals = False
            else:
                raise DatasetError(
                    f"{name}: length mismatch in episode {i}: {len(o)} observations for {t} actions"
                )
            if len(ep["rewards"]) != t:
                raise DatasetError(
                    f"{name}: length mismatch in episode {i}: {len(ep['rewards'])} rewards for {t} actions"
                )
            term = np.asarray(ep.get("terminations", np.zeros(t, bool)), dtype=bool).reshape(-1)
            trunc = ep.get("truncations")
            if trunc is None:
                trunc = np.zeros(t, bool)
                # Guarded: a wrong-length `terminations` is reported below, not as an IndexError.
                trunc[-1] = len(term) == t and not term[-1]
            for key, arr in (("terminations", term), ("truncations", trunc)):
                if len(arr) != t:
                    raise DatasetError(
                        f"{name}: length mismatch in episode {i}: {len(arr)} {key} for {t} actions"
                    )
            if i == 0 and image_shape_of(o.shape[1:], o.dtype) is not None:
                builder = FrameStoreBuilder(o.shape[1:], name)
            if builder is not None:
                # Compressed now, so that a generator of episodes never has every stack in memory.
                with_final = np.concatenate([o, np.asarray(finals[-1])[None]]) if len(finals) == i + 1 else o
                o = builder.add_episode(with_final)  # (T[+1], S) indices
                if len(finals) == i + 1:
                    finals[-1], o = o[-1], o[:-1]
            obs.append(o)
            acts.append(np.asarray(ep["actions"]).reshape(t, -1))
            rews.append(np.asarray(ep["rewards"]).reshape(t))
            terms.append(term)
            truncs.append(np.asarray(trunc, dtype=bool))
            starts.append(total)
            total += t
        if total == 0:
            raise DatasetError(f"{name}: the dataset is empty (no episodes)")
        try:
            if builder is not None:
                frames = builder.frames()
                observations = FrameStore(frames, np.concatenate(obs), builder.shape)
                finals = [FrameStore(frames, np.stack(finals), builder.shape)] if have_finals else []
            else:
                observations = np.concatenate(obs).astype(np.float32)
            actions = np.concatenate(acts)  # float32 or int64 indices: __post_init__ decides
        except ValueError as exc:
            raise DatasetError(f"{name}: episodes have different observation or action sizes ({exc})")
        return cls(
            observations=observations,
            actions=actions,
            rewards=np.concatenate(rews),
            terminations=np.concatenate(terms),
            truncations=np.concatenate(truncs),
            episode_starts=np.asarray(starts, dtype=np.int64),
            metadata=metadata,
            final_observations=(finals[0] if builder is not None else np.stack(finals)) if have_finals else None,
        )

    @classmethod
    def concatenate(
        cls, datasets: Sequence["TrajectoryDataset"], metadata: dict[str, Any] | None = None
    ) -> "TrajectoryDataset":
        """Episodes of several datasets in one (e.g. D4RL's medium-expert = medium + expert)."""
        if not datasets:
            raise DatasetError("concatenate: no datasets given")
        if len({(d.image, d.observation_shape) for d in datasets}) != 1:
            shapes = sorted({("image " if d.image else "vector ") + str(d.observation_shape) for d in datasets})
            raise DatasetError(f"concatenate: datasets have different observations: {', '.join(shapes)}")
        dims = {(d.obs_dim, d.act_dim) for d in datasets}
        if len(dims) != 1:
            raise DatasetError(f"concatenate: datasets have different (obs_dim, act_dim): {sorted(dims)}")
        spaces = {d.num_actions for d in datasets}
        if len(spaces) != 1:
            described = sorted("continuous" if n is None else f"Discrete({n})" for n in spaces)
            raise DatasetError(f"concatenate: datasets have different action spaces: {', '.join(described)}")
        merged = dict(metadata if metadata is not None else datasets[0].metadata)
        if datasets[0].discrete and "action_space" not in merged:
            merged["action_space"] = discrete_action_space(datasets[0].num_actions)
        offsets = np.cumsum([0] + [d.num_transitions for d in datasets[:-1]])
        finals = [d.final_observations for d in datasets]
        if datasets[0].image:
            observations, final = FrameStore.concatenate([d.observations for d in datasets], finals)
            finals = [final]
        else:
            observations = np.concatenate([d.observations for d in datasets])
        return cls(
            observations=observations,
            actions=np.concatenate([d.actions for d in datasets]),
            rewards=np.concatenate([d.rewards for d in datasets]),
            terminations=np.concatenate([d.terminations for d in datasets]),
            truncations=np.concatenate([d.truncations for d in datasets]),
            episode_starts=np.concatenate([d.episode_starts + o for d, o in zip(datasets, offsets)]),
            metadata=merged,
            final_observations=None if any(f is None for f in finals) else (
                finals[0] if datasets[0].image else np.concatenate(finals)),
        )

    # ------------------------------------------------------------------ sizes
    @property
    def name(self) -> str:
        return str(self.metadata.get("name", "dataset"))

    @property
    def num_transitions(self) -> int:
        return len(self.observations)

    @property
    def num_episodes(self) -> int:
        return len(self.episode_starts)

    @property
    def obs_dim(self) -> int:
        """Numbers in one observation (an image's pixels: C x H x W)."""
        return int(np.prod(self.observation_shape))

    @property
    def image(self) -> bool:
        """Whether observations are uint8 images kept in a FrameStore (seqrl.data.frames)."""
        return isinstance(self.observations, FrameStore)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """One observation's shape: (obs_dim,) for vectors, (C, H, W) or (H, W) for images."""
        return tuple(self.observations.shape) if self.image else (self.observations.shape[1],)

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    @property
    def num_actions(self) -> int | None:
        """n for a dataset of Discrete(n) actions; None for continuous actions."""
        return _declared_action_space(self.metadata, self.name)

    @property
    def discrete(self) -> bool:
        """Whether the actions are indices of a Discrete(n) space (see the module docstring)."""
        return self.num_actions is not None

    @cached_property
    def episode_lengths(self) -> np.ndarray:
        """(E,) int64."""
        return np.diff(np.append(self.episode_starts, self.num_transitions))

    @cached_property
    def episode_ends(self) -> np.ndarray:
        """(E,) int64: one past each episode's last transition."""
        return self.episode_starts + self.episode_lengths

    @cached_property
    def episode_index(self) -> np.ndarray:
        """(N,) int64: the episode each transition belongs to."""
        return np.repeat(np.arange(self.num_episodes), self.episode_lengths)

    @cached_property
    def timesteps(self) -> np.ndarray:
        """(N,) int64: each transition's position within its episode, from 0."""
        return np.arange(self.num_transitions) - self.episode_starts[self.episode_index]

    @cached_property
    def episode_returns(self) -> np.ndarray:
        """(E,) float64: undiscounted return of each episode."""
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts)

    # ------------------------------------------------------------------ statistics
    def returns_to_go(self, discount: float = 1.0) -> np.ndarray:
        """(N,) float64: sum_{t' >= t} discount^(t'-t) r_t' within each episode."""
        if discount == 1.0:
            # Reverse cumulative sum within episodes, vectorized: total suffix sums minus the
            # suffix sum that starts at the next episode.
            suffix = np.cumsum(self.rewards[::-1].astype(np.float64))[::-1]
            after_episode = np.append(suffix, 0.0)[self.episode_ends]
            return suffix - after_episode[self.episode_index]
        rtg = np.empty(self.num_transitions, dtype=np.float64)
        rewards = self.rewards.astype(np.float64)
        for start, end in zip(self.episode_starts, self.episode_ends):
            acc = 0.0
            for t in range(end - 1, start - 1, -1):
                acc = rewards[t] + discount * acc
                rtg[t] = acc
        return rtg

    def _refuse_image_statistics(self) -> None:
        if self.image:
            raise DatasetError(f"{self.name} has image observations, which are not normalised per pixel "
                               "(the convolutional encoder scales frames by 1/255)")

    @cached_property
    def observation_mean(self) -> np.ndarray:
        self._refuse_image_statistics()
        return self.observations.mean(axis=0)

    @cached_property
    def observation_std(self) -> np.ndarray:
        self._refuse_image_statistics()
        # The floor keeps constant features (e.g. LunarLander's leg contacts in some data) finite.
        return np.maximum(self.observations.std(axis=0), 1e-6)

    def _refuse_bounds(self) -> None:
        if self.discrete:
            raise DatasetError(
                f"{self.name} has Discrete({self.num_actions}) actions, which have no bounds: "
                "this needs a dataset of continuous (Box) actions"
            )

    @property
    def action_low(self) -> np.ndarray:
        self._refuse_bounds()
        low = self.metadata.get("action_low")
        return np.broadcast_to(np.asarray(low if low is not None else self.actions.min(0), np.float32), (self.act_dim,))

    @property
    def action_high(self) -> np.ndarray:
        self._refuse_bounds()
        high = self.metadata.get("action_high")
        return np.broadcast_to(np.asarray(high if high is not None else self.actions.max(0), np.float32), (self.act_dim,))

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Episode i as a dict of arrays (views, not copies)."""
        s, e = int(self.episode_starts[i]), int(self.episode_ends[i])
        return {
            "observations": self.observations[s:e],
            "actions": self.actions[s:e],
            "rewards": self.rewards[s:e],
            "terminations": self.terminations[s:e],
            "truncations": self.truncations[s:e],
        }

    def split_episodes(self, fraction: float, seed: int) -> tuple["TrajectoryDataset", "TrajectoryDataset"]:
        """(kept, held out): `fraction` of the episodes, chosen with `seed`, held out (at least one,
        and at least one kept). The held-out part keeps this dataset's metadata and name."""
        n = self.num_episodes
        held = int(round(fraction * n))
        if n < 2 or not 0 < held < n:
            name = self.metadata.get("name", "dataset")
            raise DatasetError(f"{name}: holding out {fraction:g} of {n} episodes leaves "
                               f"{'none to hold out' if held < 1 else 'none to train on'}")
        order = np.random.default_rng(seed).permutation(n)
        held_out, kept = np.sort(order[:held]), np.sort(order[held:])

        def part(indices: np.ndarray) -> "TrajectoryDataset":
            episodes = [dict(self.episode(int(i))) for i in indices]
            if self.final_observations is not None:
                for episode, i in zip(episodes, indices):
                    episode["observations"] = np.concatenate([episode["observations"], self.final_observations[i][None]])
            return TrajectoryDataset.from_episodes(episodes, metadata=self.metadata)

        return part(kept), part(held_out)

    def episodes(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(self.num_episodes):
            yield self.episode(i)

    def summary(self) -> dict[str, Any]:
        """Episodes, transitions and return statistics, for listings and logs."""
        returns = self.episode_returns
        return {
            "name": self.name,
            "env_id": self.metadata.get("env_id"),
            "episodes": self.num_episodes,
            "transitions": self.num_transitions,
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std()),
            "return_min": float(returns.min()),
            "return_max": float(returns.max()),
        }


def _action_indices(actions: Any, n: int, name: str) -> np.ndarray:
    """Actions of a Discrete(n) dataset as (N, 1) int64, refusing values that are not whole numbers."""
    array = np.asarray(actions)
    if array.ndim == 1:
        array = array[:, None]
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "b" or array.dtype.kind not in "f":
        raise DatasetError(f"{name}: Discrete({n}) actions must be integer indices, got dtype {array.dtype}")
    whole = np.isfinite(array) & (array == np.round(array))
    if not whole.all():
        step = int(np.argwhere(~whole)[0][0])
        raise DatasetError(
            f"{name}: Discrete({n}) actions must be integer indices, but action[{step}] = {array[step].tolist()}"
        )
    return array.astype(np.int64)
