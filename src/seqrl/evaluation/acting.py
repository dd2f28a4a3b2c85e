"""A trained run acting in Python, outside the evaluation loop: what `seqrl.load` returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqrl.errors import CheckpointError
from seqrl.evaluation.rollout import EnvActions
from seqrl.families import family_of
from seqrl.loading import LoadedRun, load_run


class RunPolicy:
    """A trained run acting in Python, one episode or `n` side by side (what `seqrl.load` returns).

        policy = seqrl.load("runs/hopper-medium-continuous-s0")  # a DT at its run's first target
        policy.reset()                      # a new episode (reset(n=8, seed=0): eight at once)
        action = policy.act(observation)    # (obs_dim,) -> (act_dim,); (n, obs_dim) -> (n, act_dim)
        policy.observe(reward)              # what env.step returned for that action

    The family's own policy does the work (the DT's return-to-go and context window, the TT's
    planner), as in `seqrl eval`; actions reach the caller as the evaluation loop hands them to
    its environments (`EnvActions`): clipped into the action bounds the data recorded, or, for
    a Discrete(n) space, action indices.
    """

    def __init__(self, run: LoadedRun, target: float | None = None, settings: dict[str, Any] | None = None,
                 device: Any = None) -> None:
        self.run = run
        self.family = family_of(run.config)
        conditions = self.family.conditions(run.config, run.spec, None if target is None else [float(target)])
        self.condition = conditions[0]
        self.settings = self.family.eval_settings(settings)
        self.device = device
        spec = run.spec
        self._env_actions = (EnvActions(num_actions=spec.num_actions) if spec.discrete else
                             EnvActions(np.asarray(spec.action_low, np.float32), np.asarray(spec.action_high, np.float32)))
        self._policy: Any = None

    @property
    def target(self) -> float | None:
        """The return the policy is conditioned on (None: a family without one, e.g. the TT)."""
        return self.condition

    def reset(self, n: int = 1, seed: int = 0) -> None:
        """Start `n` episodes (sampled decoding draws from a generator seeded with `seed`)."""
        self._policy = self.family.make_policy(self.run.model, self.run.spec, self.run.config, self.condition,
                                               settings=self.settings, device=self.device)
        self._policy.reset(int(n), int(seed))
        self._rows = np.arange(int(n))
        self._steps = np.zeros(int(n), np.int64)
        self._last = None

    def act(self, observation: Any) -> Any:
        if self._policy is None:
            self.reset()
        spec = self.run.spec
        shape = spec.observation_shape  # (obs_dim,), or an image's shape
        # Images stay uint8 (the model scales them, never normalised); vectors become float32.
        obs = np.asarray(observation, np.uint8 if spec.image else np.float32)
        if spec.image and np.asarray(observation).dtype != np.uint8:
            raise CheckpointError(f"expected uint8 image observations {shape} (frames as the environment gives "
                                  f"them), got {np.asarray(observation).dtype}")
        single = obs.shape == shape
        obs = obs[None] if single else obs
        if obs.shape != (len(self._rows), *shape):
            raise CheckpointError(f"expected observations of shape {(len(self._rows), *shape)} "
                                  f"after reset(n={len(self._rows)}), got {tuple(np.asarray(observation).shape)}")
        to_env, self._last = self._env_actions.to_env(self._policy.act(self._rows, obs, self._steps))
        return to_env[0] if single else to_env

    def observe(self, reward: Any) -> None:
        """The reward (a number, or one per episode) the environment returned for the last action."""
        if self._last is None:
            raise CheckpointError("observe() follows act(): there is no action to attach the reward to")
        rewards = np.broadcast_to(np.asarray(reward, np.float64), (len(self._rows),)).copy()
        self._policy.observe(self._rows, self._last, rewards)
        self._steps += 1
        self._last = None


def load_policy(run_dir: Path | str, *, target: float | None = None, settings: dict[str, Any] | None = None,
                device: str | torch.device = "cpu") -> RunPolicy:
    """`seqrl.load`: a run directory's trained policy (its checkpoint, or only its model.safetensors)."""
    from seqrl.runtime import resolve_device

    torch_device = resolve_device(str(device))
    return RunPolicy(load_run(run_dir, torch_device), target=target, settings=settings, device=torch_device)
