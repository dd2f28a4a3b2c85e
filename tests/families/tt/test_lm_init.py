"""A Trajectory Transformer run can start its trunk from a local GPT-2 (Reid et al.'s
initialisation for the TT): the flags reach the TT's config, the trunk takes GPT-2's width,
depth, heads and tanh GELU, and the weights and position table are GPT-2's. Mechanics tests:
whether it helps is an experiment."""

from __future__ import annotations

import json

import pytest
import torch

from seqrl.errors import ConfigError
from seqrl.lm_init.sources import load_source

from tests.helpers.lm import save_tiny_gpt2
from tests.helpers.dt import make_dataset
from tests.helpers.tt import tiny_tt_config

pytest.importorskip("transformers")


def test_a_tt_run_starts_from_a_local_gpt2_and_a_frozen_trunk_stays_gpt2s(tmp_path):
    gpt2 = save_tiny_gpt2(tmp_path / "gpt2")
    from seqrl.train import train

    data = make_dataset(obs_dim=3, act_dim=2)
    result = train(tiny_tt_config(tmp_path, init=f"gpt2:{gpt2}", freeze_trunk=True, steps=3), dataset=data)
    source = load_source(f"gpt2:{gpt2}")
    cfg = result.config
    assert (cfg.embed_dim, cfg.n_layers, cfg.n_heads, cfg.activation) == (source.dim, source.n_layers, source.n_heads,
                                                                          "gelu_tanh")
    trunk = result.model.trunk.state_dict()
    for key, value in source.trunk.items():
        assert torch.equal(trunk[key], value), key  # frozen: still GPT-2's after training
    rows = min(source.positions.shape[0], result.model.embed_position.weight.shape[0])
    # The position table is not frozen: it started as GPT-2's and moved by 3 AdamW steps (each < lr).
    moved = (result.model.embed_position.weight[:rows] - source.positions[:rows]).abs().max()
    assert moved <= 3 * cfg.learning_rate * 1.01 and source.positions[:rows].std() > 0.1
    meta = json.loads((result.run_dir / "metadata.json").read_text())
    assert meta["init"]["kind"] == "gpt2" and meta["trainable_parameters"] < meta["parameters"]


def test_tt_refuses_the_dt_only_objectives_by_name():
    with pytest.raises(ConfigError, match="Decision Transformer only"):
        tiny_tt_config(align_weight=0.1)
