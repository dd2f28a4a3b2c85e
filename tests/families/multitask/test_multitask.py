"""Multi-task pretraining (issue 12): one spread DT on several datasets, per-task state
embeddings, shared trunk / action embedding / action head; per-task evaluation; transfer to an
unseen task with only a new state embedding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.loading import load_run
from seqrl.cli import main
from seqrl.data.sources import save_dataset
from seqrl.errors import ConfigError
from seqrl.evaluation.evaluate import evaluate_run
from seqrl.experiments.report import write_report
from seqrl.experiments.spec import expand
from seqrl.experiments.sweep import run_sweep
from seqrl.families.multitask import MultiTaskConfig, MultiTaskData, MultiTaskSampler
from seqrl.train import train

from tests.helpers.dt import make_dataset

TINY = dict(embed_dim=32, n_layers=2, n_heads=2, context_len=5, batch_size=8, num_bins=16, steps=10, warmup_steps=2,
            learning_rate=1e-3, log_every=5, checkpoint_every=5, progress=False, rtg_scale=0.1, precision="fp32",
            device="cpu", max_action_features=4)
SHARED = ("trunk", "embed_ln", "embed_return", "embed_timestep")


def mt_config(tmp_path, **overrides) -> MultiTaskConfig:
    return MultiTaskConfig(**{"dataset": "a+b", "run_dir": str(tmp_path / "mt"), **TINY, **overrides})


def two_tasks() -> MultiTaskData:
    return MultiTaskData(["a", "b"], [make_dataset(obs_dim=4, act_dim=3, name="a"),
                                      make_dataset(obs_dim=6, act_dim=2, name="b", seed=1)])


@pytest.mark.parametrize("model", ["mt-tokenized-spread", "mt-continuous-spread"])
def test_tasks_share_everything_but_the_state_embedding(tmp_path, model):
    result = train(mt_config(tmp_path, model=model), dataset=two_tasks())
    a, b = result.model.task_model("a"), result.model.task_model("b")
    for name in SHARED:
        assert getattr(a, name) is getattr(b, name)
    assert a.codec.embedding is b.codec.embedding and a.codec.head.weight is b.codec.head.weight
    assert a.embed_state.weight.shape == (32, 4) and b.embed_state.weight.shape == (32, 6)
    assert a.codec.tokens_per_step == 3 and b.codec.tokens_per_step == 2
    # Each parameter once in the optimizer: shared ones plus one state embedding per task.
    groups = result.model.param_groups(0.1)
    params = [p for g in groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params}) == len(list(result.model.parameters()))
    per_view = sum(p.numel() for p in a.parameters())
    assert sum(p.numel() for p in result.model.parameters()) == per_view + sum(p.numel() for p in b.embed_state.parameters())
    # Training logs each task's loss; the checkpoint reloads with the layers still tied.
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"loss/a", "loss/b"} <= set(records[-1])
    assert records[-1]["loss"] == pytest.approx((records[-1]["loss/a"] + records[-1]["loss/b"]) / 2, rel=1e-5)
    run = load_run(result.run_dir)
    assert run.model.task_model("a").trunk is run.model.task_model("b").trunk
    state = load_checkpoint(result.run_dir)["model"]
    assert torch.equal(state["tasks.a.codec.head.weight"], state["tasks.b.codec.head.weight"])


def test_a_step_trains_the_shared_layers_from_both_tasks(tmp_path):
    data = two_tasks()
    before = train(mt_config(tmp_path, run_dir=str(tmp_path / "zero"), steps=1, learning_rate=1e-12), dataset=data)
    after = train(mt_config(tmp_path, run_dir=str(tmp_path / "one"), steps=8), dataset=data)
    b0, b1 = load_checkpoint(before.run_dir)["model"], load_checkpoint(after.run_dir)["model"]
    for key in ("tasks.a.embed_state.weight", "tasks.b.embed_state.weight", "tasks.a.codec.head.weight",
                "tasks.a.trunk.blocks.0.attn.qkv.weight"):
        assert not torch.equal(b0[key], b1[key]), key


def test_batches_hold_an_equal_share_of_every_task():
    data = MultiTaskData(["a", "b", "c"], [make_dataset(act_dim=1, name=n, seed=i) for i, n in enumerate("abc")])
    from seqrl.data.sampler import ContextSampler

    sampler = MultiTaskSampler(["a", "b", "c"], [ContextSampler(d, 4) for d in data.datasets])
    batch = sampler.sample(7, np.random.default_rng(0))
    assert {k: len(v.states) for k, v in batch.tasks.items()} == {"a": 3, "b": 2, "c": 2}


def test_multitask_resumes_bit_identically(tmp_path):
    data = two_tasks()
    straight = train(mt_config(tmp_path, run_dir=str(tmp_path / "s")), dataset=data)
    train(mt_config(tmp_path, run_dir=str(tmp_path / "r"), steps=5), dataset=data)
    resumed = train(mt_config(tmp_path, run_dir=str(tmp_path / "r"), resume=True), dataset=data)
    a, b = load_checkpoint(straight.run_dir)["model"], load_checkpoint(resumed.run_dir)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("overrides, match", [
    (dict(dataset="a"), "2 or more datasets"), (dict(dataset="a+a"), "names a task twice"),
    (dict(eval_every=5), "--eval-every"), (dict(spread_head="per-feature"), "--spread-head shared"),
    (dict(model="mt-tokenized"), "unknown model"), (dict(max_action_features=0), "--max-action-features"),
])
def test_bad_multitask_configs_are_config_errors(tmp_path, overrides, match):
    with pytest.raises(ConfigError, match=match):
        mt_config(tmp_path, **overrides)


def test_sweep_pretrains_evaluates_per_task_and_transfers_to_an_unseen_task(tmp_path, minari_root):
    tasks = [("reach", "Reacher-v5", 10, 2), ("pole", "InvertedPendulum-v5", 4, 1),
             ("double", "InvertedDoublePendulum-v5", 9, 1)]
    for i, (name, env_id, obs_dim, act_dim) in enumerate(tasks):
        save_dataset(make_dataset(obs_dim=obs_dim, act_dim=act_dim, episodes=4, seed=i, name=f"{name}-mt"),
                     f"seqrl/{name}-mt-v0", env_id, ref_min_score=-100.0, ref_max_score=100.0)
    defaults = {k: v for k, v in TINY.items() if k not in ("progress",)}
    spec = {"name": "mt", "defaults": {**defaults, "steps": 4}, "eval": {"episodes": 2}, "experiments": {
        "pretrain": {"datasets": ["reach-mt+pole-mt"], "models": ["mt-tokenized-spread"], "seeds": 1,
                     "options": {"targets": [10.0, 5.0]}},
        "transfer": {"datasets": ["double-mt"], "models": ["tokenized-spread"], "seeds": 1,
                     "options": {"spread_head": "shared", "max_action_features": 4, "binning": "uniform"},
                     "finetune": {"from": "pretrain/reach-mt+pole-mt/mt-tokenized-spread/s{seed}",
                                  "train": "embeddings", "rebuild": ["state"]}},
    }}
    sweep = expand(spec)
    out = tmp_path / "out"
    result = run_sweep(sweep, out, workers=1, threads=1)
    assert sorted(result.names("done")) == sorted(r.name for r in sweep.runs)
    mt_dir = out / "pretrain/reach-mt+pole-mt/mt-tokenized-spread/s0"
    report = json.loads((mt_dir / "eval.json").read_text())
    assert set(report["tasks"]) == {"reach-mt", "pole-mt"}
    assert report["tasks"]["reach-mt"]["env_id"] == "Reacher-v5" and report["tasks"]["pole-mt"]["env_id"] == "InvertedPendulum-v5"
    assert [(r["task"], r["target"]) for r in report["results"]] == [
        ("reach-mt", 10.0), ("reach-mt", 5.0), ("pole-mt", 10.0), ("pole-mt", 5.0)]
    one = evaluate_run(mt_dir, episodes=1, task="pole-mt", write=False)
    assert list(one["tasks"]) == ["pole-mt"]
    # The unseen task kept every shared layer, bit for bit, and got only a new state embedding.
    source = load_checkpoint(mt_dir)["model"]
    tuned_dir = out / "transfer/double-mt/tokenized-spread+ft-embeddings,rebuild=state/s0"
    tuned = load_checkpoint(tuned_dir)["model"]
    shared = [k for k in tuned if not k.startswith("embed_state.") and not k.startswith("codec.tokenizer.")
              and k not in ("codec.head.center", "codec.head.half_range", "codec.head.invalid")]
    assert shared and all(torch.equal(tuned[k], source["tasks.reach-mt." + k]) for k in shared)
    assert tuned["embed_state.weight"].shape == (32, 9)
    meta = json.loads((tuned_dir / "metadata.json").read_text())["finetune"]
    assert meta["source_tasks"] == "reach-mt+pole-mt" and meta["rebuilt"] == ["state"]
    rows = write_report(out)["rows"]
    assert {r["model"] for r in rows} == {"mt-tokenized-spread", "tokenized-spread"}
    # One row per task and target for the multi-task run, each from that task's own episodes.
    mt_rows = {(r["dataset"], r["target"]): r for r in rows if r["model"] == "mt-tokenized-spread"}
    assert set(mt_rows) == {(f"{t}@reach-mt+pole-mt", g) for t in ("reach-mt", "pole-mt") for g in (10.0, 5.0)}
    pole = report["tasks"]["pole-mt"]["results"][0]
    assert mt_rows[("pole-mt@reach-mt+pole-mt", 10.0)]["return_mean"] == pytest.approx(pole["return_mean"])


def test_seqrl_train_family_mtdt(tmp_path, minari_root, capsys):
    for i, (name, act_dim) in enumerate([("x", 3), ("y", 2)]):
        save_dataset(make_dataset(obs_dim=4 + i, act_dim=act_dim, episodes=3, name=name), f"seqrl/{name}-v0",
                     "InvertedPendulum-v5")
    main(["train", "--family", "mtdt", "--dataset", "x+y", "--steps", "2", "--warmup-steps", "1", "--embed-dim", "16",
          "--n-layers", "1", "--num-bins", "8", "--run-dir", str(tmp_path / "cli"), "--no-progress", "--device", "cpu"])
    assert "run directory" in capsys.readouterr().out
    run = load_run(tmp_path / "cli")
    assert run.family == "mtdt" and [s.obs_dim for s in run.spec.tasks] == [4, 5]


def test_a_discrete_task_is_refused_by_name(tmp_path):
    from seqrl.errors import ConfigError
    from tests.helpers.discrete import cartpole_dataset

    data = MultiTaskData(["a", "cartpole"], [make_dataset(obs_dim=4, act_dim=3, name="a"), cartpole_dataset(episodes=3)])
    with pytest.raises(ConfigError, match=r"cartpole has Discrete\(2\) actions: the multi-task DT"):
        train(mt_config(tmp_path), dataset=data)
