"""Issue 12: `seqrl finetune --rebuild ...` keeps the shape-compatible branches of the source.

With an environment-agnostic spread codec the action embedding, action head and tokenizer are
kept across tasks with other observation and action sizes; only the state embedding (and the
branches named by --rebuild) is built fresh.
"""

from __future__ import annotations

import json

import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.loading import load_run
from seqrl.cli import main
from seqrl.data.sources import save_dataset
from seqrl.errors import CheckpointError, ConfigError
from seqrl.train import train
from seqrl.transfer import finetune

from tests.helpers.dt import make_dataset, tiny_config

AGNOSTIC = dict(spread_head="shared", max_action_features=8, binning="uniform")
TARGET = dict(obs_dim=7, act_dim=2, name="other", seed=1)
WIDER = dict(obs_dim=5, act_dim=6, name="wider", seed=2)


def source_run(tmp_path, name="source", **overrides):
    cfg = tiny_config(tmp_path, run_dir=str(tmp_path / name), steps=6, **{"model": "tokenized-spread", **overrides})
    return train(cfg, dataset=make_dataset(obs_dim=4, act_dim=3))


def with_prefix(state: dict, *prefixes: str) -> dict:
    return {k: v for k, v in state.items() if k.startswith(prefixes)}


def params_of(model: torch.nn.Module, *prefixes: str) -> dict:
    return {k: v.detach().clone() for k, v in model.named_parameters() if not prefixes or k.startswith(prefixes)}


def equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and len(a) > 0 and all(torch.equal(a[k], b[k]) for k in a)


KEPT = ("trunk.", "embed_ln.", "embed_return.", "embed_timestep.", "codec.embedding.", "codec.head.weight",
        "codec.head.bias")


@pytest.mark.parametrize("model, target", [("tokenized-spread", TARGET), ("tokenized-spread", WIDER),
                                           ("continuous-spread", WIDER)])
def test_rebuild_state_keeps_every_other_layer_bit_identical(tmp_path, model, target):
    source = source_run(tmp_path, model=model, **AGNOSTIC)
    result = finetune(source.run_dir, target["name"], train_mode="embeddings", rebuild=["state"], steps=6,
                      run_dir=tmp_path / "ft", data=make_dataset(**target), progress=False)
    before = load_checkpoint(source.run_dir)["model"]
    after = load_checkpoint(result.run_dir)["model"]
    kept = [k for k in params_of(source.model) if k.startswith(KEPT)]
    assert any(k.startswith("codec.embedding.") for k in kept) and "codec.head.weight" in kept
    for key in kept:  # every kept parameter: bit-identical after the fine-tune, and frozen
        assert torch.equal(before[key], after[key]), key
        assert not dict(result.model.named_parameters())[key].requires_grad, key
    # The state embedding was built for the new task and trained.
    assert after["embed_state.weight"].shape == (32, target["obs_dim"])
    assert all(p.requires_grad for p in result.model.embed_state.parameters())
    trainable = {k for k, p in result.model.named_parameters() if p.requires_grad}
    assert trainable == {"embed_state.weight", "embed_state.bias"}
    # The codec's buffers are the new task's: its action bounds and (kept) tokenizer's tables.
    assert result.model.codec.tokens_per_step == target["act_dim"]
    assert result.model.codec.head.center.shape == (target["act_dim"],)
    if model == "tokenized-spread":
        tok = load_run(result.run_dir).tokenizer
        assert tok.action_dim == target["act_dim"] and tok.strategy == "uniform"
        assert all((e == load_run(source.run_dir).tokenizer.edges[0]).all() for e in tok.edges)
    meta = json.loads((result.run_dir / "metadata.json").read_text())["finetune"]
    assert meta["rebuilt"] == ["state"]
    assert set(meta["transferred"]) == {"embed_ln", "trunk", "embed_return", "embed_timestep", "codec"}
    # The run acts in its own action space, and loads back as it was saved.
    run = load_run(result.run_dir)
    B, T = 2, 3
    action = run.model.act(torch.zeros(B, T, 1), torch.zeros(B, T, target["obs_dim"]),
                           torch.zeros(B, T, target["act_dim"]), torch.zeros(B, T, dtype=torch.long))
    assert action.shape == (B, target["act_dim"]) and action.abs().max() <= 1


def test_kept_tokenizer_is_the_sources_bins_repeated_per_new_feature(tmp_path):
    source = source_run(tmp_path, **AGNOSTIC)
    result = finetune(source.run_dir, "wider", rebuild=["state"], steps=2, run_dir=tmp_path / "ft",
                      data=make_dataset(**WIDER), progress=False)
    src, kept = load_run(source.run_dir).tokenizer, load_run(result.run_dir).tokenizer
    assert kept.action_dim == 6
    for edges in kept.edges:
        assert (edges == src.edges[0]).all()
    # Same act_dim: the source's tokenizer itself (including its per-feature values).
    same = finetune(source.run_dir, "same", rebuild=["state"], steps=2, run_dir=tmp_path / "same",
                    data=make_dataset(obs_dim=9, act_dim=3, seed=5), progress=False)
    assert load_run(same.run_dir).tokenizer.state_dict() == src.state_dict()


def test_rebuild_state_and_action_keeps_return_and_timestep_only(tmp_path):
    source = source_run(tmp_path, **AGNOSTIC)
    result = finetune(source.run_dir, "other", rebuild=["state", "action"], steps=4, run_dir=tmp_path / "ft",
                      data=make_dataset(**TARGET), progress=False, model="continuous")
    before, after = load_checkpoint(source.run_dir)["model"], load_checkpoint(result.run_dir)["model"]
    assert equal(with_prefix(before, "embed_return.", "embed_timestep."), with_prefix(after, "embed_return.", "embed_timestep."))
    assert "codec.embedding.linear.weight" in after  # a fresh continuous codec for the new task
    trainable = {k for k, p in result.model.named_parameters() if p.requires_grad}
    assert trainable == {"embed_state.weight", "embed_state.bias", "codec.embedding.linear.weight",
                         "codec.embedding.linear.bias", "codec.head.weight", "codec.head.bias"}


def test_train_all_starts_from_the_kept_layers_and_moves_them(tmp_path):
    source = source_run(tmp_path, **AGNOSTIC)
    result = finetune(source.run_dir, "other", train_mode="all", rebuild=["state"], steps=4, run_dir=tmp_path / "ft",
                      data=make_dataset(**TARGET), progress=False)
    before, after = load_checkpoint(source.run_dir)["model"], load_checkpoint(result.run_dir)["model"]
    for key in ("codec.head.weight", "codec.embedding.token.weight", "embed_return.weight"):
        assert not torch.equal(before[key], after[key]), key
        assert (before[key] - after[key]).abs().max() < 0.05, key  # copied, then trained a little
    assert all(p.requires_grad for p in result.model.parameters())


def test_a_shape_incompatible_keep_is_a_clear_error(tmp_path):
    per_feature = source_run(tmp_path, "per-feature", binning="uniform")  # the original head and vocabulary
    with pytest.raises(CheckpointError, match=r"action branch does not fit.*codec\.head\.weight is \(3, 32\) in the "
                                              r"source but \(2, 32\).*--spread-head shared"):
        finetune(per_feature.run_dir, "other", rebuild=["state"], steps=2, run_dir=tmp_path / "ft",
                 data=make_dataset(**TARGET), progress=False)
    quantile = source_run(tmp_path, "quantile", spread_head="shared", max_action_features=8)
    with pytest.raises(CheckpointError, match="per-feature bins.*--binning uniform"):
        finetune(quantile.run_dir, "other", rebuild=["state"], steps=2, run_dir=tmp_path / "ft2",
                 data=make_dataset(**TARGET), progress=False)
    small = source_run(tmp_path, "small", spread_head="shared", max_action_features=3, binning="uniform")
    with pytest.raises(ConfigError, match="--max-action-features 3 is below"):
        finetune(small.run_dir, "wider", rebuild=["state"], steps=2, run_dir=tmp_path / "ft3",
                 data=make_dataset(**WIDER), progress=False)


def test_bad_rebuild_values_and_conflicting_overrides_are_config_errors(tmp_path):
    source = source_run(tmp_path, **AGNOSTIC)
    data = make_dataset(**TARGET)
    with pytest.raises(ConfigError, match="--rebuild: unknown branch 'heads'"):
        finetune(source.run_dir, "other", rebuild=["state", "heads"], steps=2, data=data)
    with pytest.raises(ConfigError, match="--rebuild must include state"):
        finetune(source.run_dir, "other", rebuild=["action"], steps=2, data=data)
    with pytest.raises(ConfigError, match="--model continuous differs.*add action to --rebuild"):
        finetune(source.run_dir, "other", rebuild=["state"], steps=2, data=data, model="continuous")
    finetune(source.run_dir, "other", rebuild=["state"], steps=2, run_dir=tmp_path / "ft", data=data, progress=False)
    with pytest.raises(ConfigError, match="cannot resume it with --rebuild state action"):
        finetune(source.run_dir, "other", rebuild=["state", "action"], steps=4, run_dir=tmp_path / "ft", data=data,
                 resume=True, progress=False)


def test_finetune_command_rebuild_flag(tmp_path, capsys):
    source = source_run(tmp_path, **AGNOSTIC)
    save_dataset(make_dataset(**TARGET), "seqrl/other-v0", None)
    main(["finetune", "--from", str(source.run_dir), "--dataset", "other", "--rebuild", "state", "--steps", "2",
          "--run-dir", str(tmp_path / "cli"), "--no-progress"])
    assert "fine-tuned from" in capsys.readouterr().out
    meta = json.loads((tmp_path / "cli" / "metadata.json").read_text())["finetune"]
    assert meta["rebuilt"] == ["state"]
    with pytest.raises(SystemExit):
        main(["finetune", "--from", str(source.run_dir), "--dataset", "other", "--rebuild", "heads"])
