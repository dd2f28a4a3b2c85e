"""The Trajectory Transformer's config: the authors' data, model and optimiser settings as defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from seqrl.lm_init.config import LMInitConfig
from seqrl.errors import ConfigError
from seqrl.validation import check_run_numbers


# Per-task defaults of fields left at "task" (keyed by task family, as seqrl.config.task_preset reads them).
TT_TASK_PRESETS: dict[str, dict[str, Any]] = {
    "lunarlander": {"termination_penalty": "none"},
}
DEFAULT_TERMINATION_PENALTY = -100.0  # trajectory-transformer's config/offline.py

# Named sizes: `seqrl train --family tt --preset NAME ...` (flags after it still win) or
# `TTConfig.from_preset(NAME, dataset=...)`. The run directory records the values, not the name.
SIZE_PRESETS: dict[str, dict[str, Any]] = {
    # trajectory-transformer's config/offline.py: the fidelity setting (about 8 s a step on a 2-core CPU).
    "authors": {},
    # Learns LunarLander medium-expert in minutes on a 2-core CPU (docs/RESULTS.md, the TT on
    # LunarLander): the authors' model at a quarter of the width and half the depth, windows of 5,
    # and no dropout: the authors' 0.1 (for 200,000 updates of a larger model) slowed learning at
    # this budget (41-62 normalized at 10,000-15,000 updates with it, 70-85 without, one run each).
    # 15,000 steps: about 13 minutes at 2 threads; 69.7, 82.2, 79.5 (30 episodes, 3 seeds).
    "cpu": dict(embed_dim=64, n_layers=2, n_heads=2, sequence_length=5, batch_size=64, learning_rate=1e-3,
                warmup_steps=200, steps=15_000, dropout=0.0, eval_horizon=5, eval_beam_width=16),
}


@dataclass(frozen=True)
class TTConfig(LMInitConfig):
    """Train a Trajectory Transformer: every dimension of (state, action, reward, value) a token.

    Its trunk can start from a language model or another run (--init, --freeze-trunk, --lora-rank,
    --trunk-learning-rate; seqrl.lm_init.sources); the alignment and co-training objectives are DT-only so far."""

    family: Literal["tt"] = "tt"
    """Model family: tt, the Trajectory Transformer (these flags; `seqrl train --help` lists the DT's)."""
    model: Literal["tt"] = "tt"
    """The TT has one model (the name sweeps and reports use)."""
    num_bins: int = 100
    """Bins per dimension of state, action, reward and value (the authors' N). A Discrete(n) action
    is not binned: its dimension has exactly n tokens, one per action."""
    binning: Literal["quantile", "uniform"] = "quantile"
    """Bin edges at data quantiles (the authors' code) or on a uniform grid (the paper)."""
    discount: float = 0.99
    """Discount of the value token V_t (the reward-to-go from t+1 on)."""
    termination_penalty: float | Literal["none", "task"] = "task"
    """Reward that replaces the last reward of an episode that ended in a terminal state, so the
    model learns what falling over costs (none: keep it). task: the task's preset (TT_TASK_PRESETS):
    the authors' -100 for locomotion, where an episode terminates only when the agent falls, and
    none for LunarLander, whose episodes also terminate when the lander comes to rest after a
    landing (+100), which a penalty would turn into a crash. The run directory records the value used."""
    sequence_length: int = 10
    """Transitions per training window (the model's context is this many transitions, minus one token)."""
    step: int = 1
    """Take every `step`-th transition inside a window (the authors' subsampling; 1 uses them all)."""
    embed_dim: int = 128
    """Transformer width."""
    n_layers: int = 4
    """Transformer blocks."""
    n_heads: int = 4
    """Attention heads."""
    dropout: float = 0.1
    """Dropout on embeddings, attention and residual branches."""
    action_weight: float = 5.0
    """Loss weight of action tokens."""
    reward_weight: float = 1.0
    """Loss weight of reward tokens."""
    value_weight: float = 1.0
    """Loss weight of value tokens."""
    mask_values: bool = True
    """Hide value tokens from attention, as the authors' model always does: no position attends to
    a value token, so a predicted value cannot copy the values in its context (which, when
    planning, are the plan's own earlier predictions). --no-mask-values lets them be seen; runs
    trained before this became the default (seqrl < 2026-12) stored False and load as trained."""
    goal: Literal["none", "episode-end", "window-end", "future"] = "none"
    """Goal-conditioned training (the paper's goal reaching): prepend a goal state to every window,
    relabelled from the same episode: its last state, the window's last state, or a state drawn
    uniformly from the window's end to the episode's end. Rewards are then never used (their
    tokens are zeros), and planning is likelihood beam search towards the environment's goal."""
    goal_dims: tuple[int, ...] | None = None
    """Observation dimensions the goal is made of (default: the task's, e.g. the maze's x, y; else all)."""
    observation_goal_dims: tuple[int, ...] | None = None
    """Observation dimensions that hold the environment's own goal (the maze's goal_x, goal_y):
    left out of the modelled state, read as the goal when planning (default: the task's)."""

    # The authors' optimiser (trajectory-transformer's config/offline.py), not the DT's.
    steps: int = 50_000
    """Gradient steps."""
    batch_size: int = 256
    """Windows per step."""
    learning_rate: float = 6e-4
    """AdamW peak learning rate."""
    weight_decay: float = 0.1
    """AdamW weight decay on weight matrices (not on norms, biases or embeddings)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    warmup_steps: int = 1000
    """Linear learning-rate warm-up steps."""
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    """After warm-up: cosine decay to --min-lr-ratio of the peak at the last step, clamped there
    (the authors' schedule is not clamped and climbs back up past its end)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables)."""
    eval_episodes: int = 5
    """Episodes for evaluation during training (planning is slow)."""
    eval_horizon: int | None = None
    """Planning horizon of this run's own evaluations (during training, after a sweep's training,
    and `seqrl eval` without --horizon); default: the authors' (15; 5 on halfcheetah). Planning
    at that size takes minutes a step on a CPU: 5 is the CPU scale of bench/plan.py."""
    eval_beam_width: int | None = None
    """Beam width of this run's own evaluations (default: the authors' 128; 32 on halfcheetah;
    16 is the CPU scale)."""
    eval_plan_mode: Literal["reward", "likelihood"] | None = None
    """Planning mode of this run's own evaluations: reward (the default) or likelihood (imitation:
    the most probable trajectory), so the curves logged during training measure the planner the
    run is meant for. A goal-conditioned run always plans by likelihood."""

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "TTConfig":
        """A config of the named size (SIZE_PRESETS), with `overrides` on top."""
        return cls(**{**size_preset(name), **overrides})

    @classmethod
    def from_dict(cls, values: dict):
        # A run whose config predates the field was trained with value tokens visible.
        values = {"mask_values": False, **values}
        if values.get("termination_penalty", 0.0) is None:  # written before "none" replaced None
            values["termination_penalty"] = "none"
        return super().from_dict(values)

    def resolved(self) -> "TTConfig":
        """This config with fields left at "task" set from the dataset's task preset."""
        import dataclasses

        from seqrl.config import task_preset

        if self.termination_penalty != "task":
            return self.with_anneal_resolved()
        preset = task_preset(self.dataset, TT_TASK_PRESETS)
        return dataclasses.replace(self, termination_penalty=preset.get("termination_penalty",
                                                                        DEFAULT_TERMINATION_PENALTY)).with_anneal_resolved()

    @property
    def terminal_reward(self) -> float | None:
        """The reward a terminal transition gets (None: its own), the task preset applied."""
        value = self.resolved().termination_penalty
        return None if value == "none" else float(value)

    def __post_init__(self) -> None:
        if self.family != "tt":
            raise ConfigError(f"TTConfig is the Trajectory Transformer's config (family tt), got family {self.family!r}")
        self._check_run_fields()
        check_run_numbers(self)
        if self.align_weight or self.cotrain_weight:
            raise ConfigError("--align-weight and --cotrain-weight are implemented for the Decision Transformer "
                              "only; a TT run takes --init, --freeze-trunk, --lora-rank and --trunk-learning-rate")
        self._check_lm_init_fields()  # --init, --lora-rank/alpha, --trunk-learning-rate, --freeze-trunk
        for name in ("num_bins", "sequence_length", "step", "embed_dim", "n_layers", "n_heads", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.num_bins < 2:
            raise ConfigError(f"--num-bins must be >= 2, got {self.num_bins}")
        if self.sequence_length < 2:
            raise ConfigError(f"--sequence-length must be >= 2 transitions, got {self.sequence_length}")
        # A pretrained trunk (--init) replaces the width and heads with its own (seqrl.lm_init.sources.resolve_init).
        if self.init == "scratch" and self.embed_dim % self.n_heads:
            raise ConfigError(f"--embed-dim ({self.embed_dim}) must be divisible by --n-heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError(f"--discount must be in (0, 1], got {self.discount}")
        for name in ("eval_horizon", "eval_beam_width"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.eval_plan_mode not in (None, "reward", "likelihood"):
            raise ConfigError(f"unknown --eval-plan-mode {self.eval_plan_mode!r}; choose reward or likelihood")
        if self.goal != "none" and self.eval_plan_mode == "reward":
            raise ConfigError("--eval-plan-mode reward: a goal-conditioned run is trained without rewards and plans "
                              "by likelihood")
        if self.goal == "none" and (self.goal_dims is not None or self.observation_goal_dims is not None):
            raise ConfigError("--goal-dims and --observation-goal-dims apply to goal-conditioned runs: add --goal episode-end "
                              "(or window-end, future)")
        for name in ("goal_dims", "observation_goal_dims"):
            dims = getattr(self, name)
            if dims is not None and (len(set(dims)) != len(dims) or any(d < 0 for d in dims)):
                raise ConfigError(f"--{name.replace('_', '-')} must be distinct dimensions >= 0, got {list(dims)}")
        if self.goal_dims is not None and not self.goal_dims:
            raise ConfigError("--goal-dims needs at least one dimension")
        if isinstance(self.termination_penalty, str):
            if self.termination_penalty not in ("none", "task"):
                raise ConfigError(f"--termination-penalty must be a number, none or task, got {self.termination_penalty!r}")
        elif not math.isfinite(self.termination_penalty):
            raise ConfigError(f"--termination-penalty must be a finite reward (or none, task), got {self.termination_penalty}")
        for name in ("action_weight", "reward_weight", "value_weight"):
            value = getattr(self, name)
            if not value >= 0 or value == float("inf"):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")


def size_preset(name: str) -> dict[str, Any]:
    """The fields of a named size preset; an unknown name is refused with the known ones."""
    if name not in SIZE_PRESETS:
        raise ConfigError(f"unknown --preset {name!r}; choose one of {', '.join(SIZE_PRESETS)}")
    return dict(SIZE_PRESETS[name])


def preset_flags(name: str) -> list[str]:
    """A size preset as `seqrl train` flags (placed before the user's, which then win)."""
    flags = []
    for key, value in size_preset(name).items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags
