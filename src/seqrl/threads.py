"""How many CPU threads torch may use while seqrl runs a model.

PyTorch defaults to one intra-op thread per core. For this library's small models that is often
slower than one thread (the ops are too small to split), and on a busy machine it can be many
times slower: the OpenMP threads spin-wait for cores other processes hold (150 DT steps took
101.5 s with 2 threads against 8.3 s with 1 at load 2-2.7; `python bench/threads.py` measures
it, docs/benchmarks.md). So seqrl trains and evaluates with ONE thread unless told otherwise:

- `--threads N` on every command that runs a model (0: torch's own default, one per core);
- `SEQRL_THREADS=N` in the environment, for the commands and the Python API alike;
- `with torch_threads(N): train(cfg)` in Python.

`train` and `evaluate` enter `model_threads()`, which applies that choice for their duration and
restores the caller's torch setting after.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from seqrl.errors import ConfigError

DEFAULT_THREADS = 1  # never slower than 1 thread on a loaded machine: it is 1 thread
ENV_VAR = "SEQRL_THREADS"

_chosen: int | None = None  # set by torch_threads / set_process_threads, for this process


def _check(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"{what} must be an integer >= 0 (0: torch's default, one thread per core), got {n!r}")
    return n


def threads_for_models() -> int:
    """The intra-op threads seqrl runs models with: the caller's choice (`torch_threads`,
    `--threads`), else $SEQRL_THREADS, else 1. 0 means torch's own default."""
    if _chosen is not None:
        return _chosen
    value = os.environ.get(ENV_VAR)
    if value:
        try:
            return _check(int(value), ENV_VAR)
        except ValueError:
            raise ConfigError(f"{ENV_VAR}={value!r} is not an integer (0: torch's default)") from None
    return DEFAULT_THREADS


def set_process_threads(n: int | None) -> None:
    """Make `n` this process's choice (a sweep worker's share of the cores); None: no choice."""
    global _chosen
    _chosen = None if n is None else _check(n, "threads")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run torch with `n` intra-op threads inside the block (0: torch's default), and make `n`
    the choice `model_threads` applies inside it; the caller's setting is restored after.

    None leaves everything as it is.
    """
    global _chosen
    if n is None:
        yield
        return
    _check(n, "threads")
    import torch

    previous, previous_choice = torch.get_num_threads(), _chosen
    _chosen = n
    try:
        if n and n != previous:
            torch.set_num_threads(n)
        yield
    finally:
        _chosen = previous_choice
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


@contextmanager
def model_threads() -> Iterator[None]:
    """`threads_for_models()` threads for the block (what `train` and `evaluate` run under)."""
    import torch

    n = threads_for_models()
    previous = torch.get_num_threads()
    if not n or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
