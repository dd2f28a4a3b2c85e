"""A sweep run marked done whose eval.json is missing is evaluated again, not skipped or retrained."""

from __future__ import annotations

import json

from seqrl.checkpoint import load_checkpoint
from seqrl.experiments.runner import is_finished, read_state
from seqrl.experiments.spec import expand
from seqrl.experiments.sweep import run_sweep

from .conftest import TINY_DEFAULTS


def test_done_run_without_eval_json_is_re_evaluated(tmp_path, tiny_datasets):
    spec = {"defaults": TINY_DEFAULTS, "eval": {"episodes": 2},
            "experiments": {"e": {"datasets": [tiny_datasets["pole"]]}}}
    sweep = expand(spec)
    (run,) = sweep.runs
    out = tmp_path / "out"
    assert run_sweep(sweep, out, workers=1, threads=1).names("done") == [run.name]
    run_dir = out / run.name
    first = json.loads((run_dir / "eval.json").read_text())
    checkpoint = run_dir / "checkpoints" / "latest.pt"
    stamp = checkpoint.stat().st_mtime_ns
    metrics = (run_dir / "metrics.jsonl").read_text()
    assert read_state(run_dir)["status"] == "done" and is_finished(run, run_dir)

    (run_dir / "eval.json").unlink()  # e.g. killed between training and writing the evaluation
    assert read_state(run_dir)["status"] == "done" and not is_finished(run, run_dir)
    again = run_sweep(sweep, out, workers=1, threads=1)
    assert again.names("done") == [run.name] and not again.names("finished")
    second = json.loads((run_dir / "eval.json").read_text())
    assert second["step"] == 4 and second["results"] == first["results"]  # same checkpoint, same seeds
    # Evaluated again, not trained again: the checkpoint and the training log are untouched.
    assert checkpoint.stat().st_mtime_ns == stamp and load_checkpoint(run_dir)["step"] == 4
    assert (run_dir / "metrics.jsonl").read_text() == metrics
    # And now it counts as finished.
    assert run_sweep(sweep, out, workers=1, threads=1).names("finished") == [run.name]


def test_a_sweep_without_evaluation_does_not_need_eval_json(tmp_path, tiny_datasets):
    spec = {"defaults": TINY_DEFAULTS, "eval": False, "experiments": {"e": {"datasets": [tiny_datasets["pole"]]}}}
    sweep = expand(spec)
    out = tmp_path / "out"
    run_sweep(sweep, out, workers=1, threads=1)
    (run,) = sweep.runs
    assert not (out / run.name / "eval.json").exists()
    assert run_sweep(sweep, out, workers=1, threads=1).names("finished") == [run.name]
