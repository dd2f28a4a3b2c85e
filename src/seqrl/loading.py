"""A run's trained model, from its checkpoint: the family is looked up by the checkpoint's tag.

`load_run` is what evaluation, prediction, the demo and scripts use to get a model ready to
act; `build_model` builds a family's untrained model (the training loop, benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqrl.checkpoint import checkpoint_path, load_checkpoint
from seqrl.config import RunConfig
from seqrl.errors import CheckpointError
from seqrl.families import Family, family_of, get_family
from seqrl.model_files import MODEL_FILE, read_model_file
from seqrl.models.spec import DataSpec


def build_model(cfg: RunConfig, spec: DataSpec, artefacts: Any) -> torch.nn.Module:
    """The model of `cfg`'s family, untrained (artefacts: the DT's ActionTokenizer or None, the TT's discretizer)."""
    return family_of(cfg).build_model(cfg, spec, artefacts)


@dataclass
class LoadedRun:
    model: torch.nn.Module
    config: RunConfig
    spec: DataSpec
    artefacts: Any  # the DT's action tokenizer (or None), the TT's discretizer
    step: int
    payload: dict[str, Any]

    @property
    def family(self) -> str:
        """The run's family tag: its config's (the one source of a run's family)."""
        return self.config.family

    @property
    def tokenizer(self) -> Any:
        """The DT's name for its artefact."""
        return self.artefacts


def checkpoint_family(payload: dict[str, Any]) -> Family:
    """The family of a checkpoint: its config's tag. Checkpoints written before configs carried
    one have the payload's tag, and those before families existed neither: they are DT runs."""
    return get_family(payload["config"].get("family", payload.get("family")))


def load_run(run_dir: Path | str, device: str | torch.device = "cpu") -> LoadedRun:
    """The trained model of a run directory (or a checkpoint file, or a model.safetensors),
    ready to act, in eval mode.

    A training run's checkpoint is what it resumes from, so it is read when there is one; a
    directory holding only `model.safetensors` (a run shared without its checkpoints) is read
    from that, its weights checked against the hash they were written with (seqrl.model_files).
    """
    path = Path(run_dir)
    if path.suffix == ".safetensors" or (path.is_dir() and not checkpoint_path(path).exists()
                                        and (path / MODEL_FILE).exists()):
        payload = read_model_file(path)
    else:
        payload = load_checkpoint(run_dir)
    family = checkpoint_family(payload)
    cfg = family.config_class.from_dict(payload["config"])
    spec = family.spec_from_dict(payload["spec"])
    artefacts = family.artefacts_from_payload(payload.get(family.artefacts_key))
    model = family.build_model(cfg, spec, artefacts)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint in {run_dir} does not match its own config: {exc}") from None
    model.to(device).eval()
    return LoadedRun(model, cfg, spec, artefacts, int(payload["step"]), payload)
