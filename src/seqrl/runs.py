"""A run is a directory: config.json, metadata.json, metrics.jsonl, checkpoints/.

Evaluation, fine-tuning, sweeps and reports all read run directories, never in-memory state.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Iterable

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
LATEST_CHECKPOINT = "latest.pt"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file beside `path` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=_json_default)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def git_revision() -> str | None:
    """The seqrl checkout's git revision (with '-dirty' if modified), or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


# The instruction sets that change which CPU kernels run, and so the numbers and the speed: runs
# on machines that differ only in these are not bit-comparable (an AVX2-only EPYC rounds
# onnxruntime's kernels differently from an AVX-512 one, docs/export.md).
_ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU's model name, its kernel-relevant instruction sets (Linux's /proc/cpuinfo) and the
    capability torch dispatches to (e.g. "AVX2", "AVX512"); None for what cannot be read."""
    model, flags = None, None
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and flags is None:
                present = set(value.split())
                flags = [f for f in _ISA_FLAGS if f in present]
    except OSError:
        pass
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except (ImportError, AttributeError, RuntimeError):
        capability = None
    return {"model": model, "isa": flags, "torch_capability": capability}


def environment_metadata(device: str) -> dict[str, Any]:
    versions = {}
    for package in ("seqrl", "torch", "numpy", "gymnasium", "mujoco", "minari", "stable-baselines3"):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_description(),
        "hostname": socket.gethostname(),
        "git_revision": git_revision(),
        "device": device,
        "command": sys.argv,
    }


class MetricsLog:
    """Append-only JSONL metrics; on resume, lines past the checkpoint's step are dropped so a
    resumed run's log reads exactly like an uninterrupted one."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        if resume_step is not None and path.exists():
            kept = [line for line in read_jsonl(path) if line.get("step", 0) <= resume_step]
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(line) + "\n" for line in kept))
            os.replace(tmp, path)
        elif resume_step is None and path.exists():
            path.unlink()
        self._file = open(path, "a")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, default=_json_default) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (a run killed mid-write) is skipped."""
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def iter_run_dirs(root: Path) -> Iterable[Path]:
    """Every run directory (one holding config.json) under `root`, sorted."""
    return sorted(p.parent for p in Path(root).rglob(CONFIG_FILE))


LOCK_FILE = ".seqrl.lock"


class RunLock:
    """One writer per run directory: an exclusive `flock` on RUN_DIR/.seqrl.lock, held while a
    trainer (or an evaluation writing eval.json) works there, with the holder's PID in the file.

    A second writer is refused at once with a CheckpointError naming the holder, instead of two
    processes interleaving config.json, metrics and checkpoints. The kernel drops the lock when
    its process dies (kill -9 included), so a crashed run never leaves a stale lock behind.
    Where flock does not exist (Windows), nothing is locked.
    """

    def __init__(self, run_dir: Path | str, what: str = "training") -> None:
        self.run_dir, self.what = Path(run_dir), what
        self._file = None

    def __enter__(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return self
        from seqrl.errors import CheckpointError

        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.run_dir / LOCK_FILE, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise CheckpointError(f"{self.run_dir} is in use by {holder}; wait for it to finish (or stop it) before "
                                  f"{self.what} there, or choose another --run-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} ({self.what}, {socket.gethostname()})")
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
