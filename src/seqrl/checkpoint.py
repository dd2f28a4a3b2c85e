"""Checkpoints: everything needed to resume bit-identically or to act, in one atomic file.

A checkpoint holds the model family's tag, the model, optimizer, scheduler and RNG states, the
step, the config, the DataSpec and the family's fitted artefacts (the DT's action tokenizer under
"tokenizer", the TT's discretizer under "artefacts"). A checkpoint without a family tag was
written before families existed and is a Decision Transformer's. It is written to a temporary file and renamed into place, so
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

from seqrl.config import RunConfig
from seqrl.data.tokenizer import ActionTokenizer
from seqrl.errors import CheckpointError
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


def build_model(cfg: RunConfig, spec: DataSpec, artefacts: Any) -> torch.nn.Module:
    """The model of `cfg`'s family, untrained (artefacts: the DT's ActionTokenizer or None, the TT's discretizer)."""
    from seqrl.families import family_of

    return family_of(cfg).build_model(cfg, spec, artefacts)


@dataclass
class LoadedRun:
    model: torch.nn.Module
    config: RunConfig
    spec: DataSpec
    artefacts: Any  # the DT's action tokenizer (or None), the TT's discretizer
    step: int
    payload: dict[str, Any]
    family: str = "dt"

    @property
    def tokenizer(self) -> ActionTokenizer | None:
        """The DT's name for its artefact."""
        return self.artefacts


def load_run(run_dir: Path | str, device: str | torch.device = "cpu") -> LoadedRun:
    """The trained model of a run directory (or a checkpoint file), ready to act, in eval mode."""
    from seqrl.families import get_family

    payload = load_checkpoint(run_dir)
    family = get_family(payload.get("family"))
    cfg = family.config_class.from_dict(payload["config"])
    spec = family.spec_from_dict(payload["spec"])
    artefacts = family.artefacts_from_payload(payload.get(family.artefacts_key))
    model = family.build_model(cfg, spec, artefacts)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint in {run_dir} does not match its own config: {exc}") from None
    model.to(device).eval()
    return LoadedRun(model, cfg, spec, artefacts, int(payload["step"]), payload, family.tag)
