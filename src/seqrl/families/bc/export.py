"""Behaviour cloning's exported policy (`seqrl export`, seqrl.export): one stateless step over
the last `history_len` observations, and a standalone runner that keeps them.

The step (`BCStep`) takes, for a batch of B episodes,

    observations  (B, H, obs_dim) float32  the last H raw observations, oldest first, current last
    lengths       (B,)            int64    how many of them are real (1..H); the first H - n are padding

normalises them with the data's statistics, zeroes the padding (`BCPolicy` pads with zeros of
the normalised states: the steps before the episode began), and returns `action` (B, act_dim),
the MLP's output inside the action bounds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqrl.errors import ConfigError
from seqrl.families import PolicyExport

RUNNER = Path(__file__).with_name("exported_runner.py")
INPUTS = ("observations", "lengths")


class BCStep(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).float().cpu().eval()
        spec = self.model.spec
        self.register_buffer("state_mean", torch.tensor(spec.state_mean, dtype=torch.float32))
        self.register_buffer("state_std", torch.tensor(spec.state_std, dtype=torch.float32))

    def forward(self, observations: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        H = observations.shape[1]
        states = (observations - self.state_mean) / self.state_std  # (B, H, obs_dim): DataSpec.normalize_states
        real = torch.arange(H, device=observations.device)[None, :] >= (H - lengths)[:, None]  # (B, H)
        states = torch.where(real[..., None], states, torch.zeros_like(states))
        return self.model(states)  # (B, act_dim)


def export_policy(run: Any, decode: str | None = None) -> PolicyExport:
    if decode is not None:
        raise ConfigError("--decode applies to a Decision Transformer's categorical head; a BC policy regresses its action")
    cfg, spec = run.config, run.spec
    H = cfg.history_len
    example = (torch.zeros(2, H, spec.obs_dim), torch.tensor([1, H], dtype=torch.long))
    manifest = {
        "history_len": H,
        "obs_dim": spec.obs_dim,
        "act_dim": spec.act_dim,
        "action_low": list(spec.action_low),
        "action_high": list(spec.action_high),
        "state_mean": list(spec.state_mean),  # applied inside the step; here for reference
        "state_std": list(spec.state_std),
        "inputs": list(INPUTS),
    }
    return PolicyExport(BCStep(run.model), example, INPUTS, manifest, RUNNER.read_text(), README)


README = """\
## The step

`policy.onnx` / `policy.pt` maps the last H = `history_len` raw observations of B episodes
(B is free) to their actions; no return is involved (behaviour cloning is not conditioned).

| input | shape | dtype | what |
|---|---|---|---|
| `observations` | (B, H, obs_dim) | float32 | the last H raw observations, oldest first, current last |
| `lengths` | (B,) | int64 | how many are real (1..H); the first H - n rows are padding, ignored |

Output `action` (B, act_dim), inside the action bounds of the data. With H = 1 the step is a
plain function of the current observation.

## The bookkeeping (what runner.py does)

`reset(n)` empties every episode's history; `act(observations)` appends the observation (the
oldest drops out once H are held) and runs the step; `observe(actions, rewards)` does nothing
(it is there so BC and DT runners are driven alike).
"""
