"""Configuration: frozen dataclasses whose field docstrings become `--help`.

Values that depend on the dataset's *name* (return scale, target returns) have presets, filled
in by `resolve_presets` and written to the run directory. Values derived from the data itself
(dimensions, normalisation statistics, vocabulary size) live in `seqrl.models.spec.DataSpec`,
never on the config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from seqrl.errors import ConfigError

ActionVariant = Literal["continuous", "tokenized", "tokenized-spread", "continuous-spread"]
VARIANTS: tuple[str, ...] = ("continuous", "tokenized", "tokenized-spread", "continuous-spread")


@dataclass(frozen=True)
class RunConfig:
    """What every model family's run shares: data, optimisation, evaluation and run bookkeeping.

    Each family's config (TrainConfig for the DT, TTConfig for the TT) adds its own fields and
    its own defaults; the training loop, checkpoints and sweeps read only these."""

    dataset: str
    """Dataset to train on: a local name (`lunarlander-medium`), a Minari id, `d4rl:NAME`, or a path."""
    family: str = "dt"
    """Model family tag (each family's config sets its own; seqrl.families registers them)."""
    steps: int = 100_000
    """Gradient steps."""
    batch_size: int = 64
    """Context windows per step."""
    learning_rate: float = 1e-4
    """AdamW peak learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay (not applied to norms, biases or embeddings)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    warmup_steps: int = 10_000
    """Linear learning-rate warm-up steps."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """Learning rate after warm-up: constant (CORL's DT) or cosine decay to --min-lr-ratio of the
    peak at the last step, then held there (the TT preset)."""
    min_lr_ratio: float = 0.1
    """Floor of the cosine schedule, as a fraction of the peak learning rate."""
    grad_clip: float = 0.25
    """Clip the global gradient norm to this (0 disables)."""
    eval_every: int = 0
    """Evaluate every this many steps during training, logging normalized scores to metrics.jsonl
    (0: never during training; `seqrl eval RUN_DIR` evaluates a finished run)."""
    eval_episodes: int = 10
    """Episodes per target for evaluation during training."""
    eval_targets: Literal["all", "highest"] = "all"
    """Target returns evaluated during training (`--eval-every`): all of the run's, or the highest
    only, the one its score is reported at (half the cost with two targets). The final
    evaluation of a sweep and `seqrl eval` still use all of them. Runs not conditioned on a
    target (BC, TT) evaluate their one condition either way."""
    eval_seed: int = 10_000
    """Seed of the evaluation environments (kept apart from the training seed)."""
    seed: int = 0
    """Training seed (parameter init, batch sampling, dropout)."""
    device: str = "auto"
    """cpu, cuda, cuda:N, or auto (cuda when available)."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """bf16 autocast where the hardware supports it (auto), or force fp32/bf16."""
    compile: bool = False
    """Compile the model with torch.compile."""
    log_every: int = 100
    """Write a metrics line every this many steps."""
    checkpoint_every: int = 1000
    """Write a checkpoint every this many steps (and always at the end)."""
    checkpoint_minutes: float = 10.0
    """Also write one when this many minutes have passed since the last (0: by steps only), so a
    stopped run whose steps are slow, or fewer than --checkpoint-every, can still be resumed."""
    tensorboard: bool = False
    """Also write TensorBoard event files to the run directory."""
    progress: bool = True
    """Show a progress bar."""
    run_dir: str | None = None
    """Run directory (default: runs/<dataset>-<model>-s<seed>)."""
    resume: bool = False
    """Continue an interrupted run from its latest checkpoint."""

    def _check_run_fields(self) -> None:
        """Checks every family's config runs on its shared fields (called from its __post_init__)."""
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"unknown --lr-schedule {self.lr_schedule!r}; choose constant or cosine")
        if self.eval_targets not in ("all", "highest"):
            raise ConfigError(f"unknown --eval-targets {self.eval_targets!r}; choose all or highest")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """The config a config.json or checkpoint holds (written by any seqrl version of this family)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(sorted(unknown))}")
        # JSON and checkpoints store tuples as lists.
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)


@dataclass(frozen=True)
class LMInitConfig(RunConfig):
    """Where a trunk comes from, and the language-model objectives (Reid et al. 2022, seqrl.init).

    A family whose model has a `trunk` (models/gpt.py) takes these by deriving its config from
    this class; the defaults (scratch, no auxiliary losses) are a plain run's behaviour."""

    init: str = "scratch"
    """Where the trunk's weights come from: scratch, gpt2:DIR (a GPT-2 saved locally with
    save_pretrained; nothing is downloaded), lm:RUN_DIR (a `seqrl pretrain-lm` run) or run:RUN_DIR
    (the trunk of any seqrl run). A pretrained trunk sets --embed-dim, --n-layers, --n-heads and
    the activation to its own."""
    init_positions: Literal["timestep", "drop"] = "timestep"
    """The LM's learned position table: timestep uses it as the timestep embedding (the paper's
    way; rows past the LM's context start fresh), drop leaves the timestep embedding fresh."""
    activation: Literal["gelu", "gelu_tanh"] = "gelu"
    """The trunk's GELU: exact erf, or the tanh approximation GPT-2 uses (a pretrained trunk sets its own)."""
    trunk_learning_rate: float | None = None
    """Peak learning rate of the trunk's parameters (default: --learning-rate), e.g. lower for a pretrained trunk."""
    freeze_trunk: bool = False
    """Train everything but the trunk (the paper's Table 5 frozen-trunk ablation)."""
    lora_rank: int = 0
    """LoRA adapters of this rank on the trunk's attention projections (qkv and output), through
    peft; the rest of the trunk is frozen. 0: no LoRA."""
    lora_alpha: float = 16.0
    """LoRA scaling numerator (peft's lora_alpha)."""
    align_weight: float = 0.0
    """Weight lambda1 of the alignment loss (the paper's 0.1): minus the maximum cosine similarity
    between each input embedding and k-means centres of the LM's token embeddings. 0: off."""
    align_clusters: int = 1000
    """k of the k-means over the LM's token embeddings (the paper's 1000)."""
    align_anneal_steps: int = 5000
    """The alignment weight follows the authors' sigmoid from lambda1 down to ~0 at this step."""
    cotrain_weight: float = 0.0
    """Weight lambda2 of language-model co-training: the LM loss on corpus batches through the
    LM's tied token head. 0: off."""
    cotrain_corpus: str | None = None
    """Co-training corpus: a text file or folder (default: the corpus of the lm: run)."""
    cotrain_batch_size: int = 16
    """Text windows per co-training batch."""
    cotrain_context: int = 128
    """Tokens per co-training window."""

    def _check_lm_init_fields(self) -> None:
        """Checks of these fields, for every family whose config derives from this class."""
        from seqrl.init import parse_init
        from seqrl.validation import require_in_range, require_int

        parse_init(self.init)
        if self.init_positions not in ("timestep", "drop"):
            raise ConfigError(f"unknown --init-positions {self.init_positions!r}; choose timestep or drop")
        if self.activation not in ("gelu", "gelu_tanh"):
            raise ConfigError(f"unknown --activation {self.activation!r}; choose gelu or gelu_tanh")
        if self.trunk_learning_rate is not None:
            require_in_range("trunk_learning_rate", self.trunk_learning_rate, 0.0, lo_open=True)
        require_int("lora_rank", self.lora_rank, 0)
        require_in_range("lora_alpha", self.lora_alpha, 0.0, lo_open=True)
        if self.lora_rank and self.freeze_trunk:
            raise ConfigError("--lora-rank trains adapters inside the trunk; --freeze-trunk freezes all of it: choose one")
        for name in ("align_weight", "cotrain_weight"):
            require_in_range(name, getattr(self, name), 0.0)
        require_int("align_clusters", self.align_clusters, 1)
        require_int("align_anneal_steps", self.align_anneal_steps, 1)
        require_int("cotrain_batch_size", self.cotrain_batch_size, 1)
        require_int("cotrain_context", self.cotrain_context, 1)
        if self.align_weight and self.init.split(":", 1)[0] not in ("gpt2", "lm"):
            raise ConfigError("--align-weight needs a language model's token embeddings: pass --init gpt2:DIR or lm:RUN_DIR")
        if self.cotrain_weight and self.init.split(":", 1)[0] not in ("gpt2", "lm"):
            raise ConfigError("--cotrain-weight needs a language model: pass --init gpt2:DIR or lm:RUN_DIR")


@dataclass(frozen=True)
class TrainConfig(LMInitConfig):
    """Train a Decision Transformer with one of four action representations."""

    family: Literal["dt"] = "dt"
    """Model family: dt, the Decision Transformer (these flags). The others have their own flags:
    `seqrl train --family tt|bc|mtdt|lm|dynamics --help`."""
    model: ActionVariant = "continuous"
    """Action representation: continuous (baseline DT), tokenized (pooled tokens), tokenized-spread
    (one token per action feature, generated feature by feature), continuous-spread."""
    head: Literal["regression", "categorical"] = "regression"
    """Action head: regression (MSE on the continuous action, as in the paper) or categorical
    (cross-entropy over each feature's action bins)."""
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
    context_len: int = 20
    """Timesteps of context (K); a spread step holds 2 + act_dim tokens, a pooled one 3."""
    dropout: float = 0.1
    """Dropout on embeddings, attention and residual branches."""

    rtg_scale: float | None = None
    """Multiply returns-to-go by this (default: the dataset preset, e.g. 0.001 for MuJoCo)."""
    discount: float = 1.0
    """Discount for returns-to-go."""

    targets: tuple[float, ...] | None = None
    """Target returns for evaluation (default: CORL's per task, else the dataset's best return and half)."""

    def __post_init__(self) -> None:
        if self.family != "dt" and type(self) is TrainConfig:  # (a subclass, e.g. the multi-task DT, checks its own)
            raise ConfigError(f"TrainConfig is the Decision Transformer's config (family dt), got family {self.family!r}")
        from seqrl.validation import check_dt_numbers, check_run_numbers, require_int

        # Every numeric flag up front (NaN, inf, out of range), each error naming its flag.
        check_run_numbers(self)
        check_dt_numbers(self)
        self._check_run_fields()
        # A pretrained trunk (--init) replaces the width and heads with its own (seqrl.init.resolve_init).
        if self.init == "scratch" and self.embed_dim % self.n_heads:
            raise ConfigError(f"--embed-dim ({self.embed_dim}) must be divisible by --n-heads ({self.n_heads})")
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown model {self.model!r}; choose from {', '.join(VARIANTS)}")
        if self.pool not in ("mean", "sum"):
            raise ConfigError(f"unknown --pool {self.pool!r}; choose mean or sum")
        if self.pool != "mean" and self.model != "tokenized":
            raise ConfigError(f"--pool {self.pool} applies to the pooled tokenized model, not to --model {self.model}")
        if self.spread_head not in ("per-feature", "shared"):
            raise ConfigError(f"unknown --spread-head {self.spread_head!r}; choose per-feature or shared")
        if self.spread_head == "shared" and not self.model.endswith("spread"):
            raise ConfigError(
                f"--spread-head shared needs a spread model (tokenized-spread or continuous-spread), not --model "
                f"{self.model}: a pooled action token gives every feature the same hidden state to read")
        require_int("max_action_features", self.max_action_features, 0)
        self._check_lm_init_fields()
        if self.max_action_features and self.model == "continuous":
            raise ConfigError("--max-action-features applies to tokenized and spread models; the continuous model's "
                              "action embedding is one linear map of the whole action")

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
    def agnostic_action_layers(self) -> bool:
        """Whether every action-codec parameter's shape is independent of the task's act_dim."""
        return self.variant.endswith("spread") and self.spread_head == "shared" and self.max_action_features > 0

    @property
    def uses_tokenizer(self) -> bool:
        return self.variant.startswith("tokenized") or self.head == "categorical"


# Presets by task family (the dataset name's first part). CORL's DT settings for MuJoCo.
PRESETS: dict[str, dict[str, Any]] = {
    "hopper": {"rtg_scale": 0.001, "targets": (3600.0, 1800.0)},
    "halfcheetah": {"rtg_scale": 0.001, "targets": (12000.0, 6000.0)},
    "walker2d": {"rtg_scale": 0.001, "targets": (5000.0, 2500.0)},
    "ant": {"rtg_scale": 0.001, "targets": (6000.0, 3000.0)},
    # LunarLander returns are a few hundred; 0.01 keeps returns-to-go near 1 like MuJoCo's 0.001.
    "lunarlander": {"rtg_scale": 0.01},
}


def task_preset(dataset: str, presets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The preset of the task a dataset name names, looked up in `presets` (keyed by task family).

    The task is the first part of the name's last path component (`hopper-medium`, a D4RL file
    `.../hopper-medium-v2.hdf5`), or of an earlier component for ids that put the task in the
    middle (Minari's `mujoco/hopper/medium-v0`).
    """
    from seqrl.data.scores import task_family

    parts = [p for p in dataset.replace("d4rl:", "").replace("\\", "/").split("/") if p]
    for part in reversed(parts):
        family = task_family(part)
        for key, preset in presets.items():
            if family.startswith(key):
                return preset
    return {}


def preset_for(dataset: str) -> dict[str, Any]:
    return task_preset(dataset, PRESETS)


def resolve_presets(cfg: TrainConfig) -> TrainConfig:
    """Fill fields left at None from the dataset's preset (rtg_scale falls back to 0.001)."""
    preset = preset_for(cfg.dataset)
    updates: dict[str, Any] = {}
    if cfg.rtg_scale is None:
        updates["rtg_scale"] = preset.get("rtg_scale", 0.001)
    if cfg.targets is None and "targets" in preset:
        updates["targets"] = preset["targets"]
    return dataclasses.replace(cfg, **updates) if updates else cfg
