"""A training process killed mid-run, for the resume tests: the batch sampler raises
KeyboardInterrupt on a chosen call, after some checkpoints are on disk and before others."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest


@contextmanager
def killed_while_sampling(monkeypatch: pytest.MonkeyPatch, sampler: type, call: int) -> Iterator[None]:
    """Within the block, `sampler.sample`'s `call`-th call raises KeyboardInterrupt (the process
    dies while drawing that step's batch); the block expects the interrupt, and the sampler is
    itself again after it."""
    original, calls = sampler.sample, {"n": 0}

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sampler, "sample", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(sampler, "sample", original)
