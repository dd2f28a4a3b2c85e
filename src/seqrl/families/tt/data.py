"""The Trajectory Transformer's data: transitions as rows of (state, action, reward, value),
discretized per dimension, and windows of them as flat token sequences.

Choices (the authors' code's, each an option on TTConfig):
- the last reward of an episode that ended in a terminal state is replaced by
  `termination_penalty` (-100 on locomotion tasks, where termination means a fall; LunarLander
  keeps its rewards, as its episodes also terminate on a landing), so the model learns what
  falling over costs;
- the value token is V_t = sum_{k > t} discount^(k-t-1) r_k: the reward-to-go from t+1 on, within
  the episode (0 at its last step);
- a window is `sequence_length` transitions starting at any transition (stride 1), taking every
  `step`-th one. Windows running past their episode's end are right-padded, and the padded
  targets are masked out of the loss, which is normalised by the real tokens (the authors'
  averages over padded tokens too).

On Discrete(n) actions the action is one dimension (m = 1) of n tokens, one per action index,
never binned (`fit_discretizer`'s num_actions).

The layout of one transition is `[s_0 .. s_{n-1}, a_0 .. a_{m-1}, r, V]` (T = n + m + 2 tokens),
and token ids carry per-dimension offsets (`ActionTokenizer`, a per-feature discretizer over
these T columns), so one embedding table serves every dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def joined_transitions(
    dataset: TrajectoryDataset, discount: float, termination_penalty: float | None, *,
    state_columns: tuple[int, ...] | None = None, rewards: bool = True,
) -> np.ndarray:
    """(N, T) float32 rows `[state, action, reward, value]`, one per transition.

    `state_columns`: the observation dims that make the state (default all; a goal-conditioned
    run leaves out the environment's goal). `rewards=False` (goal-conditioned runs, which use no
    rewards) fills the reward and value columns with zeros, keeping the layout.
    """
    observations = dataset.observations if state_columns is None else dataset.observations[:, list(state_columns)]
    if rewards:
        reward = transition_rewards(dataset, termination_penalty)
        values = values_from(reward, dataset, discount)
    else:
        reward = values = np.zeros(dataset.num_transitions, np.float32)
    return np.concatenate([observations, dataset.actions, reward[:, None], values[:, None]], axis=1).astype(np.float32)


def run_transitions(dataset: TrajectoryDataset, cfg: Any) -> np.ndarray:
    """`joined_transitions` as a TT run `cfg` models them (its goal layout and reward use)."""
    from seqrl.families.tt.goals import goal_layout

    goal_conditioned = getattr(cfg, "goal", "none") != "none"
    layout = goal_layout(cfg, dataset.observations.shape[1])
    return joined_transitions(dataset, cfg.discount, cfg.terminal_reward, state_columns=layout.state_columns,
                              rewards=not goal_conditioned)


def fit_discretizer(joined: np.ndarray, num_bins: int, strategy: str, *, num_actions: int | None = None,
                    action_column: int | None = None) -> ActionTokenizer:
    """One quantizer per column of `joined`, with per-column token offsets (bins never collapse).

    With `num_actions` (Discrete(n) data) the action column `action_column` is not binned: it is
    one token of n values, token k the action index k (`ActionTokenizer.fit`'s index_features)."""
    index = {action_column: num_actions} if num_actions is not None else None
    return ActionTokenizer.fit(joined, num_bins, strategy=strategy, shared_range=False, index_features=index)


@dataclass
class TokenBatch:
    """B windows of L transitions as flat token sequences (and a goal prefix, if conditioned)."""

    tokens: np.ndarray | torch.Tensor  # (B, L*T) int64 token ids (with offsets)
    mask: np.ndarray | torch.Tensor  # (B, L*T) bool, False on padding
    goal: np.ndarray | torch.Tensor | None = None  # (B, G) int64 goal state token ids (state offsets)

    def shard(self, rank: int, world: int) -> "TokenBatch":
        """Process `rank`'s rows of the batch (seqrl.distributed: data-parallel training)."""
        from seqrl.distributed import shard_rows

        return shard_rows(self, rank, world)

    def to_torch(self, device: torch.device | str = "cpu") -> "TokenBatch":
        device = torch.device(device)
        tensors = [None if x is None else torch.from_numpy(np.ascontiguousarray(x)).to(device)
                   for x in (self.tokens, self.mask, self.goal)]
        return TokenBatch(*tensors)


class TransitionWindowSampler:
    """Samples windows of `sequence_length` discretized transitions (right-padded, masked).

    With `goal` (a relabelling of families/tt/goals.py) and `goal_positions` (the goal's dims
    within the state), every window also gets the token ids of its relabelled goal state.
    """

    def __init__(
        self, dataset: TrajectoryDataset, discretizer: ActionTokenizer, *, sequence_length: int, step: int = 1,
        discount: float = 0.99, termination_penalty: float | None = -100.0, joined: np.ndarray | None = None,
        goal: str = "none", goal_positions: tuple[int, ...] = (),
    ) -> None:
        self.dataset = dataset
        self.sequence_length = sequence_length
        self.goal, self.goal_positions = goal, list(goal_positions)
        if goal != "none" and not goal_positions:
            raise ValueError("a goal-conditioned sampler needs the goal's positions in the state")
        if joined is None:
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
        goal = None
        if self.goal != "none":
            from seqrl.families.tt.goals import relabelled_goal_rows

            last = np.where(real, positions, -1).max(axis=1)  # (B,) each window's last real transition
            rows = relabelled_goal_rows(self.goal, starts, last, self._episode_end[starts], rng)
            goal = self._tokens[rows][:, self.goal_positions]  # (B, G)
        return TokenBatch(tokens.reshape(batch_size, -1), mask.reshape(batch_size, -1), goal)
