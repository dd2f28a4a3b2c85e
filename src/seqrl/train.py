"""The one training loop, shared by every model variant and by fine-tuning.

Flat on purpose (nanoGPT's train.py, not a callback registry): sample a batch, compute
`model.loss(batch)` under autocast, backward, clip, step, log, evaluate, checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import tyro

from seqrl.checkpoint import (
    build_model,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    tokenizer_from_payload,
    tokenizer_to_payload,
)
from seqrl.config import TrainConfig, resolve_presets
from seqrl.data.sampler import ContextSampler
from seqrl.data.tokenizer import ActionTokenizer
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import CheckpointError, ConfigError
from seqrl.models.dt import DecisionTransformer
from seqrl.models.spec import DataSpec
from seqrl.runs import CONFIG_FILE, METADATA_FILE, METRICS_FILE, MetricsLog, environment_metadata, write_json_atomic

# Fields a resumed run may take from the new command line; everything else comes from the
# checkpoint, so a resumed run is the same experiment.
RESUMABLE_OVERRIDES = (
    "steps", "resume", "progress", "device", "log_every", "checkpoint_every",
    "eval_every", "eval_episodes", "tensorboard", "compile",
)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # native bf16 matmuls on CPU need AVX512-BF16 or AMX; elsewhere bf16 is emulated and slow
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def autocast_context(precision: str, device: torch.device):
    use_bf16 = precision == "bf16" or (precision == "auto" and bf16_supported(device))
    if not use_bf16:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def make_optimizer(model: DecisionTransformer, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the model's decay / no-decay groups.

    The fused implementation (one kernel over all parameters, on CPU and CUDA) computes the same
    update as torch's default (a per-parameter loop on CPU), to float rounding. For the
    CORL-sized DT the optimizer is ~1% of a CPU step, so this is within noise there
    (bench/train_step.py --ablations); it matters for small models and on CUDA. Other devices
    keep torch's default.
    """
    fused = device.type in ("cpu", "cuda") or None
    return torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.learning_rate, betas=cfg.betas, fused=fused)


def warmup_schedule(warmup_steps: int) -> Callable[[int], float]:
    return lambda step: min(1.0, (step + 1) / max(1, warmup_steps))


def default_run_dir(cfg: TrainConfig) -> Path:
    safe = cfg.dataset.replace("/", "_").replace(":", "_")
    return Path("runs") / f"{safe}-{cfg.model}-s{cfg.seed}"


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    state = {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _merge_resumed_config(saved: TrainConfig, given: TrainConfig) -> TrainConfig:
    changed = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in RESUMABLE_OVERRIDES
               and f.name != "run_dir" and getattr(given, f.name) != getattr(saved, f.name)
               and not (getattr(given, f.name) is None)]
    if changed:
        print(f"seqrl: resuming with the checkpoint's values for {', '.join(changed)}", file=sys.stderr)
    return dataclasses.replace(saved, **{k: getattr(given, k) for k in RESUMABLE_OVERRIDES})


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    model: DecisionTransformer
    spec: DataSpec
    config: TrainConfig  # resolved (presets filled in)
    step: int


def train(
    cfg: TrainConfig,
    *,
    dataset: TrajectoryDataset | None = None,
    prepare_model: Callable[[DecisionTransformer], None] | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> TrainResult:
    """Train (or resume) the run described by `cfg`.

    `prepare_model` runs on the freshly built model before the optimizer sees it; fine-tuning
    uses it to copy a pretrained trunk in and freeze layers. It runs again on resume (then the
    checkpoint's weights are loaded over it), so it must depend only on the config.
    """
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    ckpt_file = checkpoint_path(run_dir)
    payload = None
    if cfg.resume and ckpt_file.exists():
        payload = load_checkpoint(ckpt_file)
        cfg = _merge_resumed_config(TrainConfig.from_dict(payload["config"]), cfg)
    elif ckpt_file.exists():
        raise CheckpointError(
            f"{run_dir} already holds a run (checkpoint at step "
            f"{load_checkpoint(ckpt_file)['step']}); pass --resume to continue it or choose another --run-dir"
        )
    cfg = resolve_presets(dataclasses.replace(cfg, run_dir=str(run_dir)))
    device = resolve_device(cfg.device)

    if dataset is None:
        from seqrl.data.sources import load_dataset

        dataset = load_dataset(cfg.dataset)
    if payload is not None:
        spec = DataSpec.from_dict(payload["spec"])
        spec.check_compatible(dataset, what=f"the checkpoint in {run_dir}")
        tokenizer = tokenizer_from_payload(payload.get("tokenizer"))
    else:
        spec = DataSpec.from_dataset(dataset, rtg_scale=cfg.rtg_scale, targets=cfg.targets)
        tokenizer = None
        if cfg.uses_tokenizer:
            tokenizer = ActionTokenizer.fit(
                dataset.actions, cfg.num_bins, strategy=cfg.binning, shared_range=not cfg.token_offsets,
                low=np.asarray(spec.action_low), high=np.asarray(spec.action_high),
            )

    torch.manual_seed(cfg.seed)  # parameter initialisation
    rng = np.random.default_rng(cfg.seed)  # batch sampling
    model = build_model(cfg, spec, tokenizer)
    if prepare_model is not None:
        prepare_model(model)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_schedule(cfg.warmup_steps))
    step = 0
    if payload is not None:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        _restore_rng_state(rng, payload["rng"])
        step = int(payload["step"])
    else:
        torch.manual_seed(cfg.seed + 1)  # dropout stream, apart from the init stream

    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / CONFIG_FILE, cfg.to_dict())
    write_json_atomic(run_dir / METADATA_FILE, {
        **environment_metadata(str(device)),
        "spec": spec.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in params),
        **(extra_metadata or {}),
    })
    metrics = MetricsLog(run_dir / METRICS_FILE, resume_step=step if payload is not None else None)
    writer = None
    if cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "tensorboard"))

    sampler = ContextSampler(
        dataset, cfg.context_len, rtg_scale=spec.rtg_scale, discount=cfg.discount,
        state_mean=np.asarray(spec.state_mean, np.float32), state_std=np.asarray(spec.state_std, np.float32),
    )
    loss_fn = torch.compile(model.loss) if cfg.compile else model.loss
    autocast = autocast_context(cfg.precision, device)

    def save() -> None:
        save_checkpoint(ckpt_file, {
            "step": step,
            "config": cfg.to_dict(),
            "spec": spec.to_dict(),
            "tokenizer": tokenizer_to_payload(tokenizer),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(rng),
        })

    progress = None
    if cfg.progress and sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=cfg.steps, initial=step, desc=run_dir.name, unit="step", dynamic_ncols=True)
    model.train()
    loss_sum = torch.zeros((), device=device)  # summed on device: no sync per step
    loss_count, tick = 0, time.perf_counter()
    eval_envs = None
    try:
        while step < cfg.steps:
            batch = sampler.sample(cfg.batch_size, rng).to_torch(device)
            with autocast:
                loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # Clip after backward, on the gradients just computed (torchrl's DT clipped before
            # backward, which clips nothing).
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
            optimizer.step()
            lr = scheduler.get_last_lr()[0]  # the rate this step used
            scheduler.step()
            step += 1
            loss_sum += loss.detach()
            loss_count += 1
            if progress is not None:
                progress.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                record = {
                    "step": step,
                    "loss": float(loss_sum) / loss_count,
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "steps_per_sec": loss_count / max(now - tick, 1e-9),
                }
                if not math.isfinite(record["loss"]):
                    raise FloatingPointError(f"loss became {record['loss']} at step {step}; lower --learning-rate")
                metrics.write(record)
                if writer is not None:
                    for key, value in record.items():
                        if key != "step":
                            writer.add_scalar(f"train/{key}", value, step)
                if progress is not None:
                    progress.set_postfix(loss=f"{record['loss']:.4f}")
                loss_sum.zero_()
                loss_count, tick = 0, now
            if cfg.eval_every and step % cfg.eval_every == 0:
                if eval_envs is None:  # built at the first evaluation, reused by the later ones
                    from seqrl.evaluation.evaluate import make_eval_envs

                    eval_envs = make_eval_envs(spec, cfg.eval_episodes)
                record = evaluate_during_training(model, spec, cfg, device, step, envs=eval_envs)
                metrics.write(record)
                if writer is not None:
                    for key, value in record.items():
                        if key.startswith("eval/"):
                            writer.add_scalar(key, value, step)
                model.train()
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save()
    finally:
        if eval_envs is not None:
            eval_envs.close()
        metrics.close()
        if writer is not None:
            writer.close()
        if progress is not None:
            progress.close()
    model.eval()
    return TrainResult(run_dir, model, spec, cfg, step)


def evaluate_during_training(
    model: DecisionTransformer, spec: DataSpec, cfg: TrainConfig, device: torch.device, step: int, envs: Any = None
) -> dict[str, Any]:
    """Roll the current model out for each target; a metrics record with normalized scores.

    `envs`: evaluation envs to reuse (`make_eval_envs`); default: built and closed here.
    """
    from seqrl.evaluation.evaluate import evaluate

    model.eval()
    results = evaluate(
        model, spec, context_len=cfg.context_len, episodes=cfg.eval_episodes, seed=cfg.eval_seed, device=device,
        envs=envs,
    )
    record: dict[str, Any] = {"step": step, "kind": "eval"}
    for result in results:
        prefix = f"eval/target_{result['target']:g}"
        record[f"{prefix}/return_mean"] = result["return_mean"]
        if result.get("score_mean") is not None:
            record[f"{prefix}/score_mean"] = result["score_mean"]
    return record


def train_command(cfg: "tyro.conf.OmitArgPrefixes[TrainConfig]", threads: int | None = None) -> None:  # noqa: F821 (resolved by tyro)
    """Train a Decision Transformer variant on a dataset (`seqrl train --dataset NAME --model VARIANT`).

    Every config field is a flag; presets per dataset fill --rtg-scale and --targets.

    Args:
        cfg: The training configuration.
        threads: CPU threads for torch (default: torch's, one per core). 1 is often fastest for
            small models and on a busy machine (see seqrl.threads).
    """
    from seqrl.threads import torch_threads

    with torch_threads(threads):
        result = train(cfg)
    print(f"run directory: {result.run_dir} (step {result.step})")
