"""The Decision Transformer's config (`seqrl train`'s flags) and its per-task presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from seqrl.config import task_preset
from seqrl.errors import ConfigError
from seqrl.families.dt.representations import REPRESENTATIONS, ActionRepresentation, representation
from seqrl.lm_init.config import LMInitConfig
from seqrl.validation import check_run_numbers, require_all_finite, require_in_range, require_int, require_positive

# The built-in action representations, as tyro's choices for --model (the registry may hold more:
# a representation registered later is accepted by the config's own check).
ActionVariant = Literal[tuple(REPRESENTATIONS)]  # type: ignore[valid-type]
VARIANTS: tuple[str, ...] = tuple(REPRESENTATIONS)  # the built-in ones, in the paper's order


@dataclass(frozen=True)
class TrainConfig(LMInitConfig):
    """Train a Decision Transformer with one of four action representations."""

    family: Literal["dt"] = "dt"
    """Model family: dt, the Decision Transformer (these flags). The others have their own flags:
    `seqrl train --family tt|bc|mtdt|lm|dynamics --help`."""
    model: ActionVariant = "continuous"
    """Action representation: continuous (baseline DT), tokenized (pooled tokens), tokenized-spread
    (one token per action feature, generated feature by feature), continuous-spread (a registry:
    seqrl.families.dt.actions.REPRESENTATIONS)."""
    head: Literal["regression", "categorical"] = "regression"
    """Action head: regression (MSE on the continuous action, as in the paper) or categorical
    (cross-entropy over each feature's action bins). On Discrete(n) actions the head is
    categorical, cross-entropy over the n actions (the run's config.json records it so)."""
    num_bins: int = 256
    """Bins per action feature for the tokenizer (the paper uses 100 to 3000)."""
    binning: Literal["quantile", "uniform"] = "quantile"
    """How bin edges are placed: data quantiles (default, better in the paper) or uniform width."""
    token_offsets: bool = True
    """Give each action feature its own token range (T_i = Q_i(a_i) + sum_{j<i} |Q_j|). False is
    the paper's shared-range ablation."""
    action_index_embedding: bool = False
    """Add a learned embedding of the action feature's index to each action token (the paper's
    ablation, meant for use with --no-token-offsets). With the pooled `tokenized` model it adds
    only a constant (the mean of the index embeddings) to the pooled token: it cannot tell the
    features apart there, as it does for `tokenized-spread`."""
    pool: Literal["mean", "sum"] = "mean"
    """How the pooled `tokenized` model pools its per-feature token embeddings into one action
    token: mean (seqrl's original) or sum (the authors' code). Runs written before this flag
    existed load as mean."""
    spread_head: Literal["per-feature", "shared"] = "per-feature"
    """Spread models' action head: per-feature (one regression row or classifier per action
    feature, shaped by the task's act_dim: the original) or shared (one scalar regression
    output, or one classifier over the bins, read from every action token: the authors' code,
    task-independent, so `seqrl finetune --rebuild state ...` can keep it)."""
    max_action_features: int = 0
    """Size the action vocabulary and the feature(-index) embeddings for up to this many action
    features, so their shapes do not depend on the task (token ids become feature * num_bins +
    bin, or bin with --no-token-offsets). 0: sized for this task's act_dim (the original)."""
    decode: Literal["argmax", "sample", "expectation"] = "argmax"
    """How a categorical head picks an action: most likely bin, a sample, or the expected value."""
    temperature: float = 1.0
    """Softmax temperature for --decode sample."""

    embed_dim: int = 128
    """Transformer width."""
    n_layers: int = 3
    """Transformer blocks."""
    n_heads: int = 1
    """Attention heads."""
    context_len: int | None = None
    """Timesteps of context (K); a spread step holds 2 + act_dim tokens, a pooled one 3 (default: the
    dataset preset, 30 on Atari and 50 for Pong as the DT paper, else 20)."""
    dropout: float = 0.1
    """Dropout on embeddings, attention and residual branches."""

    rtg_scale: float | None = None
    """Multiply returns-to-go by this (default: the dataset preset: 0.001 for MuJoCo, 1 on Atari)."""
    discount: float = 1.0
    """Discount for returns-to-go."""

    targets: tuple[float, ...] | None = None
    """Target returns for evaluation (default: CORL's per MuJoCo task, the DT paper's per Atari game, else the dataset's
    best return and half of it, taken below the best when returns are negative)."""

    def __post_init__(self) -> None:
        if self.family != "dt" and type(self) is TrainConfig:  # (a subclass, e.g. the multi-task DT, checks its own)
            raise ConfigError(f"TrainConfig is the Decision Transformer's config (family dt), got family {self.family!r}")
        # Every numeric flag up front (NaN, inf, out of range), each error naming its flag.
        check_run_numbers(self)
        self._check_dt_numbers()
        self._check_run_fields()
        # A pretrained trunk (--init) replaces the width and heads with its own (seqrl.lm_init.sources.resolve_init).
        if self.init == "scratch" and self.embed_dim % self.n_heads:
            raise ConfigError(f"--embed-dim ({self.embed_dim}) must be divisible by --n-heads ({self.n_heads})")
        rep = self.representation  # a ConfigError naming the known ones for an unknown --model
        if self.pool not in ("mean", "sum"):
            raise ConfigError(f"unknown --pool {self.pool!r}; choose mean or sum")
        if self.pool != "mean" and not rep.pooled:
            raise ConfigError(f"--pool {self.pool} applies to a pooled tokenized model, not to --model {self.model}")
        if self.spread_head not in ("per-feature", "shared"):
            raise ConfigError(f"unknown --spread-head {self.spread_head!r}; choose per-feature or shared")
        if self.spread_head == "shared" and not rep.spread:
            raise ConfigError(
                f"--spread-head shared needs a spread model (one token per action feature), not --model "
                f"{self.model}: a pooled action token gives every feature the same hidden state to read")
        require_int("max_action_features", self.max_action_features, 0)
        self._check_lm_init_fields()
        if self.max_action_features and not rep.feature_tables:
            raise ConfigError(f"--max-action-features applies to tokenized and spread models; the {self.model} model's "
                              "action embedding is one linear map of the whole action")

    def _check_dt_numbers(self) -> None:
        """The Decision Transformer's numeric fields."""
        for name in ("embed_dim", "n_layers", "n_heads"):
            require_int(name, getattr(self, name), 1)
        if self.context_len is not None:  # None: the dataset preset's (resolve_presets)
            require_int("context_len", self.context_len, 1)
        require_int("num_bins", self.num_bins, 2)
        require_in_range("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        require_positive("temperature", self.temperature)
        if self.rtg_scale is not None:
            require_positive("rtg_scale", self.rtg_scale)
        require_in_range("discount", self.discount, 0.0, 1.0, lo_open=True)
        require_all_finite("targets", self.targets)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        # Runs written before --pool existed pooled by mean, whatever today's default is.
        values = {"pool": "mean", **values}
        return super().from_dict(values)

    @property
    def variant(self) -> str:
        """The action representation (`model`; a multi-task config's model names it after a prefix)."""
        return self.model

    @property
    def representation(self) -> "ActionRepresentation":
        """The registered action representation `variant` names (seqrl.families.dt.actions)."""
        return representation(self.variant)

    @property
    def agnostic_action_layers(self) -> bool:
        """Whether every action-codec parameter's shape is independent of the task's act_dim."""
        return self.representation.spread and self.spread_head == "shared" and self.max_action_features > 0

    @property
    def uses_tokenizer(self) -> bool:
        return self.representation.tokenized or self.head == "categorical"

    def for_discrete(self, num_actions: int, dataset: str = "the data") -> "TrainConfig":
        """This config on Discrete(num_actions) actions: the head categorical (cross-entropy over the
        actions); a ConfigError naming each flag that was set away from its default but has no
        meaning for one discrete action token (binning, offsets, pooling, shared heads...)."""
        rep = self.representation
        space = f"Discrete({num_actions})"
        if rep.build_discrete_embedding is None:
            known = ", ".join(n for n, r in REPRESENTATIONS.items() if r.build_discrete_embedding)
            raise ConfigError(f"--model {self.model} has no form for {dataset}'s {space} actions; choose from {known}")
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        refused = [f"{_as_flag(name, getattr(self, name))} ({why})"
                   for name, why in DISCRETE_MEANINGLESS.items() if getattr(self, name) != defaults[name]]
        if self.decode == "expectation":
            refused.append("--decode expectation (the expected action index is not an action; use argmax or sample)")
        if refused:
            raise ConfigError(
                f"{dataset} has {space} actions: each action is one token of its {num_actions} values, so these "
                f"have no meaning: {'; '.join(refused)}")
        return self if self.head == "categorical" else dataclasses.replace(self, head="categorical")


def _as_flag(name: str, value: Any) -> str:
    """A field as the command line sets it: `--num-bins 100`, `--no-token-offsets`."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value}"


# Flags with no meaning for a Discrete(n) action (one token of n values), and why; refused by
# `TrainConfig.for_discrete` when set away from their defaults (a default is what the user did
# not choose, so a discrete run takes the same command line as a continuous one).
DISCRETE_MEANINGLESS: dict[str, str] = {
    "num_bins": "a discrete action is not binned: its token is its index",
    "binning": "a discrete action is not binned: its token is its index",
    "token_offsets": "one action token has one token range",
    "action_index_embedding": "one action token has no feature index to tell apart",
    "pool": "one action token: nothing to pool",
    "spread_head": "one action token: there is one hidden state to read",
    "max_action_features": "a discrete action is one feature, its vocabulary the task's n actions",
}


# Presets by task family (the dataset name's first part). CORL's DT settings for MuJoCo.
PRESETS: dict[str, dict[str, Any]] = {
    "hopper": {"rtg_scale": 0.001, "targets": (3600.0, 1800.0)},
    "halfcheetah": {"rtg_scale": 0.001, "targets": (12000.0, 6000.0)},
    "walker2d": {"rtg_scale": 0.001, "targets": (5000.0, 2500.0)},
    "ant": {"rtg_scale": 0.001, "targets": (6000.0, 3000.0)},
    # LunarLander returns are a few hundred; 0.01 keeps returns-to-go near 1 like MuJoCo's 0.001.
    "lunarlander": {"rtg_scale": 0.01},
}
DEFAULT_RTG_SCALE = 0.001
DEFAULT_CONTEXT_LEN = 20

# The DT authors' Atari settings (kzl/decision-transformer: atari/run.sh trains with
# --context_length 30, 50 for Pong; mingpt/trainer_atari.py evaluates at one target per game).
# Their returns-to-go are sums of the clipped rewards the data stores, unscaled: a Breakout
# episode's is tens, not thousands, so CORL's 0.001 would squeeze them to nothing.
ATARI_PRESET: dict[str, Any] = {"rtg_scale": 1.0, "context_len": 30}
ATARI_GAME_PRESETS: dict[str, dict[str, Any]] = {  # keyed by ALE's game name, lower case
    "breakout": {"targets": (90.0,)},
    "qbert": {"targets": (14000.0,)},
    "pong": {"context_len": 50, "targets": (20.0,)},
    "seaquest": {"targets": (1150.0,)},
}


def atari_preset(game: str) -> dict[str, Any]:
    """The DT paper's settings for an Atari game (a game outside the paper's four gets its context
    and return scale, and the dataset's own target returns)."""
    return {**ATARI_PRESET, **ATARI_GAME_PRESETS.get(game.lower(), {})}


def preset_for(dataset: str) -> dict[str, Any]:
    """The preset of the task `dataset` holds: an Atari game's when the dataset records
    `seqrl/Atari-v0` with its game (told from its metadata or DQN-replay path, whatever its name),
    else the task its name names (PRESETS)."""
    from seqrl.data.scores import atari_game
    from seqrl.data.sources import dataset_env  # reads no more than a metadata file

    env = dataset_env(dataset) or {}
    game = atari_game(env.get("env_id"), env.get("env_kwargs"))
    if game is not None:
        return atari_preset(game)
    return task_preset(dataset, PRESETS)


def resolve_presets(cfg: TrainConfig) -> TrainConfig:
    """Fill fields left at None from the dataset's preset (rtg_scale falls back to 0.001, the
    context to 20)."""
    preset = preset_for(cfg.dataset)
    updates: dict[str, Any] = {}
    if cfg.rtg_scale is None:
        updates["rtg_scale"] = preset.get("rtg_scale", DEFAULT_RTG_SCALE)
    if cfg.context_len is None:
        updates["context_len"] = preset.get("context_len", DEFAULT_CONTEXT_LEN)
    if cfg.targets is None and "targets" in preset:
        updates["targets"] = preset["targets"]
    return (dataclasses.replace(cfg, **updates) if updates else cfg).with_anneal_resolved()
