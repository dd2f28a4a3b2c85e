"""Data-parallel training (seqrl.distributed): real 2-process gloo runs on the CPU, compared with
one process on the same global batch and the same windows.

Tolerance: the 2-process run computes the same mean loss and the same gradient as one process,
but sums in another order (per-process partial sums, then gloo's all-reduce of the gradients),
so logged losses and grad norms agree to float32 rounding, not to the bit: within
LOSS_RTOL = 1e-5 relative (measured: a few 1e-7 for the DT and TT over 8 steps). Masked losses
are exact global means (`global_mean`); a plain mean of the per-process means was measured
against it in docs/distributed.md.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.distributed import Processes, rows
from seqrl.errors import ConfigError
from seqrl.train import train
from tests.helpers.dt import make_dataset, replace, tiny_config
from tests.helpers.tt import tiny_tt_config

LOSS_RTOL = 1e-5
SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, jobs: list) -> None:
    """One of `world` processes: join a gloo group, then run each job (a config, and the sampler
    call at which to die with a KeyboardInterrupt, None, or "env": the toy env's data) as
    torchrun's processes would."""
    import torch.distributed as dist

    from seqrl.data.sampler import ContextSampler

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    original = ContextSampler.sample
    try:
        for cfg, die_at in jobs:
            if die_at == "env":  # data of the registered toy env, for evaluations during training
                from tests.helpers.envs import env_dataset, register

                register()
                train(cfg, dataset=env_dataset())
                continue
            if die_at is None:
                train(cfg, dataset=make_dataset())
                continue
            calls = {"n": 0}

            def interrupt(self, *args, **kwargs):
                calls["n"] += 1
                if calls["n"] == die_at:
                    raise KeyboardInterrupt
                return original(self, *args, **kwargs)

            ContextSampler.sample = interrupt
            try:
                train(cfg, dataset=make_dataset())
            except KeyboardInterrupt:
                pass
            finally:
                ContextSampler.sample = original
    finally:
        from seqrl.distributed import stop

        stop()


def run_two_processes(jobs: list) -> None:
    torch.multiprocessing.spawn(_worker, args=(2, free_port(), jobs), nprocs=2, join=True)


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def assert_same_losses(one: list[dict], two: list[dict]) -> float:
    """The logged records agree step for step within LOSS_RTOL; returns the largest relative gap."""
    assert [r["step"] for r in one] == [r["step"] for r in two]
    worst = 0.0
    for a, b in zip(one, two):
        for key in a:
            if key.startswith("loss") or key == "grad_norm":
                assert b[key] == pytest.approx(a[key], rel=LOSS_RTOL), (a["step"], key)
                worst = max(worst, abs(b[key] - a[key]) / max(abs(a[key]), 1e-12))
    return worst


def test_two_processes_match_one_and_resume_identically(tmp_path):
    """A DT and a TT trained by 2 gloo processes log the losses of one process on the same global
    batch; an interrupted 2-process run resumed under 2 processes ends bit-identical to an
    uninterrupted one (per-process dropout streams included); only rank 0 writes; rank 0
    evaluates during training while the other waits."""
    dt = tiny_config(tmp_path, dropout=0.0, steps=8, log_every=1, checkpoint_every=4, batch_size=8)
    tt = tiny_tt_config(tmp_path, steps=8, log_every=1, checkpoint_every=4, batch_size=8)
    drop = tiny_config(tmp_path, dropout=0.1, steps=8, log_every=2, checkpoint_every=4, batch_size=8)
    jobs = [
        (replace(dt, run_dir=str(tmp_path / "dt2")), None),
        (replace(tt, run_dir=str(tmp_path / "tt2")), None),
        (replace(drop, run_dir=str(tmp_path / "straight")), None),
        (replace(drop, run_dir=str(tmp_path / "resumed")), 6),  # dies in step 6, after the checkpoint of step 4
        (replace(drop, run_dir=str(tmp_path / "resumed"), resume=True), None),
        (replace(dt, run_dir=str(tmp_path / "eval"), steps=4, eval_every=2, eval_episodes=2, targets=(0.0,)), "env"),
    ]
    run_two_processes(jobs)
    train(replace(dt, run_dir=str(tmp_path / "dt1")), dataset=make_dataset())
    train(replace(tt, run_dir=str(tmp_path / "tt1")), dataset=make_dataset())

    assert_same_losses(metrics(tmp_path / "dt1"), metrics(tmp_path / "dt2"))
    assert_same_losses(metrics(tmp_path / "tt1"), metrics(tmp_path / "tt2"))
    meta = json.loads((tmp_path / "dt2" / "metadata.json").read_text())
    assert meta["processes"] == {"world_size": 2, "batch_per_process": 4, "backend": "gloo"}

    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 8
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(x, sb[k]) for k, x in sa.items())
    assert len(b["rng"]["processes"]) == 2  # each process's dropout stream
    assert not torch.equal(b["rng"]["processes"][0]["torch"], b["rng"]["processes"][1]["torch"])
    def timeless(run_dir):
        return [{k: v for k, v in r.items() if k != "steps_per_sec"} for r in metrics(run_dir)]

    assert timeless(tmp_path / "straight") == timeless(tmp_path / "resumed")  # to the bit
    # Rank 0 alone wrote: the run directory holds one run's files, no stray temporaries.
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == [
        ".seqrl.lock", "README.md", "checkpoints", "config.json", "metadata.json", "metrics.jsonl", "model.safetensors"]
    assert [p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()] == ["latest.pt"]
    # Rank 0 evaluated during training while the other process waited.
    evals = [r for r in metrics(tmp_path / "eval") if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [2, 4] and all(any(k.endswith("/return_mean") for k in r) for r in evals)


def test_world_size_that_does_not_divide_the_batch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigError, match=r"--batch-size 8 cannot be split across 3 processes"):
        train(tiny_config(tmp_path), dataset=make_dataset())
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_torchrun_trains_through_the_command_line(tmp_path):
    """`torchrun --nproc_per_node 2 -m seqrl train ...`: torchrun's own launcher, seqrl's own
    process group (gloo), one writer; a batch the world size does not divide is refused by name."""
    from seqrl.data.sources import dataset_id_for, save_dataset

    save_dataset(make_dataset(obs_dim=11, act_dim=3, name="hopper-tiny"), dataset_id_for("hopper-tiny"), "Hopper-v5")
    flags = ["--dataset", "hopper-tiny", "--model", "tokenized", "--steps", "4", "--embed-dim", "16",
             "--n-layers", "1", "--n-heads", "2", "--context-len", "4", "--num-bins", "8", "--dropout", "0",
             "--precision", "fp32", "--device", "cpu", "--log-every", "1", "--warmup-steps", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}

    def torchrun(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                               "--master_port", str(free_port()), "-m", "seqrl", "train", *args],
                              env=env, capture_output=True, text=True, timeout=180)

    done = torchrun(*flags, "--batch-size", "6", "--run-dir", str(tmp_path / "two"), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run directory:") == 1  # rank 0 speaks for the run
    from seqrl.cli import main

    main(["train", *flags, "--batch-size", "6", "--run-dir", str(tmp_path / "one"), "--no-progress"])
    assert_same_losses(metrics(tmp_path / "one"), metrics(tmp_path / "two"))

    refused = torchrun(*flags, "--batch-size", "5", "--run-dir", str(tmp_path / "odd"))
    assert refused.returncode != 0
    assert "--batch-size 5 cannot be split across 2 processes" in refused.stderr
    assert not (tmp_path / "odd").exists()


def test_rows_split_in_rank_order():
    x = np.arange(10)
    assert [rows(x, r, 2).tolist() for r in range(2)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert np.concatenate([rows(x, r, 3) for r in range(3)]).tolist() == x.tolist()  # 4, 3, 3
    with pytest.raises(ConfigError, match="3 rows cannot be split across 4 processes"):
        rows(np.arange(3), 0, 4)


def test_processes_from_torchrun_environment():
    assert Processes.from_environment({}) == Processes(0, 1, 0)
    got = Processes.from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert got == Processes(3, 4, 1) and got.enabled and not got.main
    with pytest.raises(ConfigError, match="RANK=4 is not within WORLD_SIZE=4"):
        Processes.from_environment({"RANK": "4", "WORLD_SIZE": "4"})
