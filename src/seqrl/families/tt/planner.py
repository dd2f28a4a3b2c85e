"""Beam-search planning with a Trajectory Transformer, batched over environments, in one tensor program.

`beam_plan` is one plain function over (model, prefixes, settings, generators): the paper's
reward-maximising beam search (`mode="reward"`) and its likelihood beam search for imitation
(`mode="likelihood"`). Rows of every tensor are (environment, beam[, expansion]) flattened,
environment-major, so each environment keeps its own beam and nothing goes back to numpy.

Per planned step t (the authors' `beam_plan`):
1. every beam is copied `expansion` times;
2. the action tokens are sampled one by one, from the model's distribution with its least
   likely bins dropped while their mass stays below `action_cdf` (the authors' `cdf_act`: 0.6
   keeps roughly the most likely 40% of the mass), then optionally cut to the `action_top_k`
   most likely;
3. the reward and value tokens are taken greedily, and their *expected* values under the
   predicted distributions give r_t and V_t;
4. candidates are scored by sum_{i<=t} discount^i r_i + discount^(t+1) V_t (reward mode) or by
   the log-likelihood of every token generated so far (likelihood mode), and each environment
   keeps its best `beam_width`;
5. the next observation's tokens are taken greedily.
The plan is the best candidate's H transitions; its first action (or first `replan_every`) is taken.

Exactness and speed: the model sees at most `context_transitions` * T - 1 tokens (the trained
window, when smaller), cropped in whole transitions from the front, as the authors' planner
crops. `TokenDecoder` gives exactly the logits a full forward over that window gives, but runs
the trunk over one new token per row against a key/value cache; only a crop (once per planned
transition, when the window is full) re-encodes the window. The authors' planner re-encodes the
window for every token; `use_cache=False` does that too and is the reference the tests and
bench/plan.py compare against.

Sampling uses the Gumbel-max trick with noise drawn from one generator per environment, so an
environment's plan does not depend on which other environments are planned beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal, Sequence

import torch

from seqrl.errors import ConfigError


@dataclass(frozen=True)
class PlannerSettings:
    """Beam search settings (the authors' defaults; `PLANNER_PRESETS` has their per-task ones)."""

    mode: Literal["reward", "likelihood"] = "reward"
    horizon: int = 15
    beam_width: int = 128
    expansion: int = 2
    action_cdf: float | None = 0.6
    action_top_k: int | None = None
    context_transitions: int = 5
    replan_every: int = 1
    discount: float = 0.99
    use_cache: bool = True
    context_value: Literal["planned", "zero"] = "planned"

    def __post_init__(self) -> None:
        for name in ("horizon", "beam_width", "expansion", "context_transitions", "replan_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.mode not in ("reward", "likelihood"):
            raise ConfigError(f"unknown --plan-mode {self.mode!r}; choose reward or likelihood")
        if self.action_cdf is not None and not 0.0 < self.action_cdf <= 1.0:
            raise ConfigError(f"--action-cdf is the probability mass to drop, in (0, 1], got {self.action_cdf}")
        if self.action_top_k is not None and self.action_top_k < 1:
            raise ConfigError(f"--action-top-k must be >= 1, got {self.action_top_k}")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError(f"planner discount must be in (0, 1], got {self.discount}")
        if self.context_value not in ("planned", "zero"):
            raise ConfigError(f"unknown context value {self.context_value!r}; choose planned or zero")
        if self.context_transitions < 2:
            # The model sees context_transitions * T - 1 tokens, cropped in whole transitions:
            # with 1, finishing the current transition crops the window to nothing.
            raise ConfigError("--context-transitions must be >= 2: the model's window is cropped in whole "
                              "transitions, and one transition's window is emptied as soon as it is complete")
        if self.replan_every > self.horizon:
            raise ConfigError(f"--replan-every ({self.replan_every}) cannot exceed --horizon ({self.horizon})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The authors' per-task overrides (trajectory-transformer's config/offline.py), by task family.
PLANNER_PRESETS: dict[str, dict[str, Any]] = {
    "halfcheetah": {"horizon": 5, "beam_width": 32},
}


def planner_settings(dataset: str, discount: float, overrides: dict[str, Any] | None = None) -> PlannerSettings:
    """The defaults, the task's preset, the run's discount, then the user's non-None overrides."""
    from seqrl.config import task_preset  # the same task rule as the DT presets

    values: dict[str, Any] = {"discount": discount, **task_preset(dataset, PLANNER_PRESETS)}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = set(PlannerSettings.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown planner settings: {', '.join(sorted(unknown))}")
    return replace(PlannerSettings(), **values)


# --------------------------------------------------------------------------- seqrl eval's flags
@dataclass(frozen=True)
class PlannerFlags:
    """The Trajectory Transformer's planner settings for `seqrl eval` (unset: the authors' defaults
    and per-task presets; see seqrl.families.tt.planner)."""

    plan_mode: Literal["reward", "likelihood"] | None = None
    """reward: beam search for reward plus value (offline RL); likelihood: the most probable trajectory (imitation)."""
    horizon: int | None = None
    """Planning horizon in transitions (default 15; halfcheetah 5)."""
    beam_width: int | None = None
    """Beams kept per environment (default 128; halfcheetah 32)."""
    expansion: int | None = None
    """Candidates sampled per beam each step (default 2)."""
    action_cdf: float | None = None
    """Drop the least likely action bins while their probability mass stays below this, the authors'
    cdf_act (default 0.6: sample from roughly the most likely 40% of the mass)."""
    action_top_k: int | None = None
    """Or from the k most likely bins (default: off)."""
    context_transitions: int | None = None
    """Transitions of history the model sees (default 5)."""
    replan_every: int | None = None
    """Plan every k steps, taking the plan's actions open-loop in between (default 1)."""
    cache: bool = True
    """Reuse keys and values between tokens (--no-cache re-encodes the window for every token, as
    the authors' planner does: slow, the reference the cache is tested equal to)."""
    context_value: Literal["planned", "zero"] | None = None
    """Value token of past transitions in the context: the plan's own prediction (default) or a
    placeholder (the token of a value of 0). No effect on a model that masks value tokens, as
    the authors' and seqrl's default do; it matters only for runs trained with --no-mask-values."""

    def overrides(self) -> dict[str, Any]:
        values = {k: v for k, v in asdict(self).items() if k not in ("plan_mode", "cache")}
        values.update(mode=self.plan_mode, use_cache=None if self.cache else False)
        return {k: v for k, v in values.items() if v is not None}



# --------------------------------------------------------------------------- the window decoder
class TokenDecoder:
    """Next-token logits of growing token sequences (one per row), as the model sees them.

    The model's window is the last tokens of the sequence, at most `max_tokens`, cropped from the
    front in whole transitions. With `use_cache`, a crop re-encodes the window once (a forward that
    caches every layer's keys and values, padded to `max_tokens`), and every later token runs the
    trunk for that one token only.

    A crop comes a few tokens after beams were expanded, so rows are copies of fewer parents up
    to those few tokens: the re-encode runs the forward over the distinct rows of that shared
    part only, copies its cache to every row, and extends it by each row's own last tokens
    (exact, as every extension is).
    """

    def __init__(self, model: Any, tokens: torch.Tensor, max_tokens: int, use_cache: bool = True,
                 goal: torch.Tensor | None = None) -> None:
        self.model = model
        self.tokens = tokens  # (R, L) the whole sequence so far
        self.goal = goal  # (R, G) a goal-conditioned model's goal tokens: a prefix of every window
        self.T = model.transition_dim
        self.max_tokens = max_tokens
        self.use_cache = use_cache
        self.start = 0  # the window's first token (a multiple of T)
        self.cache: list | None = None
        self.encoded = 0  # window tokens whose keys and values the cache holds
        self.fresh = tokens.shape[1]  # tokens appended since rows were last copied (may differ between copies)

    def append(self, new: torch.Tensor) -> None:
        self.tokens = torch.cat([self.tokens, new[:, None]], dim=1)
        self.fresh += 1

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` (in that order, repeats allowed): beams expanded or selected."""
        self.fresh = 0
        self.tokens = self.tokens[index]
        if self.goal is not None:
            self.goal = self.goal[index]
        if self.cache is not None:
            self.cache = [(k[index], v[index]) for k, v in self.cache]

    def logits(self) -> torch.Tensor:
        """(R, bins) logits of the next token of every row."""
        length = self.tokens.shape[1] - self.start
        if length > self.max_tokens:  # crop whole transitions from the front (the authors' rule)
            self.start += math.ceil((length - self.max_tokens) / self.T) * self.T
            self.cache = None
            length = self.tokens.shape[1] - self.start
        window = self.tokens[:, self.start :]
        if not self.use_cache:
            return self._forward(window, None, self.goal)[:, -1]
        if self.cache is None or self.encoded != length - 1:
            return self._encode(window)
        logits = self.model.extend(window[:, -1], length - 1, self.cache, self.max_tokens)
        self.encoded = length
        return logits

    def _forward(self, window: torch.Tensor, cache: list | None, goal: torch.Tensor | None) -> torch.Tensor:
        # Only a goal-conditioned model takes a goal (and is given one).
        return self.model(window, cache=cache) if goal is None else self.model(window, cache=cache, goal=goal)

    def _encode(self, window: torch.Tensor) -> torch.Tensor:
        """Fill the cache for `window` (R, W); the logits after its last token."""
        W = window.shape[1]
        shared = W - max(1, min(self.fresh, W))  # the part copies of one row agree on
        # Rows agree only if their goals do too: the goal prefix is part of what is shared.
        keyed = window if self.goal is None else torch.cat([self.goal, window], dim=1)
        G = keyed.shape[1] - W
        distinct, inverse = torch.unique(keyed[:, : G + shared], dim=0, return_inverse=True) if shared else (keyed, None)
        if shared == 0 or len(distinct) == len(window):
            distinct, inverse, shared = keyed, None, W
        cache: list = []
        logits = self._forward(distinct[:, G:], cache, distinct[:, :G] if G else None)[:, -1]
        pad = self.max_tokens - shared
        # (R, H, max_tokens, D/H): room to extend into, one copy per row
        self.cache = [tuple(torch.nn.functional.pad(t, (0, 0, 0, pad))[inverse] if inverse is not None
                            else torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in kv) for kv in cache]
        for position in range(shared, W):  # each row's own last tokens
            logits = self.model.extend(window[:, position], position, self.cache, self.max_tokens)
        self.encoded = W
        return logits


# --------------------------------------------------------------------------- sampling
def filter_logits(logits: torch.Tensor, cdf: float | None, top_k: int | None) -> torch.Tensor:
    """The authors' `filter_cdf`, then their `top_k_logits` (trajectory/search/sampling.py).

    `cdf` is the mass to DROP: bins are sorted from least to most likely, and every bin at most
    as likely as the last one whose cumulative mass is still below `cdf` is set to -inf (when no
    cumulative mass is below `cdf`, the least likely bin and its ties, as their argmax does). So
    cdf = 0.6 keeps about the most likely 40% of the mass. Then only the `top_k` most likely
    bins stay. One deliberate difference: where the authors' filter would drop every bin (the
    most likely bins tie and hold less than 1 - cdf between them), theirs samples uniformly over
    all bins, and this keeps the most likely ones."""
    if cdf is not None:
        probs = logits.softmax(-1)  # (R, bins)
        ascending = probs.sort(-1).values
        below = ascending.cumsum(-1) < cdf
        last_below = (below * torch.arange(probs.shape[-1], device=probs.device)).argmax(-1, keepdim=True)  # (R, 1)
        drop = probs <= ascending.gather(-1, last_below)
        drop &= probs < probs.max(-1, keepdim=True).values  # the most likely bin always stays
        logits = logits.masked_fill(drop, float("-inf"))
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits


def gumbel_noise(generators: Sequence[torch.Generator], rows_per_env: int, bins: int, device: torch.device) -> torch.Tensor:
    """(n_envs * rows_per_env, bins) Gumbel noise, each environment's rows from its own generator."""
    uniform = torch.cat([torch.rand(rows_per_env, bins, generator=g, device=device) for g in generators])
    return -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))


def _expected(probs: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(R, bins) probabilities, (bins,) bin values -> (R,) expectation."""
    return probs @ values


# --------------------------------------------------------------------------- beam search
@torch.no_grad()
def beam_plan(
    model: Any,
    prefix: torch.Tensor,  # (n, L0) token ids: context transitions then the current observation
    settings: PlannerSettings,
    generators: Sequence[torch.Generator],  # one per environment
    goal: torch.Tensor | None = None,  # (n, G) goal token ids, for a goal-conditioned model
) -> torch.Tensor:
    """The best plan of each environment: (n, horizon, T) token ids of its planned transitions.

    Every row of `prefix` starts at a transition boundary and ends with a whole observation. A
    goal-conditioned model plans every environment towards its `goal` (in likelihood mode: the
    most probable trajectory given the goal).
    """
    n, L0 = prefix.shape
    if len(generators) != n:
        raise ValueError(f"need one generator per environment: {n} prefixes, {len(generators)} generators")
    device = prefix.device
    T, obs_dim, act_dim = model.transition_dim, model.observation_dim, model.action_dim
    B, E, H = settings.beam_width, settings.expansion, settings.horizon
    table = model.discretizer.value_table  # (T, bins) value of each bin, per dimension
    max_tokens = min(model.block_size, settings.context_transitions * T - 1)
    goals = None if goal is None else goal.repeat_interleave(B, dim=0)  # (n*B, G)
    decoder = TokenDecoder(model, prefix.repeat_interleave(B, dim=0), max_tokens, settings.use_cache, goals)  # (n*B, L0)
    rewards = torch.zeros(n * B, H + 1, device=device)  # r_0 .. r_t then V_t
    loglik = torch.zeros(n * B, device=device)
    discounts = settings.discount ** torch.arange(H + 1, device=device, dtype=torch.float32)
    dim_offsets = model.discretizer.offsets

    def take(dim: int, sample: bool) -> torch.Tensor:
        """Choose the next token of every row (dimension `dim`); returns the probabilities."""
        nonlocal loglik
        logits = decoder.logits()  # (R, bins)
        logprobs = logits.log_softmax(-1)
        if sample:
            filtered = filter_logits(logits, settings.action_cdf, settings.action_top_k)
            noise = gumbel_noise(generators, logits.shape[0] // n, logits.shape[1], device)
            local = (filtered + noise).argmax(-1)
        else:
            local = logits.argmax(-1)
        loglik = loglik + logprobs.gather(1, local[:, None])[:, 0]
        decoder.append(local + dim_offsets[dim])
        return logprobs.exp()

    for t in range(H):
        expand = torch.arange(n * B, device=device).repeat_interleave(E)  # (n*B*E,)
        decoder.reorder(expand)
        rewards, loglik = rewards[expand], loglik[expand]
        for j in range(act_dim):
            take(obs_dim + j, sample=True)
        reward_probs = take(obs_dim + act_dim, sample=False)
        value_probs = take(obs_dim + act_dim + 1, sample=False)
        rewards[:, t] = _expected(reward_probs, table[obs_dim + act_dim])
        rewards[:, t + 1] = _expected(value_probs, table[obs_dim + act_dim + 1])
        score = (rewards * discounts).sum(-1) if settings.mode == "reward" else loglik  # (n*B*E,)
        best = torch.topk(score.view(n, B * E), B, dim=-1).indices  # (n, B), within each environment
        keep = (best + torch.arange(n, device=device)[:, None] * (B * E)).flatten()  # (n*B,)
        decoder.reorder(keep)
        rewards, loglik, score = rewards[keep], loglik[keep], score[keep]
        if t < H - 1:
            for j in range(obs_dim):
                take(j, sample=False)
    winner = score.view(n, B).argmax(-1) + torch.arange(n, device=device) * B  # (n,)
    planned = decoder.tokens[winner, L0:]  # (n, H*T - obs_dim)
    planned = torch.cat([prefix[:, L0 - obs_dim :], planned], dim=1)  # the current observation first
    return planned.view(n, H, T)
