"""The shared training loop: clipping, checkpoints, resume, and refusing mismatched data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqrl.checkpoint import checkpoint_path, load_checkpoint
from seqrl.loading import load_run
from seqrl.data.sampler import ContextSampler
from seqrl.errors import CheckpointError, ConfigError
from seqrl.runs import cpu_description
from seqrl.train import train

from tests.helpers.dt import VARIANT_CASES, make_dataset, replace, tiny_config
from tests.helpers.interrupt import killed_while_sampling


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_writes_a_run_directory(tmp_path, tiny_dataset):
    result = train(tiny_config(tmp_path), dataset=tiny_dataset)
    run = result.run_dir
    config = json.loads((run / "config.json").read_text())
    meta = json.loads((run / "metadata.json").read_text())
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert config["model"] == "continuous" and config["steps"] == 10
    assert meta["versions"]["torch"] == torch.__version__.split("+")[0] or meta["versions"]["torch"].startswith(torch.__version__[:4])
    assert meta["device"] == "cpu" and meta["spec"]["obs_dim"] == 4
    # which CPU kernels ran: runs from machines that differ here are not bit-comparable
    assert meta["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(meta["cpu"]) == {"model", "isa", "torch_capability"}
    assert [x["step"] for x in lines] == [2, 4, 6, 8, 10]
    assert all(np.isfinite(x["loss"]) and x["lr"] > 0 and x["steps_per_sec"] > 0 for x in lines)
    assert load_checkpoint(run)["step"] == 10


def test_the_cpu_description_reads_model_and_instruction_sets(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_bf16\n\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx\n")
    cpu = cpu_description(cpuinfo)
    assert cpu["model"] == "AMD EPYC" and cpu["isa"] == ["avx", "avx2", "fma", "avx512f", "avx512_bf16"]  # the first CPU's
    missing = cpu_description(tmp_path / "absent")
    assert missing["model"] is None and missing["isa"] is None
    assert missing["torch_capability"] == torch.backends.cpu.get_cpu_capability()


def test_gradient_norm_after_clipping_is_at_most_the_limit(tmp_path, tiny_dataset, monkeypatch):
    """Checks the norm the optimizer actually sees (torchrl's DT clipped before backward)."""
    seen = []
    original = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    result = train(tiny_config(tmp_path, grad_clip=0.01, steps=6), dataset=tiny_dataset)
    assert len(seen) == 6 and max(seen) <= 0.01 * (1 + 1e-5)
    raw = [json.loads(x)["grad_norm"] for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(raw) > 0.01  # the pre-clip norm was above the limit: clipping did act


@pytest.mark.parametrize("overrides", VARIANT_CASES[:4])
def test_checkpoint_round_trip_gives_identical_actions(tmp_path, tiny_dataset, overrides):
    result = train(tiny_config(tmp_path, **overrides), dataset=tiny_dataset)
    loaded = load_run(result.run_dir)
    sampler = ContextSampler(tiny_dataset, 5, rtg_scale=0.1)
    batch = sampler.sample(7, np.random.default_rng(1)).to_torch()
    args = (batch.returns_to_go, batch.states, batch.actions, batch.timesteps, batch.mask.sum(1))
    assert torch.equal(result.model.act(*args), loaded.model.act(*args))
    assert loaded.step == 10 and loaded.config.model == overrides["model"]


@pytest.mark.parametrize("overrides", [VARIANT_CASES[0], VARIANT_CASES[2]])
def test_resume_after_interruption_is_bit_identical(tmp_path, tiny_dataset, monkeypatch, overrides):
    cfg = tiny_config(tmp_path, steps=12, checkpoint_every=4, **overrides)
    straight = train(replace(cfg, run_dir=str(tmp_path / "straight")), dataset=tiny_dataset)

    interrupted = replace(cfg, run_dir=str(tmp_path / "resumed"))
    with killed_while_sampling(monkeypatch, ContextSampler, 7):  # during step 7, after the checkpoint at step 4
        train(interrupted, dataset=tiny_dataset)
    assert load_checkpoint(tmp_path / "resumed")["step"] == 4
    resumed = train(replace(interrupted, resume=True), dataset=tiny_dataset)

    a, b = load_checkpoint(straight.run_dir), load_checkpoint(resumed.run_dir)
    assert a["step"] == b["step"] == 12
    assert states_equal(a["model"], b["model"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert states_equal(sa, sb)
    log = [json.loads(x) for x in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log] == [2, 4, 6, 8, 10, 12]  # no duplicated lines


def test_existing_run_is_not_overwritten(tmp_path, tiny_dataset):
    cfg = tiny_config(tmp_path, steps=2)
    train(cfg, dataset=tiny_dataset)
    with pytest.raises(CheckpointError, match="--resume"):
        train(cfg, dataset=tiny_dataset)


def test_resume_on_data_of_other_dimensions_fails_clearly(tmp_path, tiny_dataset):
    cfg = tiny_config(tmp_path, steps=2)
    train(cfg, dataset=tiny_dataset)
    other = make_dataset(obs_dim=7, act_dim=2, name="other")
    with pytest.raises(CheckpointError, match=r"obs_dim=4, act_dim=3.*obs_dim=7, act_dim=2"):
        train(replace(cfg, resume=True, steps=4), dataset=other)


def test_corrupt_checkpoint_fails_clearly(tmp_path, tiny_dataset):
    result = train(tiny_config(tmp_path, steps=2), dataset=tiny_dataset)
    path = checkpoint_path(result.run_dir)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_run(result.run_dir)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_run(tmp_path / "nowhere")


def test_learning_rate_warms_up_linearly(tmp_path, tiny_dataset):
    result = train(tiny_config(tmp_path, steps=8, warmup_steps=8, log_every=1, learning_rate=1e-3), dataset=tiny_dataset)
    lrs = [json.loads(x)["lr"] for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(lrs, [1e-3 * min(1, s / 8) for s in range(1, 9)])


@pytest.mark.parametrize("bad", [dict(num_bins=1), dict(embed_dim=30, n_heads=4), dict(dropout=1.0), dict(steps=0)])
def test_bad_config_values_are_refused(bad):
    with pytest.raises(ConfigError):
        tiny_config(**bad)


def test_train_command_line_with_presets(tmp_path, capsys):
    """`seqrl train` end to end on a dataset saved in the local store under a hopper name."""
    from seqrl.cli import main
    from seqrl.data.sources import dataset_id_for, save_dataset

    data = make_dataset(obs_dim=11, act_dim=3, name="hopper-tiny")
    save_dataset(data, dataset_id_for("hopper-tiny"), "Hopper-v5")
    run_dir = tmp_path / "cli-run"
    main(["train", "--dataset", "hopper-tiny", "--model", "tokenized-spread", "--steps", "3",
          "--embed-dim", "16", "--n-layers", "1", "--context-len", "4", "--batch-size", "4",
          "--num-bins", "8", "--no-progress", "--log-every", "1", "--run-dir", str(run_dir)])
    assert "run directory" in capsys.readouterr().out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["rtg_scale"] == 0.001 and config["targets"] == [3600.0, 1800.0]  # hopper preset
    loaded = load_run(run_dir)
    assert loaded.spec.ref_min_score == pytest.approx(-20.272305)  # D4RL's hopper references
    assert loaded.step == 3 and loaded.config.model == "tokenized-spread"


def test_unknown_variant_is_refused_by_the_cli(capsys):
    from seqrl.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--dataset", "x", "--model", "transformer-xl"])
    assert "transformer-xl" in capsys.readouterr().err


def test_tensorboard_events_are_written(tmp_path, tiny_dataset):
    pytest.importorskip("tensorboard")
    result = train(tiny_config(tmp_path, steps=4, tensorboard=True), dataset=tiny_dataset)
    assert list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_one_writer_per_run_directory_across_real_processes(tmp_path):
    """A second trainer (or an evaluation that would write eval.json) is refused by name while
    another process holds the run directory; the holder's death (kill -9) releases it."""
    import subprocess
    import sys

    from seqrl.errors import CheckpointError
    from seqrl.evaluation.evaluate import evaluate_run

    from tests.helpers.dt import make_dataset, tiny_config

    data = make_dataset()
    run_dir = tmp_path / "run"
    train(tiny_config(tmp_path, steps=4, checkpoint_every=2), dataset=data)  # a finished run to evaluate
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from seqrl.runs import RunLock; lock = RunLock(sys.argv[1]).__enter__(); "
                               "print('locked', flush=True); time.sleep(120)", str(run_dir)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
        with pytest.raises(CheckpointError, match=rf"is in use by process {holder.pid} \(training, "):
            train(tiny_config(tmp_path, steps=6, checkpoint_every=2, resume=True), dataset=data)
        with pytest.raises(CheckpointError, match=rf"in use by process {holder.pid}.* before evaluating there"):
            evaluate_run(run_dir, episodes=1)
        assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before  # nothing written
    finally:
        holder.kill()
        holder.wait()
    resumed = train(tiny_config(tmp_path, steps=6, checkpoint_every=2, resume=True), dataset=data)
    assert resumed.step == 6


def test_a_time_interval_checkpoint_leaves_a_stopped_run_resumable_below_checkpoint_every(tmp_path):
    """--checkpoint-every above --steps would leave nothing until the end; --checkpoint-minutes saves anyway."""
    from seqrl.checkpoint import load_checkpoint

    from tests.helpers.dt import make_dataset, tiny_config

    calls = {"n": 0}

    class Stop(Exception):
        pass

    def stop_at_step_4(model):
        honest = model.loss_terms

        def loss_terms(batch):
            calls["n"] += 1
            if calls["n"] == 4:
                raise Stop
            return honest(batch)

        model.loss_terms = loss_terms

    data = make_dataset()
    cfg = tiny_config(tmp_path, steps=10, checkpoint_every=1000, checkpoint_minutes=1e-9)
    with pytest.raises(Stop):
        train(cfg, dataset=data, prepare_model=stop_at_step_4)
    assert load_checkpoint(tmp_path / "run")["step"] == 3
    straight = train(tiny_config(tmp_path, steps=10, checkpoint_every=1000, run_dir=str(tmp_path / "straight")),
                     dataset=data)
    resumed = train(replace(cfg, resume=True), dataset=data)
    assert resumed.step == 10
    for key, value in straight.model.state_dict().items():  # resuming from the interval checkpoint is exact
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_a_window_longer_than_every_episode_or_too_big_for_memory_is_refused_before_anything_is_written(
        tmp_path, monkeypatch):
    import seqrl.memory

    from tests.helpers.dt import make_dataset, tiny_config
    from tests.helpers.tt import tiny_tt_config

    data = make_dataset(episodes=4)
    longest = int(data.episode_lengths.max())
    with pytest.raises(ConfigError, match=rf"spans {longest + 1} steps, longer than every episode of tiny "
                                          rf"\(the longest has {longest}\)"):
        train(tiny_config(tmp_path, context_len=longest + 1), dataset=data)
    with pytest.raises(ConfigError, match="longer than every episode"):
        train(tiny_tt_config(tmp_path, sequence_length=longest + 1), dataset=data)
    assert not (tmp_path / "run").exists() and not (tmp_path / "tt").exists()

    monkeypatch.setattr(seqrl.memory, "available_bytes", lambda device: 1024)
    with pytest.raises(ConfigError, match=r"one training step would keep about .* of activations \(15 tokens per "
                                          r"window x batch 8, 2 layers of width 32\), but this machine has 1.0 KB "
                                          r"available: lower --batch-size or shorten the context"):
        train(tiny_config(tmp_path), dataset=data)  # context 5 x (R, s, a)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- held-out loss
def test_held_out_episodes_are_kept_out_of_training_and_their_loss_is_logged(tmp_path):
    import json as json_module

    from seqrl.train import train

    data = make_dataset(episodes=8)
    cfg = tiny_config(tmp_path, steps=6, log_every=2, checkpoint_every=3, holdout_fraction=0.25)
    result = train(cfg, dataset=data)
    kept, held = data.split_episodes(0.25, cfg.seed)
    assert (kept.num_episodes, held.num_episodes) == (6, 2)
    np.testing.assert_allclose(result.spec.state_mean, kept.observation_mean, rtol=1e-6)  # fitted on the kept part
    records = [json_module.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["val_loss"] for r in records if "loss" in r]
    assert len(losses) == 3 and all(np.isfinite(losses))
    # The same split, batches and losses on resume: an interrupted run logs what an uninterrupted one does.
    straight = [r for r in records if "loss" in r]
    first = train(replace(cfg, steps=4, run_dir=str(tmp_path / "resumed")), dataset=data)
    again = train(replace(cfg, run_dir=str(first.run_dir), resume=True), dataset=data)
    resumed = [json_module.loads(x) for x in (again.run_dir / "metrics.jsonl").read_text().splitlines() if "loss" in x]
    steps = {r["step"] for r in straight}
    assert ([(r["step"], r["loss"], r["val_loss"]) for r in resumed if r["step"] in steps]
            == [(r["step"], r["loss"], r["val_loss"]) for r in straight])


def test_a_holdout_that_leaves_nothing_or_a_family_without_episodes_is_refused(tmp_path):
    from seqrl.errors import ConfigError, DatasetError
    from seqrl.train import train

    with pytest.raises(DatasetError, match="holding out 0.1 of 2 episodes leaves none to hold out"):
        train(tiny_config(tmp_path, holdout_fraction=0.1, steps=2), dataset=make_dataset(episodes=2))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="--holdout-fraction must be a finite number"):
        tiny_config(tmp_path, holdout_fraction=1.0)
