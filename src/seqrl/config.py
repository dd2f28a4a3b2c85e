"""The configuration every family shares: a frozen dataclass whose field docstrings become `--help`.

Each family's config derives from `RunConfig` in its own package (the DT's
`seqrl.families.dt.config.TrainConfig`, the TT's `seqrl.families.tt.config.TTConfig`); a family
with a transformer trunk derives from `seqrl.lm_init.config.LMInitConfig`. Values that depend on
the dataset's *name* (return scale, target returns) are per-task presets (`task_preset`), filled
in by each family's `resolve` and written to the run directory. Values derived from the data
itself (dimensions, normalisation statistics, vocabulary size) live in
`seqrl.models.spec.DataSpec`, never on the config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from seqrl.data.scores import task_family
from seqrl.errors import ConfigError

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
    holdout_fraction: float = 0.0
    """Hold out this fraction of the dataset's episodes (chosen with --seed) and log the loss on
    them as `val_loss` at every logged step: fixed windows, the model in eval mode. 0: train on
    every episode (no held-out loss)."""
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
        """The config a config.json or checkpoint holds (written by any seqrl version of this family).
        config.json's "acting" record (seqrl.model_files.acting_record) is not a config field.

        A family may override this to give a field missing from a stored config the value runs
        were trained with before the field existed (TTConfig: value tokens visible). A NEW run's
        config built from option values (a sweep spec's) must not get those: use from_options."""
        return cls.from_options(values)

    @classmethod
    def from_options(cls, values: dict[str, Any]):
        """A new run's config from option values (a sweep spec's run, a dict of flags): every field
        not given takes today's default. Lists become tuples, as JSON stores them."""
        values = {k: v for k, v in values.items() if k != "acting"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(sorted(unknown))}")
        # JSON and checkpoints store tuples as lists.
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)


def task_preset(dataset: str, presets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The preset of the task a dataset name names, looked up in `presets` (keyed by task family).

    The task is the first part of the name's last path component (`hopper-medium`, a D4RL file
    `.../hopper-medium-v2.hdf5`), or of an earlier component for ids that put the task in the
    middle (Minari's `mujoco/hopper/medium-v0`).
    """
    parts = [p for p in dataset.replace("d4rl:", "").replace("\\", "/").split("/") if p]
    for part in reversed(parts):
        family = task_family(part)
        for key, preset in presets.items():
            if family.startswith(key):
                return preset
    return {}
