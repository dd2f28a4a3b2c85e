"""Checkpoints: everything needed to resume bit-identically or to act, in one atomic file.

A checkpoint holds the model, optimizer, scheduler and RNG states, the step, the config, the
DataSpec and the action tokenizer. It is written to a temporary file and renamed into place, so
a run killed mid-write keeps its previous checkpoint. Files load with `weights_only=True`:
only tensors and plain Python values, never arbitrary pickled objects.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqrl.config import TrainConfig
from seqrl.data.tokenizer import ActionTokenizer, TorchActionTokenizer
from seqrl.errors import CheckpointError
from seqrl.models.dt import DecisionTransformer
from seqrl.models.spec import DataSpec
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


# Tokenizer state as tensors, so it survives `weights_only=True` loading.
def tokenizer_to_payload(tokenizer: ActionTokenizer | None) -> dict[str, Any] | None:
    if tokenizer is None:
        return None
    return {k: torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v for k, v in tokenizer.state_dict().items()}


def tokenizer_from_payload(state: dict[str, Any] | None) -> ActionTokenizer | None:
    if state is None:
        return None
    return ActionTokenizer.from_state_dict({k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()})


def build_model(cfg: TrainConfig, spec: DataSpec, tokenizer: ActionTokenizer | None) -> DecisionTransformer:
    torch_tokenizer = TorchActionTokenizer(tokenizer) if tokenizer is not None else None
    return DecisionTransformer(cfg, spec, torch_tokenizer)


@dataclass
class LoadedRun:
    model: DecisionTransformer
    config: TrainConfig
    spec: DataSpec
    tokenizer: ActionTokenizer | None
    step: int
    payload: dict[str, Any]


def load_run(run_dir: Path | str, device: str | torch.device = "cpu") -> LoadedRun:
    """The trained model of a run directory (or a checkpoint file), ready to act, in eval mode."""
    payload = load_checkpoint(run_dir)
    cfg = TrainConfig.from_dict(payload["config"])
    spec = DataSpec.from_dict(payload["spec"])
    tokenizer = tokenizer_from_payload(payload.get("tokenizer"))
    model = build_model(cfg, spec, tokenizer)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint in {run_dir} does not match its own config: {exc}") from None
    model.to(device).eval()
    return LoadedRun(model, cfg, spec, tokenizer, int(payload["step"]), payload)
