"""Execute one sweep run in the current process: train (or fine-tune), evaluate, mark it done.

This is what a local worker process or a Ray task calls. Its state lives in the run directory,
so any invocation can pick up where another stopped:

- `sweep.json` says what the run is (its RunSpec) and how far it got: `running`, `done` (with
  the step it finished at) or `failed` (with the error);
- the checkpoint lets an interrupted run continue (`resume=True`), bit-identically;
- `eval.json` (written by `seqrl.evaluation.evaluate.evaluate_run`) holds the final evaluation.

A run counts as finished when `sweep.json` says `done` at a step >= the spec's `steps`; raising
`steps` in the spec therefore continues finished runs rather than skipping them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

from seqrl.experiments.spec import RunSpec
from seqrl.runs import write_json_atomic

RUN_STATE_FILE = "sweep.json"
LOCK_FILE = ".sweep.lock"
# Environment variables that say where data lives; passed from the sweep's process to workers
# (Ray workers do not necessarily inherit the driver's environment).
DATA_ENV_VARS = ("MINARI_DATASETS_PATH", "D4RL_DATASET_DIR", "SEQRL_ZOO")


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """The run's sweep.json, or None if it has none (or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / RUN_STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_finished(run: RunSpec, run_dir: Path) -> bool:
    state = read_state(run_dir)
    if state is None or state.get("status") != "done" or int(state.get("step", -1)) < run.steps:
        return False
    return run.eval_episodes == 0 or (Path(run_dir) / "eval.json").exists()


def data_environment() -> dict[str, str]:
    """The data-location variables set in this process, to hand to workers."""
    return {k: os.environ[k] for k in DATA_ENV_VARS if k in os.environ}


def set_threads(threads: int | None) -> None:
    """Give torch `threads` intra-op threads (workers share the machine's cores between them)."""
    if not threads:
        return
    import torch

    from seqrl.threads import set_process_threads

    set_process_threads(int(threads))  # what train and evaluate run with in this worker
    torch.set_num_threads(int(threads))
    try:  # only allowed before any inter-op work has started in this process
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def execute_run(run_dict: dict[str, Any], output_root: str, threads: int | None = None,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one sweep run to completion; never raises for a failing run (the sweep goes on).

    Takes and returns plain dicts so it pickles cheaply to worker processes and Ray tasks.
    Returns {"name", "status": "done"|"finished"|"failed", "step", "seconds", "error"}.
    KeyboardInterrupt is not caught: the run stays `running` and resumes next time.
    """
    os.environ.update(env or {})
    set_threads(threads)
    run = RunSpec.from_dict(run_dict)
    run_dir = Path(output_root) / run.name
    with run_lock(run_dir) as locked:
        if not locked:
            return {"name": run.name, "status": "failed", "step": None, "seconds": 0.0,
                    "error": f"another process is running {run_dir} (two sweeps on one output root?)"}
        return _execute(run, run_dir, output_root)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[bool]:
    """An exclusive lock on the run directory, so two sweeps sharing an output root never train
    the same run at once; yields False if another process holds it. (flock: advisory, and
    per-host on most network filesystems.)"""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _execute(run: RunSpec, run_dir: Path, output_root: str) -> dict[str, Any]:
    start = time.perf_counter()
    if is_finished(run, run_dir):
        return {"name": run.name, "status": "finished", "step": read_state(run_dir)["step"], "seconds": 0.0, "error": None}
    state = {"run": run.to_dict(), "status": "running", "host": socket.gethostname(), "pid": os.getpid(),
             "started": time.time()}
    write_json_atomic(run_dir / RUN_STATE_FILE, state)
    try:
        step = _train(run, Path(output_root))
        train_seconds = time.perf_counter() - start
        if run.eval_episodes:
            from seqrl.evaluation.evaluate import evaluate_run

            cfg = run.config(output_root)
            evaluate_run(run_dir, episodes=run.eval_episodes, device=cfg.device, settings=run.eval_settings)
    except Exception as exc:  # noqa: BLE001 (a failing run is reported, the sweep goes on)
        error = f"{type(exc).__name__}: {exc}"
        write_json_atomic(run_dir / RUN_STATE_FILE, {**state, "status": "failed", "error": error,
                                                     "traceback": traceback.format_exc()})
        return {"name": run.name, "status": "failed", "step": None, "seconds": time.perf_counter() - start, "error": error}
    seconds = time.perf_counter() - start
    write_json_atomic(run_dir / RUN_STATE_FILE, {**state, "status": "done", "step": step, "train_seconds": train_seconds,
                                                 "seconds": seconds, "finished": time.time()})
    return {"name": run.name, "status": "done", "step": step, "seconds": seconds, "error": None}


def _train(run: RunSpec, output_root: Path) -> int:
    """Train or fine-tune the run (continuing from its checkpoint if it has one); its final step."""
    cfg = run.config(output_root)
    if run.finetune is None:
        from seqrl.train import train

        result = train(cfg)
    else:
        result = _finetune(run, cfg, output_root)
    step = result.step
    del result  # free the model before evaluation loads it again from the checkpoint
    return step


def _finetune(run: RunSpec, cfg: Any, output_root: Path) -> Any:
    """Fine-tune from the source run; the sweep's values override the source run's config."""
    from seqrl.transfer import finetune

    overrides = {k: v for k, v in run.overrides.items() if k != "steps"}
    return finetune(
        output_root / run.finetune.source, run.dataset, train_mode=run.finetune.train, steps=run.steps,
        run_dir=cfg.run_dir, resume=True, model=run.model, seed=run.seed,
        **({"rebuild": run.finetune.rebuild} if run.finetune.rebuild else {}), **overrides,
    )
