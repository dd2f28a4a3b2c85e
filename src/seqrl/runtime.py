"""Where and how tensors run: device selection and bf16 autocast.

Training and evaluation both import this module (and never each other), so neither the loop nor
the rollout code pulls the other in.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from seqrl.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when available, else the CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {name!r} ({exc}); use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 matmuls run natively here (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # elsewhere bf16 is emulated on the CPU and hundreds of times slower than fp32
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def uses_bf16(precision: str, device: torch.device) -> bool:
    """What `--precision` means on `device`: bf16 forced, fp32 forced, or bf16 where native (auto)."""
    return precision == "bf16" or (precision == "auto" and bf16_supported(device))


def autocast_context(precision: str, device: torch.device):
    """bf16 autocast when `uses_bf16`, else a no-op context."""
    if not uses_bf16(precision, device):
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
