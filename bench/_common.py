"""Shared helpers for the bench/ scripts: machine description, interleaved timing, tables, --json.

Benchmarks here compare ratios measured in the same process, with repetitions interleaved
(A B C A B C ...) so that a burst of load from other processes hits every case alike, and
report medians. Never use these numbers in tests.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import time
from typing import Any, Callable, Sequence

import torch


def machine() -> dict[str, Any]:
    """CPU model, cores, load, torch version and threads: printed with every table."""
    cpu = platform.processor() or "unknown"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "simd": " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "none",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_avg_1m_at_start": round(load[0], 2),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def interleaved(cases: dict[str, Callable[[], Any]], repeats: int, inner: int = 1,
                inner_for: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each case: `repeats` rounds, each case timed over `inner` calls per round.

    `inner_for` overrides `inner` per case (slow cases can run fewer calls per round).
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            n = (inner_for or {}).get(name, inner)
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - start) / n)
    return times


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def spread(xs: Sequence[float]) -> float:
    """Interquartile range relative to the median: how noisy a row was."""
    if len(xs) < 4:
        return float("nan")
    q = statistics.quantiles(xs, n=4)
    return (q[2] - q[0]) / statistics.median(xs)


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Best-of-`repeats` GFLOP/s of one n x n @ n x n matmul: the peak the steps are compared to."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up (thread pool, packing buffers)
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table (pastes straight into docs/benchmarks.md)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return "-" if value is None else str(value)


def print_header(title: str, info: dict[str, Any]) -> None:
    print(f"## {title}\n")
    print(f"command: `{command_line()}`")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items() if v is not None) + "\n")


def dump_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        text = json.dumps(payload, indent=2, default=str)
        if path == "-":
            print(text)
        else:
            with open(path, "w") as f:
                f.write(text + "\n")
