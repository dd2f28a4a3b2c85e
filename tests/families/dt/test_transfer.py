"""Fine-tuning a pretrained trunk on a task with other observation and action sizes."""

from __future__ import annotations

import json

import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.loading import load_run
from seqrl.cli import main
from seqrl.data.sampler import ContextSampler
from seqrl.data.sources import save_dataset
from seqrl.errors import CheckpointError, ConfigError
from seqrl.train import train
from seqrl.transfer import finetune

from tests.helpers.dt import make_dataset, tiny_config
from tests.helpers.interrupt import killed_while_sampling


def prefixed(state: dict, prefixes=("trunk.", "embed_ln.")) -> dict:
    return {k: v for k, v in state.items() if k.startswith(prefixes)}


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def source(tmp_path):
    """A pretrained run on a 4-obs, 3-action task."""
    return train(tiny_config(tmp_path, run_dir=str(tmp_path / "source"), steps=6), dataset=make_dataset(obs_dim=4, act_dim=3))


TARGET = dict(obs_dim=7, act_dim=2, name="other", seed=1)


@pytest.mark.parametrize("model", ["continuous", "tokenized-spread"])
def test_embeddings_mode_keeps_the_trunk_bit_identical(tmp_path, source, model):
    result = finetune(source.run_dir, "other", train_mode="embeddings", steps=6, run_dir=tmp_path / "ft",
                      data=make_dataset(**TARGET), model=model, progress=False)
    pretrained = prefixed(load_checkpoint(source.run_dir)["model"])
    tuned = load_checkpoint(result.run_dir)["model"]
    assert states_equal(pretrained, prefixed(tuned))
    assert all(not p.requires_grad for p in result.model.trunk.parameters())
    # The fresh task layers have the new task's shapes, and training moved them.
    assert tuned["embed_state.weight"].shape == (32, 7)
    assert result.spec.obs_dim == 7 and result.spec.act_dim == 2
    init = finetune(source.run_dir, "other", train_mode="embeddings", steps=1, run_dir=tmp_path / "ft1",
                    data=make_dataset(**TARGET), model=model, progress=False, learning_rate=1e-12)
    moved = load_checkpoint(init.run_dir)["model"]
    assert not torch.equal(moved["embed_state.weight"], tuned["embed_state.weight"])
    assert not torch.equal(moved["embed_return.weight"], tuned["embed_return.weight"])
    meta = json.loads((result.run_dir / "metadata.json").read_text())
    assert meta["finetune"]["source_run"] == str(source.run_dir.resolve())
    assert meta["finetune"]["train"] == "embeddings" and meta["finetune"]["source_step"] == 6
    assert meta["trainable_parameters"] < meta["parameters"]


def test_all_mode_starts_from_the_trunk_and_changes_it(tmp_path, source):
    result = finetune(source.run_dir, "other", train_mode="all", steps=6, run_dir=tmp_path / "ft",
                      data=make_dataset(**TARGET), progress=False)
    pretrained = prefixed(load_checkpoint(source.run_dir)["model"])
    tuned = prefixed(load_checkpoint(result.run_dir)["model"])
    changed = [k for k in pretrained if not torch.equal(pretrained[k], tuned[k])]
    assert len(changed) == len(pretrained)  # every trunk tensor moved
    # ... but only a little from where it started: it was copied, not re-initialised.
    for key in pretrained:
        assert (pretrained[key] - tuned[key]).abs().max() < 0.05, key
    meta = json.loads((result.run_dir / "metadata.json").read_text())
    assert meta["trainable_parameters"] == meta["parameters"]


def test_resumed_finetune_is_bit_identical(tmp_path, source, monkeypatch):
    data = make_dataset(**TARGET)
    kw = dict(train_mode="embeddings", steps=8, data=data, progress=False, checkpoint_every=4)
    straight = finetune(source.run_dir, "other", run_dir=tmp_path / "straight", **kw)

    with killed_while_sampling(monkeypatch, ContextSampler, 6):
        finetune(source.run_dir, "other", run_dir=tmp_path / "resumed", **kw)
    assert load_checkpoint(tmp_path / "resumed")["step"] == 4
    resumed = finetune(source.run_dir, "other", run_dir=tmp_path / "resumed", resume=True, **kw)
    a, b = load_checkpoint(straight.run_dir), load_checkpoint(resumed.run_dir)
    assert a["step"] == b["step"] == 8
    assert states_equal(a["model"], b["model"])
    assert states_equal(prefixed(b["model"]), prefixed(load_checkpoint(source.run_dir)["model"]))


def test_resume_with_another_source_or_mode_is_refused(tmp_path, source):
    data = make_dataset(**TARGET)
    finetune(source.run_dir, "other", train_mode="embeddings", steps=2, run_dir=tmp_path / "ft", data=data, progress=False)
    with pytest.raises(ConfigError, match="--train embeddings"):
        finetune(source.run_dir, "other", train_mode="all", steps=4, run_dir=tmp_path / "ft", data=data, resume=True, progress=False)
    other_source = train(tiny_config(tmp_path, run_dir=str(tmp_path / "source2"), steps=2), dataset=make_dataset())
    with pytest.raises(ConfigError, match="source2"):
        finetune(other_source.run_dir, "other", steps=4, run_dir=tmp_path / "ft", data=data, resume=True, progress=False)


def test_missing_or_foreign_sources_fail_clearly(tmp_path, source):
    data = make_dataset(**TARGET)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        finetune(tmp_path / "nowhere", "other", steps=2, data=data)
    with pytest.raises(ConfigError, match="source run itself"):
        finetune(source.run_dir, "other", steps=2, run_dir=source.run_dir, data=data)
    with pytest.raises(ConfigError, match="--train"):
        finetune(source.run_dir, "other", train_mode="heads", steps=2, data=data)
    # A checkpoint whose trunk does not match its own config (here: a wider trunk than it says).
    payload = load_checkpoint(source.run_dir)
    payload["model"] = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) if k.startswith("trunk.") else v
                        for k, v in payload["model"].items()}
    from seqrl.checkpoint import checkpoint_path, save_checkpoint

    bad = tmp_path / "bad"
    save_checkpoint(checkpoint_path(bad), {k: v for k, v in payload.items() if k != "format_version"})
    with pytest.raises(CheckpointError, match="do not fit"):
        finetune(bad, "other", steps=2, run_dir=tmp_path / "ft-bad", data=data, progress=False)


def test_finetune_command_between_stored_datasets(tmp_path, source, capsys):
    data = make_dataset(**TARGET)
    save_dataset(data, "seqrl/other-v0", None)
    main(["finetune", "--from", str(source.run_dir), "--dataset", "other", "--train", "all", "--steps", "3",
          "--run-dir", str(tmp_path / "cli-ft"), "--no-progress", "--log-every", "1"])
    assert "fine-tuned from" in capsys.readouterr().out
    run = load_run(tmp_path / "cli-ft")
    assert run.step == 3 and run.spec.obs_dim == 7 and run.config.embed_dim == source.config.embed_dim
    with pytest.raises(SystemExit):
        main(["finetune", "--from", str(tmp_path / "nowhere"), "--dataset", "other"])
    assert "no checkpoint" in capsys.readouterr().err
