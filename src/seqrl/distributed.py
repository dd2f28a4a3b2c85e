"""Data-parallel training across processes: `torchrun --nproc_per_node N -m seqrl train ...`.

torchrun starts N copies of the command with RANK, WORLD_SIZE and LOCAL_RANK in their
environment; `Processes.from_environment()` reads them (one process, rank 0, without them).
The training loop (seqrl.train) then:

- splits the config's batch across the processes: batch_size % world_size must be 0
  (`check_batch`, refused by name before anything is written);
- has every process draw the SAME global batch from the same seeded generator and keep its own
  rows (`rows`: rank r gets rows r*B/W .. (r+1)*B/W), so the processes' shards together are
  exactly the batch one process would have drawn, whatever the world size;
- wraps the model in DistributedDataParallel (gloo on CPU, nccl on CUDA with cuda:LOCAL_RANK),
  which averages the gradients over processes during backward; clipping comes after backward,
  so it sees the averaged gradient;
- makes every mean a global mean: a loss averaged over the real (unmasked) items of one
  process's shard calls `global_mean(mean, count)`, which rescales it by count / (N / W), N the
  count summed over processes. DDP's average of those gradients is then the gradient of the mean
  over ALL real items, as one process computes it (a plain average of per-process means would
  weight the items of a shard with more padding more). Outside a DDP step it returns `mean`
  itself, untouched, so single-process training is bit-identical to before.

Only rank 0 writes (config, metadata, metrics, checkpoints; it alone holds the RunLock) and
shows progress; see docs/distributed.md.
"""

from __future__ import annotations

import datetime
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from seqrl.errors import ConfigError

# Long enough for rank 0 to run an in-training evaluation while the others wait at a barrier.
TIMEOUT = datetime.timedelta(minutes=60)

_world_for_means: int | None = None  # set inside `global_means`: a DDP training step


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Several processes train one model (torchrun with more than one)."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """The process that writes and reports (rank 0)."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> "Processes":
        """What torchrun set (RANK, WORLD_SIZE, LOCAL_RANK); one process when they are absent."""
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env or "RANK" not in env:
            return cls()
        try:
            world, rank = int(env["WORLD_SIZE"]), int(env["RANK"])
            local = int(env.get("LOCAL_RANK", rank))
        except ValueError:
            raise ConfigError(f"torchrun's RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r}, "
                              f"LOCAL_RANK={env.get('LOCAL_RANK')!r} are not integers") from None
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"torchrun's RANK={rank} is not within WORLD_SIZE={world}")
        return cls(rank, world, local)


def check_batch(batch_size: int, processes: Processes) -> None:
    """Refuse a global batch that the processes cannot share equally."""
    if processes.enabled and batch_size % processes.world:
        raise ConfigError(f"--batch-size {batch_size} cannot be split across {processes.world} processes "
                          f"(torchrun's world size): give a batch size divisible by {processes.world}, e.g. "
                          f"{max(processes.world, batch_size - batch_size % processes.world)}")


def device_for(name: str, processes: Processes) -> str:
    """The device name for this process: under torchrun, CUDA means cuda:LOCAL_RANK."""
    if not processes.enabled:
        return name
    import torch

    if name == "auto":
        return f"cuda:{processes.local_rank}" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return f"cuda:{processes.local_rank}"
    if name.startswith("cuda:") and name != f"cuda:{processes.local_rank}":
        raise ConfigError(f"--device {name}: under torchrun each process uses its own GPU, cuda:LOCAL_RANK "
                          f"(cuda:{processes.local_rank} here); give --device cuda or auto")
    return name


def start(processes: Processes, device: Any) -> bool:
    """Join the process group (gloo on CPU, nccl on CUDA); True when this call created it (and
    `stop` should end it), False when the caller had already joined one."""
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=processes.rank,
                            world_size=processes.world, timeout=TIMEOUT)
    return True


def stop() -> None:
    """Leave the process group, once every process is done with it.

    gloo's worker threads free a finished collective's tensors after it returns, and that needs
    the GIL; destroying the group holds the GIL while it joins those threads, which then wait
    forever (pytorch/pytorch#75097, #56297: seen here after a checkpoint's all_gather_object). So
    first a barrier, then a short sleep, both without the GIL: the threads finish their work.
    """
    import time

    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        time.sleep(0.05)
        dist.destroy_process_group()


def rows(x: Any, rank: int, world: int) -> Any:
    """Rank `rank`'s share of the rows (first axis) of an array or tensor: contiguous, in rank
    order, equal when the rows divide evenly (np.array_split's bounds otherwise); None stays None.

    A share with no rows is refused: every process must have data to compute its loss on.
    """
    if x is None:
        return None
    n = len(x)
    if n < world:
        raise ConfigError(f"a batch part of {n} rows cannot be split across {world} processes: raise --batch-size")
    small, extra = divmod(n, world)
    start = rank * small + min(rank, extra)
    return x[start:start + small + (1 if rank < extra else 0)]


@contextmanager
def global_means(world: int) -> Iterator[None]:
    """Inside the block (a DDP training step), `global_mean` reduces across the `world` processes."""
    global _world_for_means
    previous, _world_for_means = _world_for_means, world
    try:
        yield
    finally:
        _world_for_means = previous


def global_mean(mean: Any, count: Any) -> Any:
    """`mean` (a mean over `count` items of this process's shard) scaled so that DDP's average
    over processes of it, and of its gradient, is the mean over every process's items.

    Outside `global_means` (one process, evaluation): `mean` itself. Every process must call it
    at the same points (it is a collective).
    """
    if _world_for_means is None:
        return mean
    import torch
    import torch.distributed as dist

    local = torch.as_tensor(count, dtype=torch.float32, device=mean.device).detach()
    total = local.clone()
    dist.all_reduce(total)
    return mean * (local * _world_for_means / total.clamp(min=1.0)).to(mean.dtype)


def mean_over_processes(value: Any) -> Any:
    """The average over processes of a tensor (a collective; a copy of `value` with one process)."""
    import torch.distributed as dist

    total = value.detach().clone()
    if dist.is_initialized():
        dist.all_reduce(total)
        total /= dist.get_world_size()
    return total


def rank0_says(flag: bool, device: Any) -> bool:
    """Rank 0's `flag` on every process (a decision only rank 0 can take: a timer)."""
    import torch
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def gather(obj: Any) -> list[Any]:
    """Every process's `obj`, in rank order (a collective)."""
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def rank_seed(seed: int, rank: int) -> int:
    """The dropout stream's seed of process `rank`: seed + 1 on rank 0 (a one-process run's),
    a stream of its own on every other."""
    if rank == 0:
        return seed + 1
    import numpy as np

    return int(np.random.SeedSequence([seed, 1, rank]).generate_state(1)[0])


def shard_rows(batch: Any, rank: int, world: int) -> Any:
    """A dataclass batch whose every field has a row per window: each field's `rows`."""
    import dataclasses

    return dataclasses.replace(batch, **{f.name: rows(getattr(batch, f.name), rank, world)
                                         for f in dataclasses.fields(batch)})
