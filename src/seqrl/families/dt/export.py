"""The Decision Transformer's exported policy (`seqrl export`, seqrl.export): one stateless step
over a fixed-size context window, and a standalone runner that keeps the window and the
return-to-go.

The step (`DTStep`) is what the ONNX graph and the TorchScript module compute. For a batch of B
episodes it takes the last K steps of each, right-padded as in training and evaluation
(families/dt/context.py):

    observations   (B, K, obs_dim) float32  raw observations (normalised inside the step)
    actions        (B, K, act_dim) float32  actions taken; the last real step's entries are ignored
    returns_to_go  (B, K, 1)       float32  returns-to-go already multiplied by the run's rtg_scale
    timesteps      (B, K)          int64    steps since the episode began (clamped to max_timestep)
    lengths        (B,)            int64    real steps per row, 1..K (the rest is padding)

and returns `action` (B, act_dim): what `DecisionTransformer.act` returns for the last real step
of each row, the action codec's decoding included. A spread representation decodes feature by
feature inside the step: feature j is decoded, written into the window, and the next pass reads
it (one full pass per feature, as `act(..., use_cache=False)`; seqrl's own evaluation uses a
key/value cache, equal up to float rounding).

Decoding is deterministic: a regression head's action, or a categorical head's argmax or
expectation. A run that samples (`--decode sample`) is exported with the decoding named by
`seqrl export --decode argmax|expectation`, and refused without it: a sampler inside a graph
would draw from a generator seqrl does not control, so its actions could not be checked.

The tokenizer's `torch.searchsorted` has no ONNX operator: the step encodes actions by counting
the bin edges at or below each value, which gives the same token ids (`ExportTokenizer`).

Return-to-go bookkeeping lives in the runner (exported_runner.py, written as runner.py): the
return still to collect is kept unscaled in float64, starts at the target and drops by every
reward, and is multiplied by rtg_scale when written into the window, as `DTPolicy` does, so the
step sees the inputs seqrl's evaluation feeds its model.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqrl.errors import ConfigError
from seqrl.families import PolicyExport
from seqrl.families.dt.actions import CategoricalHead

RUNNER = Path(__file__).with_name("exported_runner.py")
INPUTS = ("observations", "actions", "returns_to_go", "timesteps", "lengths")


class ExportTokenizer(nn.Module):
    """The tables of a `TorchActionTokenizer` that acting reads, with an `encode` that ONNX can
    express: feature i's bin is the number of its interior edges at or below the value
    (`torch.searchsorted(..., right=True)`), so the token ids are the same.

    It stands in for the tokenizer in the step's copy of the model (the codec's and a
    categorical head's), which also keeps the tracer away from the tokenizer's properties that
    refuse on a shared token range."""

    def __init__(self, tokenizer: nn.Module) -> None:
        super().__init__()
        self.action_dim = tokenizer.action_dim
        for name in ("boundaries", "bins_per_feature", "offsets", "value_table"):
            self.register_buffer(name, getattr(tokenizer, name).clone())

    @property
    def num_bins(self) -> torch.Tensor:
        return self.bins_per_feature

    def encode(self, actions: torch.Tensor) -> torch.Tensor:
        local = (actions.float()[..., None] >= self.boundaries).sum(-1)  # (..., d): edges <= value (+inf pads count 0)
        return torch.minimum(local, self.bins_per_feature - 1) + self.offsets  # (..., d) token ids


class DTStep(nn.Module):
    """One step of a Decision Transformer policy over a right-padded window (see the module docstring)."""

    def __init__(self, model: nn.Module, decode: str) -> None:
        super().__init__()
        model = copy.deepcopy(model).float().cpu().eval()
        if model.codec.tokenizer is not None:
            tables = ExportTokenizer(model.codec.tokenizer)
            model.codec.tokenizer = tables
            if isinstance(model.codec.head, CategoricalHead):  # it decodes with the tokenizer's values
                model.codec.head.tokenizer = tables
        model.decode_mode = decode
        self.model = model
        spec = model.spec
        self.register_buffer("state_mean", torch.tensor(spec.state_mean, dtype=torch.float32))
        self.register_buffer("state_std", torch.tensor(spec.state_std, dtype=torch.float32))
        self.act_dim = spec.act_dim
        self.passes = spec.act_dim if model.codec.tokens_per_step > 1 else 1  # spread: one pass per feature

    def forward(
        self,
        observations: torch.Tensor,  # (B, K, obs_dim) raw
        actions: torch.Tensor,  # (B, K, act_dim)
        returns_to_go: torch.Tensor,  # (B, K, 1) scaled
        timesteps: torch.Tensor,  # (B, K) int64
        lengths: torch.Tensor,  # (B,) int64
    ) -> torch.Tensor:
        m = self.model
        B, K, d = actions.shape
        states = (observations - self.state_mean) / self.state_std  # (B, K, obs_dim): DataSpec.normalize_states
        last = lengths - 1  # (B,)
        current = torch.arange(K, device=actions.device)[None, :] == last[:, None]  # (B, K): each row's last real step
        # The placeholder of the action being generated, inside the bounds (as `act` writes it).
        actions = torch.where(current[..., None], m.action_center, actions)  # (B, K, d)
        features = torch.arange(d, device=actions.device)  # (d,)
        decoded = actions[:, 0]
        for j in range(self.passes):
            hidden, _ = m(returns_to_go, states, actions, timesteps, step=last)  # (B, 1, k, D)
            prediction = m.codec.head(hidden)  # (B, 1, d[, bins])
            decoded = m.codec.head.decode(prediction, mode=m.decode_mode, temperature=m.temperature)[:, 0]  # (B, d)
            if self.passes > 1:
                # Feature j of the last step is written into the window; the next pass reads it.
                write = current[..., None] & (features == j)  # (B, K, d)
                actions = torch.where(write, decoded[:, None, :], actions)
        if self.passes > 1:
            return actions[torch.arange(B, device=actions.device), last]  # (B, d)
        return decoded  # (B, d)


def export_policy(run: Any, decode: str | None = None) -> PolicyExport:
    """A DT run's policy for `seqrl export` (DTStep, its manifest and the runner)."""
    cfg, spec, model = run.config, run.spec, run.model
    notes = []
    if decode == "sample":
        raise ConfigError("--decode sample cannot be exported; choose argmax or expectation")
    chosen = cfg.decode
    if decode is not None and cfg.head != "categorical":
        raise ConfigError(f"--decode applies to a categorical action head; this run's head is {cfg.head} "
                          "(its regression output is exported as it is)")
    if decode is not None and decode != cfg.decode:
        chosen = decode
        notes.append(f"decoding: {decode} (the run's own is {cfg.decode})")
    if cfg.head == "categorical" and chosen == "sample":
        raise ConfigError("this run decodes its categorical head by sampling (--decode sample), which an "
                          "exported policy does not do (its draws could not be checked against seqrl's); "
                          "export it with --decode argmax or --decode expectation")
    step = DTStep(model, chosen)
    K = cfg.context_len
    B = 2
    example = (
        torch.zeros(B, K, spec.obs_dim), torch.zeros(B, K, spec.act_dim), torch.zeros(B, K, 1),
        torch.zeros(B, K, dtype=torch.long), torch.tensor([1, K], dtype=torch.long)[:B],
    )
    manifest = {
        "context_len": K,
        "obs_dim": spec.obs_dim,
        "act_dim": spec.act_dim,
        "rtg_scale": spec.rtg_scale,
        "targets": list(spec.targets),
        "max_timestep": spec.max_timestep,
        "action_low": list(spec.action_low),
        "action_high": list(spec.action_high),
        "state_mean": list(spec.state_mean),  # applied inside the step; here for reference
        "state_std": list(spec.state_std),
        "representation": cfg.model,
        "head": cfg.head,
        "decode": chosen if cfg.head == "categorical" else "regression",
        "spread": bool(cfg.representation.spread),
        "inputs": list(INPUTS),
    }
    return PolicyExport(step, example, INPUTS, manifest, RUNNER.read_text(), README, notes=notes)


README = """\
## The step

`policy.onnx` / `policy.pt` is one stateless step of the Decision Transformer over a
fixed-size window of the last K = `context_len` steps of B episodes (B is free), right-padded:
a row holding n < K steps has them at positions 0..n-1.

| input | shape | dtype | what |
|---|---|---|---|
| `observations` | (B, K, obs_dim) | float32 | raw observations (normalised inside the step) |
| `actions` | (B, K, act_dim) | float32 | the actions taken; the last real step's are ignored |
| `returns_to_go` | (B, K, 1) | float32 | return still to collect, times `rtg_scale` |
| `timesteps` | (B, K) | int64 | steps since the episode began |
| `lengths` | (B,) | int64 | real steps per row, 1..K |

Output `action` (B, act_dim): the action for each row's last real step, decoded (a spread
representation decodes feature by feature inside the step). Clip it to the environment's action
bounds before stepping, as seqrl's evaluation does.

## The bookkeeping (what runner.py does)

- `reset(n)`: every episode's return-to-go starts at the target return (`target_return=`, default
  the run's first target, `manifest.json: targets`), kept unscaled in float64; the window is empty.
- `act(observations)`: push a step (observation, return-to-go × rtg_scale as float32, timestep =
  steps taken so far, action slot zero); a full window drops its oldest step first. Run the step.
- `observe(actions, rewards)`: write the actions taken (clipped) into the last step; subtract
  the rewards from the return-to-go.
"""
