"""The one training loop, shared by every model family, every variant and fine-tuning.

Flat on purpose (nanoGPT's train.py, not a callback registry): sample a batch, compute
`model.loss_terms(batch)` under autocast, backward, clip, step, log, evaluate, checkpoint. What
differs between families (artefacts, model, sampler) comes from the family the config names
(seqrl.families); this file never asks which family it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from seqrl.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from seqrl.config import RunConfig
from seqrl.data.trajectories import TrajectoryDataset
from seqrl import distributed
from seqrl.distributed import Processes, check_batch, device_for, rank_seed
from seqrl.errors import CheckpointError, ConfigError
from seqrl.families import config_from_dict, family_of
from seqrl.loading import build_model
from seqrl.model_files import ACTING_KEY, acting_record, write_model_card, write_model_file
from seqrl.models.spec import DataSpec
from seqrl.progress import Progress, StepTimeEstimate
from seqrl.validation import warmup_warning
from seqrl.runs import (CONFIG_FILE, METADATA_FILE, METRICS_FILE, MetricsLog, RunLock, environment_metadata,
                        write_json_atomic)
from seqrl.runtime import autocast_context, bf16_supported, resolve_device  # noqa: F401 (re-exported)

# Fields a resumed run may take from the new command line; everything else comes from the
# checkpoint, so a resumed run is the same experiment.
RESUMABLE_OVERRIDES = (
    "steps", "resume", "progress", "device", "log_every", "checkpoint_every", "checkpoint_minutes",
    "eval_every", "eval_episodes", "eval_targets", "tensorboard", "compile",
)


def make_optimizer(model: torch.nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the model's decay / no-decay groups.

    The fused implementation (one kernel over all parameters, on CPU and CUDA) computes the same
    update as torch's default (a per-parameter loop on CPU), to float rounding. For the
    CORL-sized DT the optimizer is ~1% of a CPU step, so this is within noise there
    (bench/train_step.py --ablations); it matters for small models and on CUDA. Other devices
    keep torch's default.
    """
    fused = device.type in ("cpu", "cuda") or None
    return torch.optim.AdamW(trunk_lr_groups(model, model.param_groups(cfg.weight_decay), cfg), lr=cfg.learning_rate,
                             betas=cfg.betas, fused=fused)


def trunk_lr_groups(model: torch.nn.Module, groups: list[dict], cfg: RunConfig) -> list[dict]:
    """`groups` with the trunk's parameters split off at `cfg.trunk_learning_rate` (if set).

    The trunk is found by parameter identity (`model.trunk.parameters()`), not by a type-name
    test (the LM-init authors' separate LM learning rate matched no module and never applied).
    The schedule (LambdaLR) scales every group's own peak rate.
    """
    lr = getattr(cfg, "trunk_learning_rate", None)
    trunk = getattr(model, "trunk", None)
    if lr is None or trunk is None:
        return groups
    in_trunk = {id(p) for p in trunk.parameters()}
    split = []
    for group in groups:
        rest = {k: v for k, v in group.items() if k != "params"}
        others = [p for p in group["params"] if id(p) not in in_trunk]
        mine = [p for p in group["params"] if id(p) in in_trunk]
        split += [{**rest, "params": others}, {**rest, "params": mine, "lr": lr}]
    return [g for g in split if g["params"]]


def warmup_schedule(warmup_steps: int) -> Callable[[int], float]:
    return lambda step: min(1.0, (step + 1) / max(1, warmup_steps))


def lr_multiplier(cfg: RunConfig) -> Callable[[int], float]:
    """The learning rate of step `step` (0-based) as a fraction of the peak.

    Linear warm-up over `warmup_steps`, then constant, or a cosine from 1 at the end of warm-up
    to `min_lr_ratio` at the last step, clamped there for any later step (the TT authors'
    schedule is not clamped: past its end the cosine climbs back up).
    """
    warmup = warmup_schedule(cfg.warmup_steps)
    if cfg.lr_schedule == "constant":
        return warmup
    floor, decay_steps = cfg.min_lr_ratio, max(1, cfg.steps - cfg.warmup_steps)

    def cosine(step: int) -> float:
        if step < cfg.warmup_steps:
            return warmup(step)
        progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return cosine


def default_run_dir(cfg: RunConfig) -> Path:
    safe = cfg.dataset.replace("/", "_").replace(":", "_")
    return Path("runs") / f"{safe}-{family_of(cfg).describe(cfg)}-s{cfg.seed}"


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


# Under torchrun every process draws the same batches (one numpy generator, the same state on all)
# but its own dropout masks (a torch stream per process): a checkpoint keeps each process's.
def _process_rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_process_rng_state(state: dict[str, Any], processes: Processes, device: torch.device,
                               seed: int, step: int) -> None:
    """This process's torch streams from a checkpoint's `rng` (written by `_train`)."""
    saved = state.get("processes") or [{"torch": state["torch"]}]  # a one-process run's: rank 0's
    if processes.rank < len(saved):
        torch.set_rng_state(saved[processes.rank]["torch"])
        if "cuda" in saved[processes.rank] and device.type == "cuda":
            torch.cuda.set_rng_state(saved[processes.rank]["cuda"], device)
    else:  # more processes than the checkpoint knows: a fresh stream (the batches continue unchanged)
        torch.manual_seed(rank_seed(seed, processes.rank) + step)
    if processes.main and len(saved) != processes.world:
        print(f"seqrl: resuming {len(saved)} process(es)' run on {processes.world}: the batches continue as "
              "before, the dropout masks of the processes beyond the checkpoint's start afresh", file=sys.stderr)


def _merge_resumed_config(saved: RunConfig, given: RunConfig) -> RunConfig:
    if type(saved) is not type(given):
        raise CheckpointError(
            f"the run directory holds a {saved.family} run, but a {given.family} config was given; "
            f"resume it with --family {saved.family}"
        )
    # A pretrained trunk set these from the source (seqrl.lm_init.sources.resolve_init): the command that
    # started the run did not give them, so their difference from it is no news.
    from_trunk = ("embed_dim", "n_layers", "n_heads", "activation") if getattr(saved, "init", "scratch") != "scratch" else ()
    # Compared as the run recorded them: with the dataset's presets filled in (a TT's
    # --termination-penalty task, a DT's --rtg-scale), as train does before writing config.json.
    compared = family_of(given).resolve(given)
    changed = [f.name for f in dataclasses.fields(saved) if f.name not in RESUMABLE_OVERRIDES
               and f.name != "run_dir" and f.name not in from_trunk
               and getattr(compared, f.name) != getattr(saved, f.name) and not (getattr(given, f.name) is None)]
    if changed:
        print(f"seqrl: resuming with the checkpoint's values for {', '.join(changed)}", file=sys.stderr)
    return dataclasses.replace(saved, **{k: getattr(given, k) for k in RESUMABLE_OVERRIDES})


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    model: torch.nn.Module
    spec: DataSpec
    config: RunConfig  # resolved (presets filled in)
    step: int


def train(
    cfg: RunConfig,
    *,
    dataset: TrajectoryDataset | None = None,
    prepare_model: Callable[[torch.nn.Module], None] | None = None,
    extra_metadata: dict[str, Any] | None = None,
    make_artefacts: Callable[[RunConfig, TrajectoryDataset, DataSpec], Any] | None = None,
) -> TrainResult:
    """Train (or resume) the run described by `cfg`, of whichever family it names.

    `prepare_model` runs on the freshly built model before the optimizer sees it; fine-tuning
    uses it to copy a pretrained trunk in and freeze layers. It runs again on resume (then the
    checkpoint's weights are loaded over it), so it must depend only on the config.
    `make_artefacts(cfg, dataset, spec)` replaces the family's fitting of a new run's artefacts
    (fine-tuning that keeps the source's action tokenizer); a resumed run reads its checkpoint's.
    Torch runs on seqrl's threads meanwhile (one, unless told otherwise: seqrl.threads).
    """
    from seqrl.threads import model_threads

    with model_threads():
        return _train(cfg, dataset=dataset, prepare_model=prepare_model, extra_metadata=extra_metadata,
                      make_artefacts=make_artefacts)


def _train(cfg: RunConfig, *, dataset: TrajectoryDataset | None, prepare_model: Callable[[torch.nn.Module], None] | None,
           extra_metadata: dict[str, Any] | None, make_artefacts: Callable[..., Any] | None) -> TrainResult:
    processes = Processes.from_environment()  # torchrun's RANK, WORLD_SIZE, LOCAL_RANK (seqrl.distributed)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    ckpt_file = checkpoint_path(run_dir)
    payload = None
    if cfg.resume and ckpt_file.exists():
        payload = load_checkpoint(ckpt_file)
        cfg = _merge_resumed_config(config_from_dict(payload["config"]), cfg)
        if int(payload["step"]) > cfg.steps:
            # Resuming would write a config.json of fewer steps than its checkpoint has taken.
            raise ConfigError(f"{run_dir} is at step {payload['step']}, past --steps {cfg.steps}: a resumed run "
                              f"can only go on; give --steps {payload['step']} or more")
    elif ckpt_file.exists():
        raise CheckpointError(
            f"{run_dir} already holds a run (checkpoint at step "
            f"{load_checkpoint(ckpt_file)['step']}); pass --resume to continue it or choose another --run-dir"
        )
    check_batch(cfg.batch_size, processes)  # before anything is written
    family = family_of(cfg)
    cfg = family.resolve(dataclasses.replace(cfg, run_dir=str(run_dir)))
    device = resolve_device(device_for(cfg.device, processes))
    warning = warmup_warning(cfg.steps, cfg.warmup_steps)
    if warning is not None and processes.main:
        print(f"seqrl: warning: {warning}", file=sys.stderr)

    if payload is None:  # a pretrained trunk fixes width, depth, heads and GELU (recorded in config.json)
        from seqrl.lm_init.sources import resolve_init

        cfg = resolve_init(cfg)
    if dataset is None:
        dataset = family.load_data(cfg)
    if payload is None:  # what the data decides (the DT's head on Discrete actions), recorded in config.json
        cfg = family.settle(cfg, dataset)
    held_out = None
    if cfg.holdout_fraction:  # the same episodes on every resume: chosen with the run's seed
        dataset, held_out = family.holdout_split(cfg, dataset)
    if payload is not None:
        spec = family.spec_from_dict(payload["spec"])
        spec.check_compatible(dataset, what=f"the checkpoint in {run_dir}")
        artefacts = family.artefacts_from_payload(payload.get(family.artefacts_key))
    else:
        spec = family.make_spec(cfg, dataset)
        artefacts = (make_artefacts or family.fit_artefacts)(cfg, dataset, spec)

    torch.manual_seed(cfg.seed)  # parameter initialisation
    rng = np.random.default_rng(cfg.seed)  # batch sampling
    model = build_model(cfg, spec, artefacts)
    # Before the run directory is written; each process holds its share of the batch.
    check_window_fits(family, cfg if not processes.enabled else
                      dataclasses.replace(cfg, batch_size=cfg.batch_size // processes.world), model, dataset, device)
    # Built before the run directory too, so that what only the sampler checks (a co-training
    # corpus and its tokenizer, --cotrain-context) is refused with nothing written.
    sampler = family.build_sampler(cfg, dataset, spec, artefacts)
    validation = (validation_batches(family.build_sampler(cfg, held_out, spec, artefacts), cfg, device)
                  if held_out is not None else None)
    init_summary = None
    if payload is None:  # a resumed run loads its checkpoint instead
        from seqrl.lm_init.sources import initialise

        init_summary = initialise(model, cfg)
    elif (run_dir / METADATA_FILE).is_file():  # keep the record of where a resumed run's trunk came from
        import json

        init_summary = json.loads((run_dir / METADATA_FILE).read_text()).get("init")
    if prepare_model is not None:
        prepare_model(model)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(model, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(cfg))
    step = 0
    if payload is not None:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        _restore_rng_state(rng, payload["rng"])
        step = int(payload["step"])
        if processes.enabled:
            _restore_process_rng_state(payload["rng"], processes, device, cfg.seed, step)
    else:
        torch.manual_seed(rank_seed(cfg.seed, processes.rank))  # dropout stream, apart from the init stream

    started = finished = False  # whether this call joined the process group (and leaves it at the end)
    ddp_model = None
    if processes.enabled:
        # Joined before rank 0 writes anything: every process has passed its own checks by then.
        from torch.nn.parallel import DistributedDataParallel

        started = distributed.start(processes, device)
        # Buffers are the same on every process (the same init, checkpoint and steps): synchronised
        # once, when DDP starts, not sent each step (torch >= 2.13 names that forward_sync_buffers).
        import inspect

        no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                          inspect.signature(DistributedDataParallel.__init__).parameters else {"broadcast_buffers": False})
        ddp_model = DistributedDataParallel(_LossTerms(model), device_ids=[device] if device.type == "cuda" else None,
                                            **no_buffer_sync)

    # One writer per run directory, from its first file to the last checkpoint: rank 0.
    lock = RunLock(run_dir).__enter__() if processes.main else None
    try:
        metrics = writer = None
        if processes.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(run_dir / CONFIG_FILE, {  # the config, and what acting needs (fixed from here on)
                **cfg.to_dict(),
                ACTING_KEY: acting_record(family=family.tag, spec=spec.to_dict(), artefacts_key=family.artefacts_key,
                                          artefacts=family.artefacts_to_payload(artefacts)),
            })
            write_json_atomic(run_dir / METADATA_FILE, {
                **environment_metadata(str(device)),
                "spec": spec.to_dict(),
                "parameters": sum(p.numel() for p in model.parameters()),
                "trainable_parameters": sum(p.numel() for p in params),
                **({"init": init_summary} if init_summary else {}),
                **({"processes": {"world_size": processes.world, "batch_per_process": cfg.batch_size // processes.world,
                                  "backend": "nccl" if device.type == "cuda" else "gloo"}}
                   if processes.enabled else {}),
                **(extra_metadata or {}),
            })
            metrics = MetricsLog(run_dir / METRICS_FILE, resume_step=step if payload is not None else None)
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(run_dir / "tensorboard"))

        forward = ddp_model if ddp_model is not None else model.loss_terms
        loss_fn = torch.compile(forward) if cfg.compile else forward
        autocast = autocast_context(cfg.precision, device)
        # Under DDP a loss's mean is over every process's items (seqrl.distributed.global_mean).
        def means() -> Any:
            return distributed.global_means(processes.world) if processes.enabled else contextlib.nullcontext()

        def save() -> None:
            rng_state = _rng_state(rng)
            if processes.enabled:  # a collective: every process takes part, rank 0 writes
                rng_state["processes"] = distributed.gather(_process_rng_state(device))
            if not processes.main:
                return
            save_checkpoint(ckpt_file, {  # the family is the config's tag: seqrl.loading.checkpoint_family
                "step": step,
                "config": cfg.to_dict(),
                "spec": spec.to_dict(),
                family.artefacts_key: family.artefacts_to_payload(artefacts),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state,
            })
            # The self-contained model beside it: safetensors weights and what acting needs.
            write_model_file(run_dir, family=family.tag, config=cfg.to_dict(), spec=spec.to_dict(),
                             artefacts_key=family.artefacts_key, artefacts=family.artefacts_to_payload(artefacts),
                             state_dict=model.state_dict(), step=step)

        shown = cfg.progress and processes.main
        progress = Progress(cfg.steps, run_dir.name, unit="step", initial=step, enabled=shown)
        estimate = StepTimeEstimate(first_step=step, total=cfg.steps, enabled=shown, file=progress.file)
        model.train()
        loss_sum = torch.zeros((), device=device)  # summed on device: no sync per step
        term_sums: dict[str, torch.Tensor] = {}
        loss_count, tick = 0, time.perf_counter()
        last_saved = step if payload is not None else None  # the step of the checkpoint on disk
        saved_at = time.monotonic()  # when it was written (or this session started)
        eval_envs = None
        try:
            while step < cfg.steps:
                batch = sampler.sample(cfg.batch_size, rng)
                if processes.enabled:  # every process drew the same global batch: it keeps its rows
                    if not hasattr(batch, "shard"):
                        raise ConfigError(f"the {cfg.family} family's batches ({type(batch).__name__}) have no "
                                          "shard(rank, world): it cannot train under torchrun (docs/distributed.md)")
                    batch = batch.shard(processes.rank, processes.world)
                batch = batch.to_torch(device)
                with autocast, means():
                    loss, terms = loss_fn(batch)
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
                for name, value in terms.items():
                    term_sums[name] = term_sums.get(name, 0.0) + value.detach().float()
                loss_count += 1
                progress.update()
                estimate.step_done(step)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    now = time.perf_counter()
                    if processes.enabled:  # the mean over processes: the loss of the whole batch
                        loss_sum = distributed.mean_over_processes(loss_sum)
                        term_sums = {name: distributed.mean_over_processes(total) for name, total in term_sums.items()}
                    record = {
                        "step": step,
                        "loss": float(loss_sum) / loss_count,
                        **{f"loss/{name}": float(total) / loss_count for name, total in term_sums.items()},
                        "lr": lr,
                        "grad_norm": float(grad_norm),
                        "steps_per_sec": loss_count / max(now - tick, 1e-9),
                    }
                    if not math.isfinite(record["loss"]):
                        raise non_finite_loss(record["loss"], step, step - loss_count + 1, last_saved)
                    if validation is not None:  # every rank: the loss's global mean is a collective
                        record["val_loss"] = validation_loss(model, validation, autocast)
                    if metrics is not None:
                        metrics.write(record)
                    if writer is not None:
                        for key, value in record.items():
                            if key != "step":
                                writer.add_scalar(f"train/{key}", value, step)
                    progress.set_postfix(loss=f"{record['loss']:.4f}")
                    loss_sum.zero_()
                    term_sums = {}
                    loss_count, tick = 0, now
                if cfg.eval_every and step % cfg.eval_every == 0 and processes.main:  # the others wait below
                    if eval_envs is None:  # built at the first evaluation, reused by the later ones
                        from seqrl.evaluation.rollout import make_eval_envs

                        eval_envs = make_eval_envs(spec, cfg.eval_episodes)
                    record = evaluate_during_training(model, spec, cfg, device, step, envs=eval_envs)
                    metrics.write(record)
                    if writer is not None:
                        for key, value in record.items():
                            if key.startswith("eval/"):
                                writer.add_scalar(key, value, step)
                    model.train()
                if cfg.eval_every and step % cfg.eval_every == 0 and processes.enabled:
                    distributed.barrier()
                overdue = cfg.checkpoint_minutes and time.monotonic() - saved_at >= 60.0 * cfg.checkpoint_minutes
                if processes.enabled and cfg.checkpoint_minutes:  # rank 0's clock decides for all
                    overdue = distributed.rank0_says(bool(overdue), device)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps or overdue:
                    # Never overwrite a good checkpoint with weights a non-finite loss has reached.
                    if loss_count and processes.enabled:
                        loss_sum = distributed.mean_over_processes(loss_sum)
                    if loss_count and not math.isfinite(float(loss_sum)):
                        raise non_finite_loss(float(loss_sum), step, step - loss_count + 1, last_saved)
                    save()
                    last_saved, saved_at = step, time.monotonic()
        finally:
            if eval_envs is not None:
                eval_envs.close()
            if metrics is not None:
                metrics.close()
            if writer is not None:
                writer.close()
            progress.close()
        if processes.main:
            write_model_card(run_dir)
        model.eval()
        finished = True
        return TrainResult(run_dir, model, spec, cfg, step)
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)
        # After an error the other processes may never reach the barrier of `stop`: this process
        # leaves the group as it exits, and torchrun stops the others.
        if started and finished:
            distributed.stop()


class _LossTerms(torch.nn.Module):
    """`model.loss_terms` as a module's forward, which DistributedDataParallel wraps (its gradient
    averaging is prepared in forward: a method called past it would not be synchronised)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.model.loss_terms(batch)


VALIDATION_BATCHES = 4  # fixed held-out batches the validation loss averages over


def validation_batches(sampler: Any, cfg: RunConfig, device: torch.device) -> list[Any]:
    """The held-out batches, drawn once from their own generator (the training stream untouched):
    the same windows at every logged step, so the curve moves with the model only."""
    rng = np.random.default_rng([cfg.seed, 1])
    return [sampler.sample(cfg.batch_size, rng).to_torch(device) for _ in range(VALIDATION_BATCHES)]


@torch.no_grad()
def validation_loss(model: torch.nn.Module, batches: list[Any], autocast: Any) -> float:
    """The mean loss over the held-out batches, in eval mode (no dropout), training mode restored."""
    was = model.training
    model.eval()
    try:
        total = 0.0
        for batch in batches:
            with autocast:
                loss, _ = model.loss_terms(batch)
            total += float(loss)
    finally:
        model.train(was)
    return total / len(batches)


def check_window_fits(family: Any, cfg: RunConfig, model: torch.nn.Module, dataset: Any, device: torch.device) -> None:
    """Refuse, by name, a training window longer than every episode of the data, and one whose
    step's activations would not fit in the memory available (seqrl.memory's estimate)."""
    from seqrl.memory import activation_bytes, available_bytes, format_bytes

    steps = family.window_steps(cfg)
    lengths = getattr(dataset, "episode_lengths", None)
    if steps is not None and lengths is not None and len(lengths) and steps > int(np.max(lengths)):
        raise ConfigError(f"a training window spans {steps} steps, longer than every episode of {cfg.dataset} "
                          f"(the longest has {int(np.max(lengths))}): shorten the context")
    tokens = family.window_tokens(cfg, model)
    trunk = getattr(model, "trunk", None)
    if tokens is None or trunk is None or not hasattr(trunk, "blocks"):
        return
    first = trunk.blocks[0].attn
    width = first.qkv.in_features if hasattr(first.qkv, "in_features") else getattr(cfg, "embed_dim", 0)
    need = activation_bytes(cfg.batch_size, tokens, width, len(trunk.blocks), first.n_heads)
    have = available_bytes(device)
    if have is not None and need > have:
        raise ConfigError(f"one training step would keep about {format_bytes(need)} of activations ({tokens} tokens "
                          f"per window x batch {cfg.batch_size}, {len(trunk.blocks)} layers of width {width}), but "
                          f"{'the GPU' if device.type == 'cuda' else 'this machine'} has {format_bytes(have)} "
                          "available: lower --batch-size or shorten the context")


def non_finite_loss(value: float, step: int, since: int, last_saved: int | None) -> Exception:
    """The error of a loss that became NaN or infinite (first seen in steps `since`..`step`)."""
    from seqrl.errors import TrainingError

    where = f"at step {step}" if since >= step else f"between steps {since} and {step}"
    kept = (f"the checkpoint of step {last_saved} is intact (--resume continues from it)" if last_saved is not None
            else "no checkpoint was written")
    return TrainingError(f"the training loss became {value} {where}; {kept}. Likely causes: a learning rate too "
                         "high for this model (lower --learning-rate or --trunk-learning-rate, or raise "
                         "--warmup-steps), a non-finite setting such as --lora-alpha, or non-finite values in the data")


def evaluate_during_training(
    model: torch.nn.Module, spec: DataSpec, cfg: RunConfig, device: torch.device, step: int, envs: Any = None
) -> dict[str, Any]:
    """Roll the current model out under each condition (the highest target alone with
    `eval_targets: highest`); a metrics record with normalized scores.

    `envs`: evaluation envs to reuse (`make_eval_envs`); default: built and closed here.
    """
    from seqrl.evaluation.rollout import condition_label, evaluate

    model.eval()
    targets = None
    if cfg.eval_targets == "highest":
        conditions = family_of(cfg).conditions(cfg, spec, None)
        if conditions and all(isinstance(c, float) for c in conditions):  # target returns (a DT)
            targets = [max(conditions)]
    results = evaluate(model, spec, config=cfg, targets=targets, episodes=cfg.eval_episodes, seed=cfg.eval_seed,
                       progress=False,
                       device=device, envs=envs)
    record: dict[str, Any] = {"step": step, "kind": "eval"}
    for result in results:
        prefix = f"eval/{condition_label(result['target'])}"
        record[f"{prefix}/return_mean"] = result["return_mean"]
        if result.get("score_mean") is not None:
            record[f"{prefix}/score_mean"] = result["score_mean"]
    return record
