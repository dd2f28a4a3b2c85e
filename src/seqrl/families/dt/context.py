"""Per-episode context windows for evaluating a Decision Transformer in many environments at once.

Each episode keeps its last K steps in one preallocated row of a float32 array laid out as

    [ return-to-go (scaled) | normalised state (obs_dim) | action (act_dim) | timestep ]

so a whole batch of windows goes to the model as ONE array -> ONE tensor transfer per env step,
split into its four inputs on the device. Timesteps ride along as float32, exact below 2**24.

Windows are right-padded, like the training sampler's (see data/sampler.py): a row holding
n < K steps has them at positions 0..n-1, and `lengths` tells the model where each row's last
real step is. Once a row is full, pushing a step shifts the row left by one.

Image observations (`image_shape`) stay uint8 in a second array of the same rows, (n, K, *shape),
which goes to the device beside the float block (the model's encoder scales them); the float
block then has no state columns.
"""

from __future__ import annotations

import numpy as np
import torch


class ContextWindows:
    """The last `context_len` steps of `n` episodes, one row each."""

    def __init__(self, n: int, context_len: int, obs_dim: int, act_dim: int,
                 image_shape: tuple[int, ...] | None = None) -> None:
        self.context_len = context_len
        self.images = None if image_shape is None else np.zeros((n, context_len, *image_shape), np.uint8)
        obs_dim = 0 if image_shape is not None else obs_dim
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.data = np.zeros((n, context_len, 1 + obs_dim + act_dim + 1), np.float32)  # (n, K, width)
        self.lengths = np.zeros(n, np.int64)  # real steps held per row, <= K
        self._state = slice(1, 1 + obs_dim)
        self._action = slice(1 + obs_dim, 1 + obs_dim + act_dim)

    def push(self, rows: np.ndarray, rtg: np.ndarray, states: np.ndarray, timesteps: np.ndarray) -> None:
        """Start a new step in `rows`: its return-to-go (n,), normalised state (n, obs_dim) and
        timestep (n,); the action slot is zeroed until `set_actions` fills it."""
        full = rows[self.lengths[rows] == self.context_len]
        if len(full):
            # Fancy indexing on the right makes a copy, so the overlapping shift is safe.
            self.data[full, :-1] = self.data[full, 1:]
            if self.images is not None:
                self.images[full, :-1] = self.images[full, 1:]
        pos = np.minimum(self.lengths[rows], self.context_len - 1)
        self.lengths[rows] = pos + 1
        self.data[rows, pos, 0] = rtg
        if self.images is not None:
            self.images[rows, pos] = states
        else:
            self.data[rows, pos, self._state] = states
        self.data[rows, pos, self._action] = 0.0
        self.data[rows, pos, -1] = timesteps

    def set_actions(self, rows: np.ndarray, actions: np.ndarray) -> None:
        """Write the actions taken at the last step of `rows`."""
        self.data[rows, self.lengths[rows] - 1, self._action] = actions

    def batch(
        self, rows: np.ndarray, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model inputs for `rows`: returns_to_go (B, T, 1), states (B, T, obs_dim), actions
        (B, T, act_dim), timesteps (B, T) long, lengths (B,), with T the longest row's length."""
        lengths = self.lengths[rows]
        width = int(lengths.max())
        block = np.concatenate([self.data[rows, :width].reshape(len(rows), -1), lengths[:, None].astype(np.float32)], 1)
        block = torch.from_numpy(block).to(device)  # the one host -> device transfer of the step
        lengths_t = block[:, -1].long()  # (B,)
        block = block[:, :-1].view(len(rows), width, -1)  # (B, T, width)
        states = block[..., self._state]
        if self.images is not None:
            states = torch.from_numpy(self.images[rows, :width]).to(device)  # (B, T, *shape) uint8
        return (
            block[..., :1],
            states,
            block[..., self._action],
            block[..., -1].long(),
            lengths_t,
        )
