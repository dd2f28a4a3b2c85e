"""Downstream transfer: start a Decision Transformer on a new task from another task's trunk.

Which layers travel (Annett & Andersen's transfer setting):

- Transferred from the source run: the transformer trunk (`model.trunk`: every causal block and
  the final LayerNorm) and `model.embed_ln`, the LayerNorm every token passes through on its
  way into the trunk. `embed_ln` counts as trunk: it has no task-shaped weights, and its gain
  and bias are part of the input distribution the trunk was trained on.
- Built fresh for the new task: the state embedding (its input size is the new obs_dim), the
  whole action codec (action embedding, tokenizer and action head; always rebuilt and refitted
  on the new dataset, even when the action sizes happen to match, since bins and bounds are
  the data's), the return-to-go embedding (returns mean different things across tasks, and the
  new task has its own rtg_scale) and the timestep embedding (its size follows the new task's
  episode length).

`train="embeddings"` freezes the transferred layers (requires_grad=False: not in the
optimizer, so they stay bit-identical) and trains only the fresh task layers; `train="all"`
trains everything, starting from the transferred weights.

Fine-tuning runs through the one training loop (`seqrl.train.train`) with a `prepare_model`
hook, so it checkpoints and resumes like any run. The architecture (width, depth, heads,
context, action representation settings) comes from the source run's config; the source run
is recorded in the new run's metadata.json under "finetune".
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import tyro

from seqrl.checkpoint import checkpoint_path, load_checkpoint
from seqrl.config import ActionVariant, TrainConfig
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import CheckpointError, ConfigError
from seqrl.models.dt import DecisionTransformer
from seqrl.runs import METADATA_FILE
from seqrl.train import TrainResult, train

TrainMode = Literal["embeddings", "all"]
TRANSFERRED = ("embed_ln", "trunk")  # module names copied from the source model


def transferred_modules(model: DecisionTransformer) -> list[torch.nn.Module]:
    return [getattr(model, name) for name in TRANSFERRED]


def _source_state(payload: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """The source checkpoint's weights of each transferred module."""
    states: dict[str, dict[str, torch.Tensor]] = {}
    for name in TRANSFERRED:
        prefix = name + "."
        states[name] = {k[len(prefix):]: v for k, v in payload["model"].items() if k.startswith(prefix)}
        if not states[name]:
            raise CheckpointError(f"the source checkpoint has no '{name}' weights; is it a Decision Transformer run?")
    return states


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
    **overrides: Any,
) -> TrainResult:
    """Fine-tune the trunk of the run at `source` on `dataset`; the new run's TrainResult.

    `overrides` replace fields of the new run's TrainConfig (learning_rate, warmup_steps,
    batch_size, seed, model, eval settings, ...); everything else is the source run's config,
    except rtg_scale and targets, which default to the new dataset's presets.
    `data` passes the dataset in memory instead of loading `dataset` by name. The warm-up
    defaults to the source's, capped at a tenth of `steps`.
    """
    if train_mode not in ("embeddings", "all"):
        raise ConfigError(f"--train must be 'embeddings' or 'all', got {train_mode!r}")
    source = Path(source)
    if not checkpoint_path(source).exists() and not source.is_file():
        raise CheckpointError(f"source run {source} has no checkpoint ({checkpoint_path(source)}); train it first")
    payload = load_checkpoint(source)
    family = payload.get("family", "dt")  # runs from before families carry no tag: DT runs
    if family != "dt":
        raise ConfigError(f"seqrl finetune transfers Decision Transformer runs; {source} is a {family} run")
    source_cfg = TrainConfig.from_dict(payload["config"])
    states = _source_state(payload)
    seed = overrides.get("seed", source_cfg.seed)
    run_dir = Path(run_dir) if run_dir is not None else default_finetune_dir(source, dataset, train_mode, seed)
    source_dir = source.parent.parent if source.is_file() else source
    if run_dir.resolve() == source_dir.resolve():
        raise ConfigError(f"--run-dir {run_dir} is the source run itself; choose another directory")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown config fields: {', '.join(sorted(unknown))}")
    named = set(overrides) & {"dataset", "steps", "run_dir", "resume"}
    if named:
        raise ConfigError(f"pass {', '.join(sorted(named))} as finetune's own arguments, not as overrides")
    # The source's warm-up (CORL: 10k steps) can be as long as a whole fine-tune; cap it at a
    # tenth of the fine-tuning steps unless asked for.
    overrides.setdefault("warmup_steps", min(source_cfg.warmup_steps, max(1, steps // 10)))
    # rtg_scale and targets belong to the source's data: None takes the new dataset's presets.
    cfg = dataclasses.replace(
        source_cfg,
        **{"rtg_scale": None, "targets": None, **overrides},
        dataset=dataset,
        steps=steps,
        run_dir=str(run_dir),
        resume=resume,
    )
    record = {
        "source_run": str(source_dir.resolve()),
        "source_step": int(payload["step"]),
        "source_dataset": payload["spec"]["dataset"],
        "source_env_id": payload["spec"]["env_id"],
        "source_model": source_cfg.model,
        "train": train_mode,
        "transferred": list(TRANSFERRED),
    }
    if resume:
        _check_same_finetune(run_dir, record)

    def prepare_model(model: DecisionTransformer) -> None:
        for name, module in zip(TRANSFERRED, transferred_modules(model)):
            try:
                module.load_state_dict(states[name])
            except RuntimeError as exc:
                raise CheckpointError(f"the source run's '{name}' weights do not fit the new model: {exc}") from None
            if train_mode == "embeddings":
                module.requires_grad_(False)

    return train(cfg, dataset=data, prepare_model=prepare_model, extra_metadata={"finetune": record})


def _check_same_finetune(run_dir: Path, record: dict[str, Any]) -> None:
    """A resumed fine-tune must continue from the same source run with the same --train."""
    path = run_dir / METADATA_FILE
    if not path.exists():
        return  # nothing to resume yet: train() starts afresh
    saved = json.loads(path.read_text()).get("finetune")
    if saved is None:
        raise ConfigError(f"{run_dir} is not a fine-tuning run; resume it with `seqrl train --resume`")
    for key in ("source_run", "train"):
        if saved[key] != record[key]:
            raise ConfigError(
                f"{run_dir} fine-tunes {saved['source_run']} with --train {saved['train']}; "
                f"cannot resume it with {record['source_run']} and --train {record['train']}"
            )


def finetune_command(
    source: Annotated[str, tyro.conf.arg(name="from", metavar="RUN_DIR")],
    dataset: str,
    train: TrainMode = "embeddings",
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

    Fresh state/return/timestep embeddings and a fresh action codec are built for the new task;
    the trunk (and the embedding LayerNorm) is copied from the source run. Options left unset
    take the source run's values.

    Args:
        source: The pretrained run directory (or checkpoint file).
        dataset: Dataset to fine-tune on (any name `seqrl train --dataset` accepts).
        train: embeddings: train only the new task layers, trunk frozen; all: train every layer.
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
            source, dataset, train_mode=train, steps=steps, run_dir=run_dir, resume=resume, progress=progress, **overrides
        )
    print(f"run directory: {result.run_dir} (step {result.step}; fine-tuned from {source}, --train {train})")
