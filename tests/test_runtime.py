"""seqrl.runtime: device names and the precision rule, with clear errors for bad names."""

from __future__ import annotations

import pytest
import torch

from seqrl.errors import ConfigError
from seqrl.runtime import autocast_context, bf16_supported, resolve_device, uses_bf16


def test_auto_is_cuda_when_available_else_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_device_names_are_config_errors_naming_them():
    with pytest.raises(ConfigError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="'cuda:1' requested but CUDA is not available"):
            resolve_device("cuda:1")


def test_precision_rule():
    cpu = torch.device("cpu")
    assert uses_bf16("bf16", cpu) and not uses_bf16("fp32", cpu)
    assert uses_bf16("auto", cpu) == bf16_supported(cpu)
    with autocast_context("bf16", cpu):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    with autocast_context("fp32", cpu):
        assert not torch.is_autocast_enabled("cpu")
