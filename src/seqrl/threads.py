"""How many CPU threads torch may use, set for the duration of one command.

PyTorch defaults to one intra-op thread per core. For this library's small models that is often
slower than one thread (the ops are too small to split), and on a busy machine it can be several
times slower: the OpenMP threads spin-wait for cores other processes hold (docs/benchmarks.md
measured a training step 4x slower with 2 threads than 1 beside one busy process). Every command
that runs a model takes `--threads`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from seqrl.errors import ConfigError


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run torch with `n` intra-op threads inside the block, restoring the caller's setting.

    None leaves torch's setting alone.
    """
    import torch

    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield
        return
    if n < 1:
        raise ConfigError(f"threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
