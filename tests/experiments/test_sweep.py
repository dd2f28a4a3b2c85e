"""Real tiny sweeps: parallel workers, evaluation, fine-tuning order, failures, resume, Ray."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from seqrl.checkpoint import load_checkpoint
from seqrl.experiments.runner import execute_run, read_state, run_lock
from seqrl.experiments.spec import expand
from seqrl.experiments.sweep import PLAN_FILE, run_sweep
from seqrl.runs import read_jsonl
from seqrl.train import train

from .conftest import TINY_DEFAULTS


def tiny_sweep(datasets: dict[str, str], *, broken: bool = False) -> dict:
    experiments = {
        "pre": {"datasets": [datasets["pole"]], "models": ["continuous", "tokenized"], "seeds": 2},
        "transfer": {"datasets": [datasets["double"]], "models": ["tokenized"], "seeds": [1],
                     "finetune": {"from": "pre/%s/{model}/s{seed}" % datasets["pole"], "train": "embeddings"}},
    }
    if broken:  # a run that fails (no such dataset), and a run that would fine-tune from it
        experiments["bad"] = {"datasets": ["no-such-dataset"], "models": ["continuous"]}
        experiments["after-bad"] = {"datasets": [datasets["pole"]], "finetune": {"from": "bad/no-such-dataset/{model}/s0"}}
    return {"name": "tiny", "defaults": TINY_DEFAULTS, "eval": {"episodes": 2}, "experiments": experiments}


def test_sweep_trains_evaluates_resumes_and_survives_a_failing_run(tmp_path, tiny_datasets):
    sweep = expand(tiny_sweep(tiny_datasets, broken=True))
    out = tmp_path / "out"
    pole = tiny_datasets["pole"]

    # An interrupted run: a checkpoint at step 2 of its 4, as a killed sweep leaves it.
    interrupted = sweep.by_name[f"pre/{pole}/tokenized/s1"]
    train(dataclasses.replace(interrupted.config(out), steps=2))
    first_line = read_jsonl(out / interrupted.name / "metrics.jsonl")[0]

    result = run_sweep(sweep, out, workers=2, threads=1)

    assert sorted(result.names("done")) == sorted(r.name for r in sweep.runs if not r.name.startswith(("bad", "after-bad")))
    assert result.names("failed") == ["bad/no-such-dataset/continuous/s0"]
    assert "unknown dataset 'no-such-dataset'" in result.errors["bad/no-such-dataset/continuous/s0"]
    assert result.names("blocked") == ["after-bad/pole-tiny/continuous+ft-all/s0"]
    assert read_state(out / "bad/no-such-dataset/continuous/s0")["status"] == "failed"
    assert json.loads((out / PLAN_FILE).read_text())["name"] == "tiny"

    for run in sweep.runs[:5]:
        run_dir = out / run.name
        report = json.loads((run_dir / "eval.json").read_text())
        assert report["step"] == 4 and report["episodes"] == 2
        # The spec's targets; a fine-tuning run takes its new dataset's (best return, half of it).
        assert len(report["results"]) == 2 and (run.finetune or [r["target"] for r in report["results"]] == [10.0, 5.0])
        assert all(r["score_mean"] is not None for r in report["results"])
        assert load_checkpoint(run_dir)["step"] == 4
        assert read_state(run_dir)["status"] == "done"

    # The interrupted run continued from its checkpoint: its step-2 metrics line is the old one.
    lines = read_jsonl(out / interrupted.name / "metrics.jsonl")
    assert [x["step"] for x in lines] == [2, 4] and lines[0] == first_line

    # The fine-tuning run started after its source finished, from its weights.
    tuned = sweep.by_name["transfer/double-tiny/tokenized+ft-embeddings/s1"]
    source_state = read_state(out / tuned.finetune.source)
    assert read_state(out / tuned.name)["started"] >= source_state["finished"]
    record = json.loads((out / tuned.name / "metadata.json").read_text())["finetune"]
    assert record["source_run"] == str((out / tuned.finetune.source).resolve()) and record["train"] == "embeddings"
    assert record["source_step"] == 4

    # Again: finished runs are skipped untouched, the failed one is retried (and fails again).
    stamps = {r.name: (out / r.name / "checkpoints/latest.pt").stat().st_mtime_ns for r in sweep.runs[:5]}
    again = run_sweep(sweep, out, workers=1, threads=1)
    assert sorted(again.names("finished")) == sorted(stamps)
    assert again.names("failed") == ["bad/no-such-dataset/continuous/s0"]
    assert again.names("blocked") == ["after-bad/pole-tiny/continuous+ft-all/s0"]
    assert stamps == {n: (out / n / "checkpoints/latest.pt").stat().st_mtime_ns for n in stamps}


def test_raising_steps_in_the_spec_continues_finished_runs(tmp_path, tiny_datasets):
    spec = {"defaults": TINY_DEFAULTS, "eval": False,
            "experiments": {"e": {"datasets": [tiny_datasets["pole"]]}}}
    out = tmp_path / "out"
    assert run_sweep(expand(spec), out, workers=1, threads=1).names("done") == ["e/pole-tiny/continuous/s0"]
    longer = expand({**spec, "defaults": {**TINY_DEFAULTS, "steps": 6}})
    assert run_sweep(longer, out, workers=1, threads=1).names("done") == ["e/pole-tiny/continuous/s0"]
    assert load_checkpoint(out / "e/pole-tiny/continuous/s0")["step"] == 6
    assert [x["step"] for x in read_jsonl(out / "e/pole-tiny/continuous/s0/metrics.jsonl")] == [2, 4, 6]


@pytest.mark.slow
def test_ray_backend_on_a_local_instance(tmp_path, tiny_datasets):
    ray = pytest.importorskip("ray")
    spec = tiny_sweep(tiny_datasets)
    spec["experiments"]["pre"]["models"] = ["tokenized"]
    spec["experiments"]["pre"]["seeds"] = [1]
    sweep = expand(spec)  # one run and the run that fine-tunes from it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_sweep(sweep, tmp_path / "out", backend="ray", threads=1)
    finally:
        ray.shutdown()
    assert result.ok and sorted(result.names("done")) == sorted(r.name for r in sweep.runs)
    for run in sweep.runs:
        assert json.loads((tmp_path / "out" / run.name / "eval.json").read_text())["step"] == 4


def test_a_run_another_process_holds_is_not_trained_twice(tmp_path):
    sweep = expand({"experiments": {"e": {"datasets": ["whatever"]}}})
    (run,) = sweep.runs
    with run_lock(tmp_path / run.name) as locked:
        assert locked
        outcome = execute_run(run.to_dict(), str(tmp_path))
    assert outcome["status"] == "failed" and "another process" in outcome["error"]
    assert not (tmp_path / run.name / "config.json").exists()


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupting_seqrl_sweep_stops_its_workers_and_leaves_the_run_resumable(tmp_path, tiny_datasets, sig):
    # A run far too long to finish during the test; interrupting the command must not wait for it.
    spec = {"name": "long", "eval": False,
            "defaults": {**TINY_DEFAULTS, "steps": 10**7, "log_every": 1, "checkpoint_every": 5},
            "experiments": {"e": {"datasets": [tiny_datasets["pole"]]}}}
    spec_path = tmp_path / "long.yaml"
    spec_path.write_text(json.dumps(spec))  # JSON is YAML
    out = tmp_path / "out"
    run_dir = out / f"e/{tiny_datasets['pole']}/continuous/s0"
    # Output to a file, not an unread pipe: a full pipe would block the sweep's own writes (its
    # interrupt message included) and hang it for reasons that have nothing to do with signals.
    # The child starts with SIGINT's default action: a process inherits an ignored SIGINT (as
    # a background job of a shell script does), and something earlier in a full test session
    # leaves this one's ignored; Python then installs no KeyboardInterrupt handler at all.
    log = tmp_path / "sweep.log"
    with log.open("wb") as sink:
        sweep = subprocess.Popen([sys.executable, "-m", "seqrl.cli", "sweep", str(spec_path), "--output", str(out),
                                  "--workers", "1", "--threads", "1"], stdout=sink, stderr=subprocess.STDOUT,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(lambda: (run_dir / "checkpoints" / "latest.pt").exists(), "the run's first checkpoint")
        worker = read_state(run_dir)["pid"]
        assert read_state(run_dir)["status"] == "running" and _alive(worker)
        sweep.send_signal(sig)
        try:
            sweep.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the sweep did not stop within 60 s of {sig!r}; its output:\n{log.read_text()[-3000:]}")
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode != 0  # interrupted, not finished
    try:
        _wait_for(lambda: not _alive(worker), "the worker to stop", timeout=30)
    finally:
        if _alive(worker):  # the bug this test catches: don't leave the orphan training
            os.kill(worker, signal.SIGKILL)
    # The run is left as an interrupted one: the next invocation continues it from its checkpoint.
    assert read_state(run_dir)["status"] == "running"
    assert load_checkpoint(run_dir)["step"] >= 5
