"""The bf16 autocast path on CPU, and what `--precision auto` picks.

Every other test forces fp32, but `auto` (the default) turns bf16 autocast on for GPUs and for
CPUs with native bf16 matmuls. Here a tiny model trains in bf16 on CPU (emulated where the CPU
has no bf16 instructions, hence tiny), checkpoints, resumes bit-identically, and `auto` gives
exactly the run of the precision `bf16_supported` says the hardware has.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.data.sampler import ContextSampler
from seqrl.train import autocast_context, bf16_supported, train

from tests.helpers.dt import replace, tiny_config
from tests.helpers.interrupt import killed_while_sampling

CPU = torch.device("cpu")


def tiny(tmp_path, name, **overrides):
    base = dict(steps=6, checkpoint_every=3, log_every=1, embed_dim=16, n_layers=1, n_heads=1, batch_size=4)
    return tiny_config(tmp_path, **{**base, **overrides, "run_dir": str(tmp_path / name)})


def losses(run_dir: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model", ["continuous", "tokenized-spread"])
def test_bf16_trains_on_cpu_and_differs_from_fp32(tmp_path, tiny_dataset, model):
    bf16 = train(tiny(tmp_path, "bf16", precision="bf16", model=model), dataset=tiny_dataset)
    fp32 = train(tiny(tmp_path, "fp32", precision="fp32", model=model), dataset=tiny_dataset)
    bf16_losses, fp32_losses = losses(bf16.run_dir), losses(fp32.run_dir)
    assert len(bf16_losses) == 6 and all(np.isfinite(bf16_losses))
    # Autocast really ran: bf16 matmuls round differently from fp32 ones ...
    assert bf16_losses != fp32_losses
    # ... but it is the same training: the losses agree to bf16's precision.
    np.testing.assert_allclose(bf16_losses, fp32_losses, rtol=0.05)
    # Weights stay float32 (autocast casts per op); the saved config says bf16.
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    assert json.loads((bf16.run_dir / "config.json").read_text())["precision"] == "bf16"


def test_bf16_resume_after_interruption_is_bit_identical(tmp_path, tiny_dataset, monkeypatch):
    cfg = tiny(tmp_path, "straight", precision="bf16", model="tokenized", steps=8, checkpoint_every=4)
    straight = train(cfg, dataset=tiny_dataset)

    interrupted = replace(cfg, run_dir=str(tmp_path / "resumed"))
    with killed_while_sampling(monkeypatch, ContextSampler, 6):  # during step 6, after the checkpoint at step 4
        train(interrupted, dataset=tiny_dataset)
    assert load_checkpoint(tmp_path / "resumed")["step"] == 4
    # Resuming takes the precision from the checkpoint, not from the new command line.
    resumed = train(replace(interrupted, resume=True, precision="fp32"), dataset=tiny_dataset)
    assert resumed.config.precision == "bf16"
    a, b = load_checkpoint(straight.run_dir), load_checkpoint(resumed.run_dir)
    assert a["step"] == b["step"] == 8
    assert states_equal(a["model"], b["model"])
    assert losses(straight.run_dir) == losses(resumed.run_dir)


def test_auto_gives_exactly_the_run_of_the_precision_the_hardware_supports(tmp_path, tiny_dataset):
    auto = train(tiny(tmp_path, "auto", precision="auto"), dataset=tiny_dataset)
    expected = "bf16" if bf16_supported(CPU) else "fp32"
    same = train(tiny(tmp_path, "same", precision=expected), dataset=tiny_dataset)
    assert losses(auto.run_dir) == losses(same.run_dir)
    assert states_equal(auto.model.state_dict(), same.model.state_dict())


def _cpu_flags() -> set[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def test_bf16_supported_on_cpu_matches_the_processors_flags():
    """Native bf16 matmuls on x86 need AVX512-BF16 or AMX; /proc/cpuinfo says which this CPU has."""
    flags = _cpu_flags()
    if flags is None or not sys.platform.startswith("linux") or "avx2" not in flags:
        pytest.skip("needs an x86 Linux /proc/cpuinfo")
    native = bool({"avx512_bf16", "amx_bf16", "amx_tile"} & flags)
    assert bf16_supported(CPU) == native


@pytest.mark.parametrize("supported", [True, False])
def test_autocast_context_follows_bf16_supported_for_auto(monkeypatch, supported):
    # Patch the function where autocast_context looks it up (wherever that module now is).
    monkeypatch.setattr(sys.modules[autocast_context.__module__], "bf16_supported", lambda device: supported)
    auto = autocast_context("auto", CPU)
    if supported:
        assert isinstance(auto, torch.autocast) and auto.fast_dtype == torch.bfloat16 and auto.device == "cpu"
    else:
        assert isinstance(auto, nullcontext)
    # Explicit choices ignore the hardware.
    forced = autocast_context("bf16", CPU)
    assert isinstance(forced, torch.autocast) and forced.fast_dtype == torch.bfloat16
    assert isinstance(autocast_context("fp32", CPU), nullcontext)


def test_bf16_autocast_runs_matmuls_in_bf16_on_cpu():
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with autocast_context("bf16", CPU):
        assert (a @ b).dtype == torch.bfloat16
    with autocast_context("fp32", CPU):
        assert (a @ b).dtype == torch.float32
