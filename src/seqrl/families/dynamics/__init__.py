"""A single-step Gaussian ensemble dynamics model (PETS-style, Chua et al. 2018) as a family.

It is the feedforward baseline of the Trajectory Transformer paper's model analysis: E
independent MLPs, each predicting a Gaussian over the state change and the reward from (s, a),
trained on the same data through the same loop, and rolled forward open-loop by
`seqrl predict` (seqrl.analysis.prediction). It predicts; it does not act, so it has no policy.

Inputs are the state normalised by the data's mean/std and the raw action; targets are the
state change and the reward, each normalised by its own mean/std over the data. The log
variance is kept between learned bounds with softplus (PETS' max_logvar / min_logvar), which
also get PETS' small penalty so they tighten to the data.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqrl.config import RunConfig
from seqrl.errors import ConfigError
from seqrl.families import Family, register
from seqrl.validation import check_run_numbers


@dataclass(frozen=True)
class DynamicsConfig(RunConfig):
    """Train a Gaussian ensemble dynamics model (the TT paper's single-step baseline)."""

    family: str = "dynamics"
    """Model family: dynamics (these flags)."""
    model: Literal["gaussian-ensemble"] = "gaussian-ensemble"
    """The one dynamics model (the name sweeps and reports use)."""
    ensemble_size: int = 5
    """Independent members (PETS: 5)."""
    hidden_dim: int = 200
    """Width of each member's hidden layers (PETS: 200)."""
    n_layers: int = 4
    """Hidden layers per member (PETS: 4)."""
    steps: int = 10_000
    """Gradient steps."""
    batch_size: int = 256
    """Transitions per step (every member sees its own bootstrap draw of them)."""
    learning_rate: float = 1e-3
    """AdamW peak learning rate."""
    weight_decay: float = 1e-5
    """AdamW weight decay on weight matrices."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up steps."""
    grad_clip: float = 0.0
    """Clip the global gradient norm to this (0 disables, as PETS)."""

    def __post_init__(self) -> None:
        if self.family != "dynamics":
            raise ConfigError(f"DynamicsConfig is the dynamics model's config (family dynamics), got {self.family!r}")
        self._check_run_fields()
        check_run_numbers(self)
        for name in ("ensemble_size", "hidden_dim", "n_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.eval_every:
            raise ConfigError("--eval-every rolls a policy out; a dynamics model does not act (compare it with "
                              "`seqrl predict RUN_DIR`)")


# --------------------------------------------------------------------------- data
@dataclass
class TransitionBatch:
    states: np.ndarray | torch.Tensor  # (B, obs_dim) raw
    actions: np.ndarray | torch.Tensor  # (B, act_dim)
    next_states: np.ndarray | torch.Tensor  # (B, obs_dim) raw
    rewards: np.ndarray | torch.Tensor  # (B,)
    members: np.ndarray | torch.Tensor  # (E, B) int64: each member's bootstrap draw of the batch

    def shard(self, rank: int, world: int) -> "TransitionBatch":
        """Process `rank`'s share of every member's bootstrap draws (the columns of `members`),
        with the whole batch they index: the processes' shares are the one-process loss's terms."""
        from seqrl.distributed import rows

        return dataclasses.replace(self, members=rows(self.members.T, rank, world).T)

    def to_torch(self, device: torch.device | str = "cpu") -> "TransitionBatch":
        return TransitionBatch(*(torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in
                                 (self.states, self.actions, self.next_states, self.rewards, self.members)))


def transitions_with_next(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """(indices of transitions whose next state is known, their next states)."""
    index = np.arange(dataset.num_transitions)
    last = dataset.episode_ends[dataset.episode_index] - 1 == index  # (N,) an episode's last step
    next_states = np.empty_like(dataset.observations)
    next_states[:-1] = dataset.observations[1:]
    if dataset.final_observations is not None:
        next_states[dataset.episode_ends - 1] = dataset.final_observations
        known = np.ones(len(index), bool)
    else:
        known = ~last
    return index[known], next_states[known]


class TransitionSampler:
    """Uniform transitions (s, a, r, s'), and a bootstrap index per ensemble member."""

    def __init__(self, dataset: Any, ensemble_size: int) -> None:
        index, self.next_states = transitions_with_next(dataset)
        if len(index) == 0:
            raise ConfigError(f"{dataset.name}: no transition with a known next state")
        self.states = dataset.observations[index]
        self.actions = dataset.actions[index]
        self.rewards = dataset.rewards[index]
        self.ensemble_size = ensemble_size

    def sample(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        rows = rng.integers(0, len(self.states), size=batch_size)
        members = rng.integers(0, batch_size, size=(self.ensemble_size, batch_size))
        return TransitionBatch(self.states[rows], self.actions[rows], self.next_states[rows],
                               self.rewards[rows].astype(np.float32), members)


def statistics(dataset: Any) -> dict[str, list[float]]:
    """Normalisation of the inputs and targets (the family's artefact, saved in the checkpoint)."""
    index, next_states = transitions_with_next(dataset)
    delta = next_states - dataset.observations[index]
    rewards = dataset.rewards[index].astype(np.float64)
    return {
        "state_mean": dataset.observations.mean(0).tolist(), "state_std": (dataset.observations.std(0) + 1e-6).tolist(),
        "delta_mean": delta.mean(0).tolist(), "delta_std": (delta.std(0) + 1e-6).tolist(),
        "reward_mean": [float(rewards.mean())], "reward_std": [float(rewards.std() + 1e-6)],
    }


# --------------------------------------------------------------------------- model
class EnsembleLinear(nn.Module):
    """E independent linear layers applied at once: (E, B, in) -> (E, B, out)."""

    def __init__(self, members: int, d_in: int, d_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(members, d_in, d_out) / d_in ** 0.5)
        self.bias = nn.Parameter(torch.zeros(members, 1, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class GaussianEnsemble(nn.Module):

    def __init__(self, cfg: DynamicsConfig, spec: Any, stats: dict[str, list[float]]) -> None:
        super().__init__()
        self.spec = spec
        self.obs_dim, self.act_dim, self.members = spec.obs_dim, spec.act_dim, cfg.ensemble_size
        for name, values in stats.items():
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32))
        out = spec.obs_dim + 1  # state change, reward
        dims = [spec.obs_dim + spec.act_dim] + [cfg.hidden_dim] * cfg.n_layers
        self.layers = nn.ModuleList([EnsembleLinear(cfg.ensemble_size, a, b) for a, b in zip(dims, dims[1:])])
        self.out = EnsembleLinear(cfg.ensemble_size, dims[-1], 2 * out)
        self.max_logvar = nn.Parameter(torch.full((out,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((out,), -10.0))

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(E, B, obs) raw states, (E, B, act) -> normalised (mean, logvar), each (E, B, obs + 1)."""
        x = torch.cat([(states - self.state_mean) / self.state_std, actions], -1)
        for layer in self.layers:
            x = F.silu(layer(x))  # PETS' swish
        mean, logvar = self.out(x).chunk(2, dim=-1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def targets(self, states: torch.Tensor, next_states: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        delta = (next_states - states - self.delta_mean) / self.delta_std
        reward = (rewards[..., None] - self.reward_mean) / self.reward_std
        return torch.cat([delta, reward], -1)

    def loss_terms(self, batch: TransitionBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Gaussian negative log-likelihood of each member on its bootstrap draw (mean over
        members, transitions and outputs), plus PETS' 0.01 penalty on the log-variance bounds."""
        pick = batch.members  # (E, B)
        states, actions = batch.states[pick], batch.actions[pick]  # (E, B, .)
        target = self.targets(states, batch.next_states[pick], batch.rewards[pick])
        mean, logvar = self(states, actions)
        nll = (((mean - target) ** 2) * torch.exp(-logvar) + logvar).mean() / 2
        loss = nll + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
        return loss, {"nll": nll.detach(), "mse": ((mean - target) ** 2).mean().detach()}

    def loss(self, batch: TransitionBatch) -> torch.Tensor:
        return self.loss_terms(batch)[0]

    @torch.no_grad()
    def predict(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, obs), (B, act) -> per member: next-state means (E, B, obs), their std (E, B, obs),
        and reward means (E, B), in the data's units."""
        mean, logvar = self(states.expand(self.members, -1, -1), actions.expand(self.members, -1, -1))
        std = torch.exp(logvar / 2)
        next_mean = states + self.delta_mean + mean[..., : self.obs_dim] * self.delta_std
        next_std = std[..., : self.obs_dim] * self.delta_std
        reward = self.reward_mean + mean[..., self.obs_dim] * self.reward_std
        return next_mean, next_std, reward

    def param_groups(self, weight_decay: float) -> list[dict]:
        decay = [p for n, p in self.named_parameters() if n.endswith("weight") and p.requires_grad]
        rest = [p for n, p in self.named_parameters() if not n.endswith("weight") and p.requires_grad]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


class DynamicsFamily(Family):
    tag = "dynamics"
    config_class = DynamicsConfig
    model_names = ("gaussian-ensemble",)
    predicts_states = True

    def make_spec(self, cfg: DynamicsConfig, dataset: Any) -> Any:
        from seqrl.models.spec import DataSpec

        from seqrl.families import refuse_images

        refuse_images(dataset, "the dynamics ensemble", "predicts the next observation number by number from "
                      "normalised vectors")
        if dataset.discrete:
            raise ConfigError(f"{dataset.name} has Discrete({dataset.num_actions}) actions: the dynamics ensemble "
                              "reads continuous actions (a Box dataset)")

        return DataSpec.from_dataset(dataset, rtg_scale=1.0, targets=())

    def fit_artefacts(self, cfg: DynamicsConfig, dataset: Any, spec: Any) -> Any:
        return statistics(dataset)

    def artefacts_to_payload(self, artefacts: Any) -> Any:
        return artefacts  # lists of floats: weights_only loading reads them back

    def artefacts_from_payload(self, state: Any) -> Any:
        if state is None:
            raise ConfigError("the dynamics checkpoint holds no normalisation statistics")
        return state

    def build_model(self, cfg: DynamicsConfig, spec: Any, artefacts: Any) -> GaussianEnsemble:
        return GaussianEnsemble(cfg, spec, artefacts)

    def build_sampler(self, cfg: DynamicsConfig, dataset: Any, spec: Any, artefacts: Any) -> TransitionSampler:
        return TransitionSampler(dataset, cfg.ensemble_size)

    def open_loop(self, model: GaussianEnsemble, cfg: DynamicsConfig, artefacts: Any, dataset: Any, starts: np.ndarray,
                  horizon: int, actions: str = "dataset", context: int = 1) -> dict[str, np.ndarray]:
        """The ensemble mean fed back as the next input; the true next state's log-density under
        the members' Gaussian mixture around that open-loop input (`context` is not used)."""
        if actions != "dataset":
            raise ConfigError("a dynamics model has no policy: roll it forward with --actions dataset")
        device = next(model.parameters()).device
        state = torch.as_tensor(dataset.observations[starts], device=device)  # (n, obs)
        predicted, log_density = [], []
        with torch.no_grad():
            for k in range(horizon):
                action = torch.as_tensor(dataset.actions[starts + k], device=device)
                truth = torch.as_tensor(dataset.observations[starts + k + 1], device=device)
                mean, std, _ = model.predict(state, action)  # (E, n, obs)
                member = torch.distributions.Normal(mean, std).log_prob(truth).sum(-1)  # (E, n)
                log_density.append(torch.logsumexp(member, 0) - np.log(model.members))
                state = mean.mean(0)
                predicted.append(state)
        return {"states": torch.stack(predicted, 1).cpu().numpy(), "log_density": torch.stack(log_density, 1).cpu().numpy()}

    NOT_A_POLICY = "a dynamics model predicts states, it does not act: `seqrl predict RUN_DIR` rolls it forward"

    def conditions(self, cfg: Any, spec: Any, requested: Sequence[float] | None = None) -> tuple:
        raise ConfigError(self.NOT_A_POLICY)

    def make_policy(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError(self.NOT_A_POLICY)


register(DynamicsFamily())
