"""Will a training step fit in memory? An estimate from the config, checked before anything is written.

A context of thousands of tokens makes attention's (tokens x tokens) score matrices the largest
thing a step holds: `--context-len 5000` (a DT, 15,000 tokens) asked the kernel for far more
than this 24 GB machine has, and the OOM killer took other processes down with it. The estimate
is the standard count of the activations a transformer layer keeps for its backward pass
(Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models": per
layer about tokens x batch x (34 width + 5 heads x tokens) bytes at 2 bytes a number), at
4 bytes a number, for the whole trunk. It is deliberately rough (within a factor of about 2);
the guard refuses only what cannot fit.
"""

from __future__ import annotations

import os
from typing import Any


def activation_bytes(batch: int, tokens: int, width: int, layers: int, heads: int, bytes_per_number: int = 4) -> int:
    """Bytes of activations a training step of the trunk keeps for its backward pass."""
    per_layer_numbers = batch * tokens * (17 * width + 2.5 * heads * tokens)  # the paper's bytes / 2 bytes
    return int(layers * per_layer_numbers * bytes_per_number)


def available_bytes(device: Any) -> int | None:
    """Memory a step may use: free GPU memory on CUDA, MemAvailable on Linux; None if unknown."""
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return available_memory()


def available_memory() -> int | None:
    """Host memory free for new allocations: MemAvailable on Linux (what the kernel can give without
    swapping), else the free pages; None if unknown. Image datasets are checked against it before
    they are loaded (seqrl.data.frames.check_fits)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
