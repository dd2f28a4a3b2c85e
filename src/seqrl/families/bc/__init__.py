"""Behaviour cloning as a family: the Decision Transformer paper's baseline.

Chen et al. compare the DT with behaviour cloning by an MLP on the state (their
`MLPBCModel`: the last K states flattened, Linear-ReLU-Dropout blocks, a tanh output) and with
"%BC", the same policy trained only on the best X% of episodes by return. This family is that
policy, trained by the one training loop (`seqrl train --family bc`), checkpointed, swept and
reported like the DT and the TT:

- artefacts: none (the policy reads normalised states and regresses raw actions);
- model: `BCModel`, `history_len` states (zero-padded before the episode's start) -> action,
  squashed into the action bounds with tanh, MSE loss; on Discrete(n) actions, n logits and
  cross-entropy, acting by the most likely action (the DT paper's Atari BC);
- sampler: uniformly random transitions of the kept episodes (all, or the top `top_fraction`);
- policy: keeps each episode's last `history_len` normalised states;
- conditions: none (a BC policy is not conditioned on a return; results report target `-`);
- export (`seqrl export`): export.py, the step with its normalisation, and exported_runner.py.

Image observations (uint8 frame stacks, `spec.image`): each of the `history_len` observations goes
through the Nature-DQN encoder (seqrl.models.encoders, the DT's) to `hidden_dim`, and the MLP reads
them flattened; batches and the policy's history stay uint8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqrl.config import RunConfig
from seqrl.errors import ConfigError
from seqrl.families import Family, register


@dataclass(frozen=True)
class BCConfig(RunConfig):
    """Train a behaviour-cloning MLP policy on the state (the Decision Transformer paper's baseline)."""

    family: Literal["bc"] = "bc"
    """Model family: bc, behaviour cloning (these flags)."""
    model: Literal["bc"] = "bc"
    """BC has one model (the name sweeps and reports use)."""
    hidden_dim: int = 128
    """Width of the MLP's hidden layers (the DT paper's MLPBCModel: the DT's embedding width, 128)."""
    n_layers: int = 3
    """Hidden layers (the DT paper's: 3)."""
    dropout: float = 0.1
    """Dropout after each hidden layer."""
    history_len: int = 1
    """States the MLP sees, the current one and the history_len - 1 before it, flattened (the DT
    paper's MLPBCModel takes the last K; 1: the state alone)."""
    top_fraction: float = 1.0
    """Train on this fraction of the episodes, those with the highest returns: the DT paper's
    "%BC" (0.1 is 10% BC); 1.0 is plain behaviour cloning on all the data."""

    def __post_init__(self) -> None:
        if self.family != "bc":
            raise ConfigError(f"BCConfig is behaviour cloning's config (family bc), got family {self.family!r}")
        from seqrl.validation import check_run_numbers, require_in_range, require_int

        check_run_numbers(self)
        self._check_run_fields()
        for name in ("hidden_dim", "n_layers", "history_len"):
            require_int(name, getattr(self, name), 1)
        require_in_range("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        require_in_range("top_fraction", self.top_fraction, 0.0, 1.0, lo_open=True)
        if self.model != "bc":
            raise ConfigError(f"unknown model {self.model!r} for the bc family; its one model is bc")


# --------------------------------------------------------------------------- data
@dataclass
class BCBatch:
    states: np.ndarray | torch.Tensor  # (B, H, obs_dim) normalised, zeros before the episode's start
    actions: np.ndarray | torch.Tensor  # (B, act_dim) raw; Discrete: (B, 1) int64 indices

    def shard(self, rank: int, world: int) -> "BCBatch":
        """Process `rank`'s rows of the batch (seqrl.distributed: data-parallel training)."""
        from seqrl.distributed import shard_rows

        return shard_rows(self, rank, world)

    def to_torch(self, device: torch.device | str = "cpu") -> "BCBatch":
        return BCBatch(*(torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in (self.states, self.actions)))


def kept_episodes(returns: np.ndarray, top_fraction: float) -> np.ndarray:
    """Indices of the episodes %BC trains on: the ceil(fraction * E) highest returns (at least one)."""
    keep = max(1, math.ceil(top_fraction * len(returns) - 1e-9))
    return np.sort(np.argsort(-np.asarray(returns), kind="stable")[:keep])


class BCSampler:
    """Uniformly random transitions of the kept episodes, each with its `history_len` states."""

    def __init__(self, dataset: Any, history_len: int, top_fraction: float, state_mean: np.ndarray,
                 state_std: np.ndarray) -> None:
        self.history_len = history_len
        # Images are gathered per batch from the dataset's uint8 frame store, never normalised.
        self.image = dataset.image
        self.states = dataset.observations if self.image else ((dataset.observations - state_mean) / state_std).astype(np.float32)
        self.actions = dataset.actions
        episodes = kept_episodes(dataset.episode_returns, top_fraction)
        self.episodes = episodes
        starts, ends = dataset.episode_starts[episodes], dataset.episode_ends[episodes]
        self.indices = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])  # (N_kept,)
        self.start_of = dataset.episode_starts[dataset.episode_index]  # (N,) each transition's episode start

    def sample(self, batch_size: int, rng: np.random.Generator) -> BCBatch:
        idx = self.indices[rng.integers(0, len(self.indices), size=batch_size)]  # (B,)
        offsets = np.arange(-self.history_len + 1, 1)  # (H,): oldest first, current last
        rows = idx[:, None] + offsets  # (B, H)
        valid = rows >= self.start_of[idx][:, None]  # steps before the episode's start are padding
        states = self.states[np.where(valid, rows, idx[:, None])]  # (B, H, obs_dim), or (B, H, *shape) uint8
        states[~valid] = 0
        return BCBatch(states, self.actions[idx])


# --------------------------------------------------------------------------- model
class BCModel(nn.Module):
    """The DT paper's MLPBCModel: flattened states -> [Linear, ReLU, Dropout] x n -> Linear -> tanh.

    On Discrete(n) actions the last Linear gives n logits (no tanh): cross-entropy, argmax."""


    def __init__(self, cfg: BCConfig, spec: Any) -> None:
        super().__init__()
        self.spec = spec
        self.discrete = spec.discrete
        layers: list[nn.Module] = []
        width = cfg.history_len * spec.obs_dim
        self.encoder = None
        if spec.image:  # each observation to hidden_dim through the Nature-DQN convolutions
            from seqrl.models.encoders import state_encoder

            self.encoder = state_encoder(spec, cfg.hidden_dim)
            width = cfg.history_len * cfg.hidden_dim
        for _ in range(cfg.n_layers):
            layers += [nn.Linear(width, cfg.hidden_dim), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = cfg.hidden_dim
        layers.append(nn.Linear(width, spec.num_actions if self.discrete else spec.act_dim))
        self.mlp = nn.Sequential(*layers)
        if self.discrete:
            return
        low = torch.tensor(spec.action_low, dtype=torch.float32)
        high = torch.tensor(spec.action_high, dtype=torch.float32)
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(B, H, obs_dim) normalised states -> (B, act_dim) actions inside the bounds
        (Discrete: (B, n) logits). Images: (B, H, *obs_shape) uint8."""
        if self.encoder is not None:
            states = self.encoder(states)  # (B, H, hidden_dim)
        if self.discrete:
            return self.mlp(states.flatten(1))
        return self.center + self.half_range * torch.tanh(self.mlp(states.flatten(1)))

    def loss_terms(self, batch: BCBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.discrete:
            return F.cross_entropy(self(batch.states).float(), batch.actions[:, 0]), {}
        return F.mse_loss(self(batch.states).float(), batch.actions), {}

    @torch.no_grad()
    def act(self, states: torch.Tensor) -> torch.Tensor:
        """(B, act_dim) actions; Discrete: (B, 1) the most likely action indices."""
        if self.discrete:
            return self(states).argmax(-1, keepdim=True)
        return self(states)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on the weight matrices, never on biases."""
        decay = [p for n, p in self.named_parameters() if p.requires_grad and n.endswith("weight")]
        no_decay = [p for n, p in self.named_parameters() if p.requires_grad and not n.endswith("weight")]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# --------------------------------------------------------------------------- policy
class BCPolicy:
    """Acts for n episodes at once; each keeps its last `history_len` normalised states."""

    def __init__(self, model: BCModel, spec: Any, history_len: int, device: torch.device) -> None:
        self.model, self.spec, self.history_len, self.device = model, spec, history_len, device

    def reset(self, n: int, seed: int) -> None:
        shape, dtype = (self.spec.observation_shape, np.uint8) if self.spec.image else ((self.spec.obs_dim,), np.float32)
        self.history = np.zeros((n, self.history_len, *shape), dtype)

    def act(self, rows: np.ndarray, observations: np.ndarray, timesteps: np.ndarray) -> np.ndarray:
        history = self.history[rows]
        history[np.asarray(timesteps) == 0] = 0  # a new episode in this slot
        history = np.concatenate([history[:, 1:], self.spec.normalize_states(observations)[:, None]], axis=1)
        self.history[rows] = history
        states = torch.from_numpy(history).to(self.device)
        return self.model.act(states).float().cpu().numpy()

    def observe(self, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


# --------------------------------------------------------------------------- family
class BehaviourCloningFamily(Family):
    tag = "bc"
    config_class = BCConfig
    model_names = ("bc",)
    exports = ("onnx", "torchscript")

    def make_spec(self, cfg: BCConfig, dataset: Any) -> Any:
        from seqrl.models.spec import DataSpec

        return DataSpec.from_dataset(dataset, rtg_scale=1.0, targets=())

    def fit_artefacts(self, cfg: BCConfig, dataset: Any, spec: Any) -> Any:
        return None

    def artefacts_to_payload(self, artefacts: Any) -> Any:
        return None

    def artefacts_from_payload(self, state: Any) -> Any:
        return None

    def build_model(self, cfg: BCConfig, spec: Any, artefacts: Any) -> BCModel:
        return BCModel(cfg, spec)

    def build_sampler(self, cfg: BCConfig, dataset: Any, spec: Any, artefacts: Any) -> BCSampler:
        return BCSampler(dataset, cfg.history_len, cfg.top_fraction, np.asarray(spec.state_mean, np.float32),
                         np.asarray(spec.state_std, np.float32))

    def conditions(self, cfg: BCConfig, spec: Any, requested: Sequence[float] | None = None) -> tuple:
        if requested:
            raise ConfigError("a behaviour-cloning policy is not conditioned on a target return: drop --targets")
        return (None,)

    def make_policy(self, model: Any, spec: Any, cfg: BCConfig, condition: Any, settings: dict[str, Any] | None = None,
                    device: Any = None) -> BCPolicy:
        unused = sorted(k for k, v in (settings or {}).items() if v is not None)
        if unused:
            raise ConfigError(f"{', '.join(unused)}: planner settings apply to the Trajectory Transformer, not to a BC run")
        device = torch.device(device) if device is not None else next(model.parameters()).device
        return BCPolicy(model, spec, cfg.history_len, device)

    def export_policy(self, run: Any, decode: str | None = None) -> Any:
        from seqrl.families.bc.export import export_policy

        return export_policy(run, decode)

    def describe(self, cfg: BCConfig) -> str:
        return "bc" if cfg.top_fraction >= 1.0 else f"bc-top{cfg.top_fraction * 100:g}"


register(BehaviourCloningFamily())

