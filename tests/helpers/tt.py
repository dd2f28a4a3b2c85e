"""Tiny Trajectory Transformers and datasets for the TT tests (real training steps, CPU-sized)."""

from __future__ import annotations

import numpy as np
import torch

from seqrl.families.tt.config import TTConfig
from seqrl.families.tt.data import fit_discretizer, run_transitions
from seqrl.families.tt.model import TrajectoryTransformer
from seqrl.data.tokenizer import TorchActionTokenizer
from seqrl.models.spec import DataSpec

from tests.helpers.dt import make_dataset


def tiny_tt_config(tmp_path=None, **overrides) -> TTConfig:
    base = dict(
        dataset="tiny", num_bins=8, sequence_length=4, embed_dim=32, n_layers=2, n_heads=2, dropout=0.0,
        steps=10, batch_size=16, warmup_steps=2, log_every=2, checkpoint_every=5, progress=False,
        precision="fp32", device="cpu", run_dir=str(tmp_path / "tt") if tmp_path is not None else None,
    )
    base.update(overrides)
    return TTConfig(**base)


def tiny_tt(seed: int = 0, obs_dim: int = 3, act_dim: int = 2, **overrides) -> TrajectoryTransformer:
    """An untrained tiny TT (random weights from `seed`) fitted to a tiny dataset, in eval mode."""
    cfg = tiny_tt_config(**overrides)
    data = make_dataset(obs_dim=obs_dim, act_dim=act_dim, episodes=6)
    spec = DataSpec.from_dataset(data, rtg_scale=1.0, targets=())
    discretizer = fit_discretizer(run_transitions(data, cfg), cfg.num_bins, cfg.binning)
    torch.manual_seed(seed)
    return TrajectoryTransformer(cfg, spec, TorchActionTokenizer(discretizer)).eval()


def random_prefix(model: TrajectoryTransformer, n: int, transitions: int, seed: int = 0) -> torch.Tensor:
    """(n, transitions*T + obs_dim) valid token ids: whole transitions, then an observation."""
    T = model.transition_dim
    length = transitions * T + model.observation_dim
    dims = torch.arange(length) % T
    g = torch.Generator().manual_seed(seed)
    local = torch.randint(0, 10_000, (n, length), generator=g) % model.discretizer.bins_per_feature[dims]
    return local + model.discretizer.offsets[dims]


def to_array(x) -> np.ndarray:
    return x.detach().cpu().numpy()
