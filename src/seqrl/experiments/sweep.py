"""`seqrl sweep SPEC`: run every run of a spec, in parallel, resumably, locally or on Ray.

The scheduler is a plain loop: submit every run whose dependency (the run it fine-tunes from)
has finished, up to the backend's capacity; wait for one to end; repeat. Two backends share it:

- `local`: a pool of worker processes on this machine (forked from a forkserver that has
  imported torch once; each sets its own torch thread count; by default the cores are split
  evenly between workers);
- `ray`: one Ray task per run (`num_cpus=--threads`), on the cluster `ray.init(address=...)`
  connects to, or a local Ray instance. The output root must then be a path every node sees
  (a shared filesystem), since runs read and write their directories there.

Every run's state lives in its directory (see runner.py), so running the same command again
skips finished runs, continues interrupted ones from their checkpoints, and retries failed
ones. A failing run is reported; runs that fine-tune from it are reported as blocked; the rest
of the sweep goes on. Interrupting `seqrl sweep` (Ctrl-C, or SIGTERM to it) stops the runs in
flight at once; they resume from their last checkpoint on the next invocation.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

import tyro  # noqa: F401 (resolves the command's string annotations)

from seqrl.errors import ConfigError
from seqrl.experiments.runner import data_environment, execute_run, is_finished, read_state
from seqrl.experiments.spec import RunSpec, Sweep, load_spec
from seqrl.runs import CHECKPOINT_DIR, LATEST_CHECKPOINT, METRICS_FILE, write_json_atomic

PLAN_FILE = "sweep-plan.json"


@dataclass
class SweepResult:
    """How each run of a sweep invocation ended: done (trained now), finished (skipped: done
    before), failed, or blocked (the run it fine-tunes from failed)."""

    output: Path
    status: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def names(self, status: str) -> list[str]:
        return [n for n, s in self.status.items() if s == status]

    @property
    def ok(self) -> bool:
        return not self.names("failed") and not self.names("blocked")


# ----------------------------------------------------------------------------- backends
def _init_local_worker(threads: int, env: dict[str, str]) -> None:
    # Before torch is imported in this process, so OpenMP starts with this many threads too.
    os.environ.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **env})
    from seqrl.experiments.runner import set_threads

    set_threads(threads)


# Imported once by the forkserver, so each worker starts in milliseconds instead of importing
# torch and the simulators again (seconds each, more on a busy machine).
# torch._dynamo is imported lazily by the first optimizer torch builds, and is the largest part.
WORKER_PRELOAD = ["seqrl.train", "seqrl.evaluation.evaluate", "seqrl.data.sources", "seqrl.experiments.runner",
                  "torch._dynamo"]


def _worker_context() -> multiprocessing.context.BaseContext:
    """forkserver where the platform has it, else spawn; never plain fork: a child forked from a
    process that already ran torch inherits its thread pools and locks half-initialised. The
    forkserver is a fresh process that only imports, so forking from it is safe. Workers get
    the data locations through `execute_run`'s env, since the forkserver's environment is the
    one it started with."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(WORKER_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


class LocalBackend:
    """Worker processes on this machine."""

    def __init__(self, workers: int, threads: int, output: Path) -> None:
        self.capacity = workers
        self.threads = threads
        self.output = output
        self._env = data_environment()
        self._pool = self._new_pool()
        self._futures: dict[cf.Future, str] = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.capacity, mp_context=_worker_context(),
                                      initializer=_init_local_worker, initargs=(self.threads, self._env))

    def submit(self, run: RunSpec) -> None:
        future = self._pool.submit(execute_run, run.to_dict(), str(self.output), self.threads, self._env)
        self._futures[future] = run.name

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        done, _ = cf.wait(list(self._futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        outcomes = []
        broken = False
        for future in done:
            name = self._futures.pop(future)
            try:
                outcomes.append(future.result())
            except Exception as exc:  # noqa: BLE001 (the worker process died: killed, out of memory)
                broken = broken or isinstance(exc, BrokenProcessPool)
                outcomes.append({"name": name, "status": "failed", "error": f"worker died: {type(exc).__name__}: {exc}"})
        if broken:
            # A dead worker breaks the whole pool; every run in it is lost. Report them and start
            # a fresh pool for the rest of the sweep (the lost runs resume on the next invocation).
            for future, name in list(self._futures.items()):
                outcomes.append({"name": name, "status": "failed", "error": "worker pool broke (another worker died)"})
            self._futures.clear()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
        return outcomes

    @property
    def running(self) -> int:
        return len(self._futures)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            # Interrupted (Ctrl-C, SIGTERM, an error in the scheduler): stop the runs in flight
            # now rather than wait for them to finish training. Each run keeps its last atomic
            # checkpoint and its sweep.json still says `running`, so the next invocation resumes
            # it. shutdown() alone would cancel only queued runs and join the busy workers.
            self._terminate_workers()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)

    def _terminate_workers(self) -> None:
        terminate = getattr(self._pool, "terminate_workers", None)  # Python >= 3.14
        if terminate is not None:
            terminate()
            return
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            if process.is_alive():
                process.terminate()
        for process in list((getattr(self._pool, "_processes", None) or {}).values()):
            process.join(timeout=10)


class RayBackend:
    """One Ray task per run, on the Ray cluster at `address` (None: connect to the one this
    process already initialised, or start a local instance)."""

    def __init__(self, threads: int, output: Path, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'seqrl[ray]'") from None
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self.capacity = 1 << 30  # Ray queues tasks itself, placing them as CPUs free up
        self.threads = threads
        self.output = output
        self._env = data_environment()
        # A task lost with its node is retried; the retry resumes from the run's checkpoint.
        self._task = ray.remote(num_cpus=threads, max_retries=2)(execute_run)
        self._refs: dict[Any, str] = {}

    def submit(self, run: RunSpec) -> None:
        ref = self._task.remote(run.to_dict(), str(self.output), self.threads, self._env)
        self._refs[ref] = run.name

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        if not self._refs:
            return []
        done, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        outcomes = []
        for ref in done:
            name = self._refs.pop(ref)
            try:
                outcomes.append(self._ray.get(ref))
            except Exception as exc:  # noqa: BLE001 (the task died for good: node lost, out of memory)
                outcomes.append({"name": name, "status": "failed", "error": f"ray task died: {type(exc).__name__}: {exc}"})
        return outcomes

    @property
    def running(self) -> int:
        return len(self._refs)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self._refs:
                self._ray.cancel(ref)


# ----------------------------------------------------------------------------- scheduling
def run_sweep(
    sweep: Sweep,
    output: Path | str,
    *,
    workers: int = 1,
    threads: int | None = None,
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    view: "SweepView | None" = None,
) -> SweepResult:
    """Run the sweep's unfinished runs; returns how each ended. Never raises for a failed run."""
    output = Path(output).resolve()  # workers (and Ray nodes) may run in another directory
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / PLAN_FILE, {"name": sweep.name, "source": sweep.source,
                                           "runs": [r.to_dict() for r in sweep.runs]})
    result = SweepResult(output)
    todo: list[RunSpec] = []
    for run in sweep.runs:
        if is_finished(run, output / run.name):
            result.status[run.name] = "finished"
        else:
            todo.append(run)
    if view is not None:
        view.start(sweep, output, result)
    if not todo:
        if view is not None:
            view.stop()
        return result

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if backend == "local":
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        executor: LocalBackend | RayBackend = LocalBackend(workers, threads, output)
    elif backend == "ray":
        executor = RayBackend(threads or 1, output, ray_address)
    else:
        raise ConfigError(f"unknown backend {backend!r}; choose local or ray")

    succeeded = {"done", "finished"}
    cancel = True
    try:
        while todo or executor.running:
            for run in list(todo):
                if executor.running >= executor.capacity:
                    break
                deps = [result.status.get(d) for d in run.depends_on]
                if any(s in ("failed", "blocked") for s in deps):
                    todo.remove(run)
                    result.status[run.name] = "blocked"
                    result.errors[run.name] = f"depends on {run.depends_on[0]}, which did not finish"
                    if view is not None:
                        view.update(run.name, "blocked", result.errors[run.name])
                elif all(s in succeeded for s in deps):
                    todo.remove(run)
                    result.status[run.name] = "running"
                    executor.submit(run)
                    if view is not None:
                        view.update(run.name, "running")
            for outcome in executor.wait(timeout=1.0):
                result.status[outcome["name"]] = outcome["status"]
                if outcome.get("error"):
                    result.errors[outcome["name"]] = outcome["error"]
                if view is not None:
                    view.update(outcome["name"], outcome["status"], outcome.get("error"))
            if view is not None:
                view.refresh()
        cancel = False
    finally:
        executor.close(cancel=cancel)
        if view is not None:
            view.stop()
    return result


# ----------------------------------------------------------------------------- progress view
def run_progress(run_dir: Path) -> dict[str, Any] | None:
    """The last training record of a run (step, loss), read from the tail of its metrics.jsonl."""
    import json

    path = run_dir / METRICS_FILE
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "loss" in record:
            return record
    return None


class SweepView:
    """A rich live view: overall progress bar, a table of the running runs (step, loss,
    steps/s, read from their metrics files), and one log line per run that ends."""

    def __init__(self, console: Any = None) -> None:
        from seqrl.console import make_console

        self.console = console or make_console()
        self._live = None
        self._plain = None  # seqrl.progress.Progress lines when the console is not a terminal

    def start(self, sweep: Sweep, output: Path, result: SweepResult) -> None:
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.sweep, self.output, self.result = sweep, output, result
        self.started: dict[str, float] = {}
        finished = len(result.names("finished"))
        self.console.print(f"sweep [bold]{sweep.name}[/bold]: {len(sweep.runs)} runs in {output} "
                           f"({finished} already finished)")
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console)
        self.task = self.progress.add_task("runs", total=len(sweep.runs), completed=finished)
        if not self.console.is_terminal:
            # Piped or logged: rich's live view would show nothing until the end; a plain line
            # every so often instead (runs done, rate, ETA, the running runs' steps and losses).
            from seqrl.progress import Progress as PlainProgress

            self._plain = PlainProgress(len(sweep.runs), f"sweep {sweep.name}", unit="run", initial=finished, tty=False)
            return
        self._live = Live(self._render(), console=self.console, refresh_per_second=2, transient=True)
        self._live.start()

    def update(self, name: str, status: str, error: str | None = None) -> None:
        if status == "running":
            self.started[name] = time.time()
            return
        seconds = time.time() - self.started.pop(name, time.time())
        style = {"done": "green", "finished": "green", "failed": "red", "blocked": "yellow"}.get(status, "white")
        detail = f" ({error})" if error else (f" in {seconds:.0f}s" if status == "done" else "")
        self.console.print(f"[{style}]{status:>8}[/{style}] {name}{detail}", highlight=False)
        self.progress.advance(self.task)
        if self._plain is not None:
            self._plain.update(1)

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
        if self._plain is not None:
            self._plain.set_postfix(running=self._running_summary())

    def _running_summary(self) -> str:
        """'name step 300/1000 loss 0.123, ...' for the plain progress lines."""
        parts = []
        for name in self.started:
            record = run_progress(self.output / name) or {}
            loss = f" loss {record['loss']:.4g}" if "loss" in record else ""
            parts.append(f"{name} step {record.get('step') or 0}/{self.sweep.by_name[name].steps}{loss}")
        return ", ".join(parts) or "-"

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for column in ("running", "step", "loss", "steps/s", "time"):
            table.add_column(column, justify="left" if column == "running" else "right",
                             overflow="fold" if column == "running" else "ellipsis")
        for name, since in self.started.items():
            run = self.sweep.by_name[name]
            record = run_progress(self.output / name) or {}
            step = record.get("step") or 0
            table.add_row(
                name, f"{step}/{run.steps}" if step < run.steps else "evaluating", f"{record['loss']:.4f}" if "loss" in record else "-",
                f"{record['steps_per_sec']:.1f}" if "steps_per_sec" in record else "-", f"{time.time() - since:.0f}s",
            )
        return Group(self.progress, table) if self.started else self.progress

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._plain is not None:
            self._plain.close()
            self._plain = None


# ----------------------------------------------------------------------------- dry run and CLI
def describe(sweep: Sweep, output: Path) -> Any:
    """A rich Table of the sweep's runs with their state on disk (for --dry-run)."""
    from rich.table import Table

    table = Table(title=f"sweep {sweep.name}: {len(sweep.runs)} runs in {output}")
    for column in ("run", "steps", "state", "after (fine-tunes from / init from)"):
        table.add_column(column, overflow="fold")
    for run in sweep.runs:
        run_dir = output / run.name
        state = read_state(run_dir) or {}
        if is_finished(run, run_dir):
            text = "finished"
        elif state.get("status") == "failed":
            text = f"failed: {state.get('error', '?')}"
        elif state.get("status") == "running" and not _alive(state):
            step = (run_progress(run_dir) or {}).get("step")
            resumable = (run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT).exists()
            text = f"interrupted (logged step {step or 0}; " + ("resumes from its checkpoint)" if resumable else "no checkpoint yet)")
        elif state.get("status") == "running":
            text = f"running (step {(run_progress(run_dir) or {}).get('step', 0)})"
        else:
            text = "new"
        table.add_row(run.name, str(run.steps), text, ", ".join(run.depends_on))
    return table


def _alive(state: dict[str, Any]) -> bool:
    """Whether the process that marked a run `running` still runs (known only on its own host)."""
    import socket

    if state.get("host") != socket.gethostname():
        return True  # another node of a cluster: assume its word
    try:
        os.kill(int(state.get("pid", -1)), 0)
    except (OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM (kill, a cluster scheduler ending the job) like Ctrl-C while a sweep runs, so
    the scheduler's cleanup stops the workers instead of leaving them training as orphans."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sweep_command(
    spec: "tyro.conf.Positional[str]",
    output: str | None = None,
    workers: int = 1,
    threads: int | None = None,
    backend: Literal["local", "ray"] = "local",
    ray_address: str | None = None,
    only: tuple[str, ...] = (),
    dry_run: bool = False,
) -> None:
    """Run a sweep spec (YAML or Python): every dataset x model x option x seed, then evaluate.

    Rerunning the same command skips finished runs and continues interrupted ones.

    Args:
        spec: Sweep spec file (.yaml/.yml, or .py defining SWEEP or sweep()).
        output: Output root for the runs (default: the spec's `output`, else runs/<spec name>).
        workers: Runs trained at once (local backend).
        threads: Torch threads per run (default: local, the cores split between workers; ray, 1).
        backend: local (worker processes on this machine) or ray (a Ray cluster; see --ray-address).
        ray_address: Ray cluster to connect to (e.g. auto, ray://host:10001); default: a local instance.
        only: Run only runs matching these shell-style patterns (plus the runs they fine-tune from).
        dry_run: List the runs and their state on disk, and run nothing.
    """
    from seqrl.console import make_console

    sweep = load_spec(spec).select(only)
    root = Path(output) if output else (sweep.output or Path("runs") / sweep.name)
    console = make_console()
    if dry_run:
        console.print(describe(sweep, root))
        return
    with _sigterm_interrupts():
        result = run_sweep(sweep, root, workers=workers, threads=threads, backend=backend, ray_address=ray_address,
                           view=SweepView(console))
    counts = ", ".join(f"{len(result.names(s))} {s}" for s in ("done", "finished", "failed", "blocked") if result.names(s))
    console.print(f"sweep {sweep.name}: {counts}; runs in {result.output}")
    for name, error in result.errors.items():
        console.print(f"[red]{result.status[name]}[/red] {name}: {error}", highlight=False)
    if not result.ok:
        raise SystemExit(1)
