"""Checkpoint files: everything needed to resume bit-identically or to act, in one atomic file.

This module reads and writes the file and knows no family; `seqrl.loading.load_run` turns a
checkpoint into a model by looking its family up by its config's tag.

A checkpoint holds the model, optimizer, scheduler and RNG states, the step, the config (whose
`family` tag is the run's family), the DataSpec and the family's fitted artefacts (the DT's
action tokenizer under "tokenizer", the TT's discretizer under "artefacts"). Checkpoints of
older versions also carry the tag beside the config, and those written before families existed
none: they are a Decision Transformer's. It is written to a temporary file and renamed into place, so
a run killed mid-write keeps its previous checkpoint. Files load with `weights_only=True`:
only tensors and plain Python values, never arbitrary pickled objects.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from seqrl.errors import CheckpointError
from seqrl.runs import CHECKPOINT_DIR, LATEST_CHECKPOINT

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "step", "config", "spec", "model")


def checkpoint_path(run_dir: Path | str) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LATEST_CHECKPOINT


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format_version": FORMAT_VERSION, **payload}, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = checkpoint_path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} is corrupt or not a seqrl checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED_KEYS):
        raise CheckpointError(f"checkpoint {path} is not a seqrl checkpoint (missing keys)")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format {payload['format_version']}, expected {FORMAT_VERSION}")
    return payload
