"""The Decision Transformer's policy for evaluation: return-to-go bookkeeping and per-episode
context windows, for n episodes acting together."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from seqrl.families.dt.context import ContextWindows


class DTPolicy:
    """Acts for n episodes at once, each conditioned on the same target return.

    The return-to-go starts at the target and drops by each reward; it is kept unscaled in
    float64 and multiplied by `spec.rtg_scale` when fed to the model (as `run_episode` does), and
    each episode keeps its last K steps in its own row of a `ContextWindows`.
    """

    def __init__(self, model: Any, spec: Any, context_len: int, target: float, device: torch.device) -> None:
        self.model, self.spec, self.context_len, self.target, self.device = model, spec, context_len, float(target), device

    def reset(self, n: int, seed: int) -> None:
        image_shape = self.spec.observation_shape if self.spec.image else None  # uint8 frames, kept uint8
        self.windows = ContextWindows(n, self.context_len, self.spec.obs_dim, self.spec.act_dim, image_shape)
        self.rtg = np.full(n, self.target, np.float64)  # unscaled return still to collect
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))

    def act(self, rows: np.ndarray, observations: np.ndarray, timesteps: np.ndarray) -> np.ndarray:
        scaled = (self.rtg[rows] * self.spec.rtg_scale).astype(np.float32)
        self.windows.push(rows, scaled, self.spec.normalize_states(observations), timesteps)
        batch = self.windows.batch(rows, self.device)
        return self.model.act(*batch, generator=self.generator).float().cpu().numpy()  # (n_rows, act_dim)

    def observe(self, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.windows.set_actions(rows, actions)
        self.rtg[rows] -= rewards
