"""`seqrl finetune`: start a run on a new task from another run's trained layers.

The source run's family says what transfers (`Family.finetune_plan`; the Decision Transformer's
choices of kept, rebuilt and frozen layers are in seqrl.families.dt.transfer). Fine-tuning runs
through the one training loop (`seqrl.train.train`) with the plan's `prepare_model` hook, so it
checkpoints and resumes like any run. The architecture comes from the source run's config; the
source run is recorded in the new run's metadata.json under "finetune".
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import tyro

from seqrl.checkpoint import checkpoint_path, load_checkpoint
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import CheckpointError, ConfigError
from seqrl.families.dt.config import ActionVariant
from seqrl.families.dt.transfer import ALL_BRANCHES, Branch, TrainMode
from seqrl.loading import checkpoint_family
from seqrl.train import TrainResult, train


def default_finetune_dir(source: Path, dataset: str, mode: str, seed: int) -> Path:
    safe = dataset.replace("/", "_").replace(":", "_")
    return Path("runs") / f"{safe}-from-{source.resolve().name}-{mode}-s{seed}"


def finetune(
    source: str | Path,
    dataset: str,
    *,
    train_mode: TrainMode = "embeddings",
    steps: int = 10_000,
    run_dir: str | Path | None = None,
    data: TrajectoryDataset | None = None,
    resume: bool = False,
    rebuild: Any = ALL_BRANCHES,
    **overrides: Any,
) -> TrainResult:
    """Fine-tune the trunk of the run at `source` on `dataset`; the new run's TrainResult.

    `overrides` replace fields of the new run's config (learning_rate, warmup_steps,
    batch_size, seed, model, eval settings, ...); everything else is the source run's config,
    except rtg_scale and targets, which default to the new dataset's presets.
    `data` passes the dataset in memory instead of loading `dataset` by name. The warm-up
    defaults to the source's, capped at a tenth of `steps`. `rebuild` names the branches built
    fresh (seqrl.families.dt.transfer); the rest are kept from the source.
    """
    if train_mode not in ("embeddings", "all"):
        raise ConfigError(f"--train must be 'embeddings' or 'all', got {train_mode!r}")
    source = Path(source)
    if not checkpoint_path(source).exists() and not source.is_file():
        raise CheckpointError(f"source run {source} has no checkpoint ({checkpoint_path(source)}); train it first")
    payload = load_checkpoint(source)
    plan = checkpoint_family(payload).finetune_plan(
        payload, source=source, dataset=dataset, train_mode=train_mode, steps=steps,
        run_dir=Path(run_dir) if run_dir is not None else None, resume=resume, rebuild=rebuild, overrides=dict(overrides),
        default_run_dir=lambda seed: default_finetune_dir(source, dataset, train_mode, seed),
    )
    return train(plan.config, dataset=data, prepare_model=plan.prepare_model, extra_metadata={"finetune": plan.record},
                 make_artefacts=plan.make_artefacts)


def finetune_command(
    source: Annotated[str, tyro.conf.arg(name="from", metavar="RUN_DIR")],
    dataset: str,
    train: TrainMode = "embeddings",
    rebuild: tuple[Branch, ...] = ALL_BRANCHES,
    steps: int = 10_000,
    run_dir: str | None = None,
    model: ActionVariant | None = None,
    learning_rate: float | None = None,
    warmup_steps: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    device: str | None = None,
    checkpoint_every: int | None = None,
    log_every: int | None = None,
    progress: bool = True,
    resume: bool = False,
    threads: int | None = None,
) -> None:
    """Transfer a trained run's transformer trunk to another dataset (other observation and action sizes allowed).

    The trunk (and the embedding LayerNorm) is copied from the source run; the branches named by
    --rebuild (default: state, return and timestep embeddings and the action codec) are built
    fresh for the new task, the others kept. Options left unset take the source run's values.

    Args:
        source: The pretrained run directory (or checkpoint file).
        dataset: Dataset to fine-tune on (any name `seqrl train --dataset` accepts).
        train: embeddings: train only the rebuilt branches, everything kept frozen; all: train every layer.
        rebuild: Modality branches built fresh for the new task (state, return, timestep, action);
            the others are kept from the source. `--rebuild state` keeps the action embedding,
            head and tokenizer (an environment-agnostic spread source fits any task).
        steps: Gradient steps of fine-tuning.
        run_dir: Run directory (default: runs/<dataset>-from-<source>-<train>-s<seed>).
        model: Action representation for the new task (default: the source run's).
        learning_rate: AdamW peak learning rate.
        warmup_steps: Linear warm-up steps (default: the source's, capped at steps / 10).
        batch_size: Context windows per step.
        seed: Training seed.
        eval_every: Evaluate every this many steps (0: never during training).
        eval_episodes: Episodes per target for evaluation during training.
        device: cpu, cuda, cuda:N, or auto.
        checkpoint_every: Write a checkpoint every this many steps.
        log_every: Write a metrics line every this many steps.
        progress: Show a progress bar.
        resume: Continue an interrupted fine-tuning run.
        threads: CPU threads for torch (default: torch's, one per core; see seqrl.threads).
    """
    from seqrl.threads import torch_threads

    given = dict(
        model=model, learning_rate=learning_rate, warmup_steps=warmup_steps, batch_size=batch_size, seed=seed,
        eval_every=eval_every, eval_episodes=eval_episodes, device=device, checkpoint_every=checkpoint_every,
        log_every=log_every,
    )
    overrides = {k: v for k, v in given.items() if v is not None}
    with torch_threads(threads):
        result = finetune(
            source, dataset, train_mode=train, steps=steps, run_dir=run_dir, resume=resume, progress=progress,
            rebuild=rebuild, **overrides
        )
    print(f"run directory: {result.run_dir} (step {result.step}; fine-tuned from {source}, --train {train})")
