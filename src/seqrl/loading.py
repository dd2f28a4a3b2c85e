"""A run's trained model, from its checkpoint: the family is looked up by the checkpoint's tag.

`load_run` is what evaluation, prediction, the demo and scripts use to get a model ready to
act; `build_model` builds a family's untrained model (the training loop, benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqrl.checkpoint import checkpoint_path, load_checkpoint
from seqrl.config import RunConfig
from seqrl.errors import CheckpointError
from seqrl.families import Family, family_of, get_family
from seqrl.model_files import MODEL_FILE, read_model_file
from seqrl.models.spec import DataSpec


def build_model(cfg: RunConfig, spec: DataSpec, artefacts: Any) -> torch.nn.Module:
    """The model of `cfg`'s family, untrained (artefacts: the DT's ActionTokenizer or None, the TT's discretizer)."""
    return family_of(cfg).build_model(cfg, spec, artefacts)


@dataclass
class LoadedRun:
    model: torch.nn.Module
    config: RunConfig
    spec: DataSpec
    artefacts: Any  # the DT's action tokenizer (or None), the TT's discretizer
    step: int
    payload: dict[str, Any]

    @property
    def family(self) -> str:
        """The run's family tag: its config's (the one source of a run's family)."""
        return self.config.family

    @property
    def tokenizer(self) -> Any:
        """The DT's name for its artefact."""
        return self.artefacts


def checkpoint_family(payload: dict[str, Any]) -> Family:
    """The family of a checkpoint: its config's tag. Checkpoints written before configs carried
    one have the payload's tag, and those before families existed neither: they are DT runs."""
    return get_family(payload["config"].get("family", payload.get("family")))


def load_run(run_dir: Path | str, device: str | torch.device = "cpu") -> LoadedRun:
    """The trained model of a run directory (or a checkpoint file, or a model.safetensors),
    ready to act, in eval mode.

    A training run's checkpoint is what it resumes from, so it is read when there is one; a
    directory holding only `model.safetensors` (a run shared without its checkpoints) is read
    from that, its weights checked against the hash they were written with (seqrl.model_files).
    """
    path = Path(run_dir)
    if path.suffix == ".safetensors" or (path.is_dir() and not checkpoint_path(path).exists()
                                        and (path / MODEL_FILE).exists()):
        payload = read_model_file(path)
    else:
        payload = load_checkpoint(run_dir)
    family = checkpoint_family(payload)
    cfg = family.config_class.from_dict(payload["config"])
    spec = family.spec_from_dict(payload["spec"])
    artefacts = family.artefacts_from_payload(payload.get(family.artefacts_key))
    model = family.build_model(cfg, spec, artefacts)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint in {run_dir} does not match its own config: {exc}") from None
    model.to(device).eval()
    return LoadedRun(model, cfg, spec, artefacts, int(payload["step"]), payload)


class RunPolicy:
    """A trained run acting in Python, one episode or `n` side by side (what `seqrl.load` returns).

        policy = seqrl.load("runs/hopper-medium-continuous-s0")  # a DT at its run's first target
        policy.reset()                      # a new episode (reset(n=8, seed=0): eight at once)
        action = policy.act(observation)    # (obs_dim,) -> (act_dim,); (n, obs_dim) -> (n, act_dim)
        policy.observe(reward)              # what env.step returned for that action

    The family's own policy does the work (the DT's return-to-go and context window, the TT's
    planner), as in `seqrl eval`; actions are clipped to the action bounds the data recorded,
    as the evaluation loop clips them.
    """

    def __init__(self, run: LoadedRun, target: float | None = None, settings: dict[str, Any] | None = None,
                 device: Any = None) -> None:
        self.run = run
        self.family = family_of(run.config)
        conditions = self.family.conditions(run.config, run.spec, None if target is None else [float(target)])
        self.condition = conditions[0]
        self.settings = self.family.eval_settings(settings)
        self.device = device
        self._policy: Any = None

    @property
    def target(self) -> float | None:
        """The return the policy is conditioned on (None: a family without one, e.g. the TT)."""
        return self.condition

    def reset(self, n: int = 1, seed: int = 0) -> None:
        """Start `n` episodes (sampled decoding draws from a generator seeded with `seed`)."""
        import numpy as np

        self._policy = self.family.make_policy(self.run.model, self.run.spec, self.run.config, self.condition,
                                               settings=self.settings, device=self.device)
        self._policy.reset(int(n), int(seed))
        self._rows = np.arange(int(n))
        self._steps = np.zeros(int(n), np.int64)
        self._last = None

    def act(self, observation: Any) -> Any:
        import numpy as np

        if self._policy is None:
            self.reset()
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        obs = obs[None] if single else obs
        if obs.shape != (len(self._rows), self.run.spec.obs_dim):
            raise CheckpointError(f"expected observations of shape ({len(self._rows)}, {self.run.spec.obs_dim}) "
                                  f"after reset(n={len(self._rows)}), got {tuple(np.asarray(observation).shape)}")
        actions = self._policy.act(self._rows, obs, self._steps)
        actions = np.clip(actions, np.asarray(self.run.spec.action_low), np.asarray(self.run.spec.action_high))
        self._last = actions.astype(np.float32)
        return self._last[0] if single else self._last

    def observe(self, reward: Any) -> None:
        """The reward (a number, or one per episode) the environment returned for the last action."""
        import numpy as np

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
