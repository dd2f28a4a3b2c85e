"""The trunk-source mechanism is not DT-specific: a Trajectory Transformer's trunk takes another
run's trunk through `seqrl.lm_init.sources.initialise`, and a GELU mismatch is refused rather than run
approximately (a TT run's --init flags: tests/families/tt/test_lm_init.py). Mechanics tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from seqrl.families.dt.config import TrainConfig
from seqrl.errors import ConfigError
from seqrl.families import get_family
from seqrl.families.tt.config import TTConfig
from seqrl.lm_init.sources import initialise
from seqrl.train import train
from tests.helpers.dt import make_dataset

from tests.helpers.lm import DT_TINY


def _tt(data, **kw):
    cfg = TTConfig(dataset="tiny", embed_dim=16, n_layers=1, n_heads=1, num_bins=8, sequence_length=2, **kw)
    family = get_family("tt")
    spec = family.make_spec(cfg, data)
    return family.build_model(cfg, spec, family.fit_artefacts(cfg, data, spec))


def test_tt_takes_a_dt_runs_trunk(tmp_path):
    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    dt = train(TrainConfig(dataset="tiny", embed_dim=16, n_layers=1, n_heads=1, run_dir=str(tmp_path / "dt"), **DT_TINY),
               dataset=data)
    tt = _tt(data)
    position_before = tt.embed_position.weight.detach().clone()
    summary = initialise(tt, SimpleNamespace(init=f"run:{tmp_path / 'dt'}", init_positions="timestep"))
    assert summary["kind"] == "run"
    for key, value in dt.model.trunk.state_dict().items():
        assert torch.equal(tt.trunk.state_dict()[key], value), key
    assert torch.equal(tt.embed_position.weight, position_before)  # a run: source has no LM position table


def test_a_gelu_mismatch_is_refused(tiny_gpt2):
    tt = _tt(make_dataset(obs_dim=3, act_dim=2, episodes=4))
    tt_cfg = SimpleNamespace(init=f"gpt2:{tiny_gpt2}", init_positions="timestep")
    with pytest.raises(ConfigError, match="exact GELU but gpt2:.* was trained with gelu_tanh"):
        initialise(tt, tt_cfg)


def test_multitask_dt_refuses_lm_flags_it_does_not_wire():
    from seqrl.families.multitask import MultiTaskConfig

    with pytest.raises(ConfigError, match="--freeze-trunk, --align-weight: language-model initialisation is not wired"):
        MultiTaskConfig(dataset="a+b", model="mt-tokenized-spread", spread_head="shared", max_action_features=4,
                        freeze_trunk=True, align_weight=0.1, init="gpt2:/x")


def test_init_from_a_run_without_a_trunk_or_with_a_corrupt_config_is_refused_by_name(tmp_path):
    from seqrl.families.bc import BCConfig
    from seqrl.lm_init.sources import source_shape

    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    train(BCConfig(dataset="tiny", steps=2, batch_size=4, warmup_steps=0, progress=False, run_dir=str(tmp_path / "bc")),
          dataset=data)
    with pytest.raises(ConfigError, match=r"that run \(family bc\) has no transformer trunk to start from"):
        source_shape(f"run:{tmp_path / 'bc'}")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"embed_dim": 1')
    with pytest.raises(ConfigError, match=r"config.json is corrupt"):
        source_shape(f"run:{tmp_path / 'broken'}")


def test_a_corrupt_or_truncated_gpt2_directory_is_refused_by_name(tiny_gpt2, tmp_path):
    import shutil

    from seqrl.lm_init.sources import load_gpt2

    broken = tmp_path / "gpt2-config"
    shutil.copytree(tiny_gpt2, broken)
    (broken / "config.json").write_text('{"n_embd": ')
    with pytest.raises(ConfigError, match="its config.json is corrupt"):
        load_gpt2(str(broken))
    truncated = tmp_path / "gpt2-weights"
    shutil.copytree(tiny_gpt2, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ConfigError, match="transformers could not load"):
        load_gpt2(str(truncated))


def test_heads_given_with_a_pretrained_trunk_are_the_trunks_not_an_embed_dim_error(tiny_gpt2):
    """--init sets width and heads to the trunk's own: the user's --n-heads 3 beside the default
    --embed-dim 128 is not checked against a width that will not be used."""
    from seqrl.lm_init.sources import resolve_init, source_shape

    shape = source_shape(f"gpt2:{tiny_gpt2}")
    for cfg in (TrainConfig(dataset="x", init=f"gpt2:{tiny_gpt2}", n_heads=3),
                TTConfig(dataset="x", init=f"gpt2:{tiny_gpt2}", n_heads=3)):
        resolved = resolve_init(cfg)
        assert (resolved.embed_dim, resolved.n_heads) == (shape["embed_dim"], shape["n_heads"])
    with pytest.raises(ConfigError, match=r"--embed-dim \(128\) must be divisible by --n-heads \(3\)"):
        TrainConfig(dataset="x", n_heads=3)  # from scratch the user's values are the model's


def test_resuming_an_lm_initialised_run_with_its_own_command_warns_about_nothing(tiny_gpt2, tmp_path, capsys):
    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    cfg = TrainConfig(dataset="tiny", init=f"gpt2:{tiny_gpt2}", activation="gelu_tanh", run_dir=str(tmp_path / "dt"),
                      **{**DT_TINY, "steps": 2})
    train(cfg, dataset=data)
    capsys.readouterr()
    import dataclasses

    resumed = train(dataclasses.replace(cfg, steps=3, resume=True), dataset=data)  # the same command, more steps
    assert resumed.step == 3
    assert "resuming with the checkpoint's values" not in capsys.readouterr().err
