"""Runs written by older seqrl versions still load, evaluate and report."""

from __future__ import annotations

import json

import numpy as np

from seqrl.checkpoint import load_checkpoint
from seqrl.evaluation.evaluate import evaluate_run
from seqrl.loading import load_run
from tests.helpers.envs import register


def test_legacy_dt_run_directory_still_loads_evaluates_and_reports(tmp_path):
    """A run directory written before model families (tests/fixtures/legacy_dt_run) is a DT run."""
    import shutil
    from pathlib import Path

    from seqrl.experiments.report import collect

    register()  # the toy env the legacy run was trained on
    fixture = Path(__file__).parents[2] / "fixtures" / "legacy_dt_run"
    run_dir = tmp_path / "legacy"
    shutil.copytree(fixture, run_dir)
    payload = load_checkpoint(run_dir)
    assert "family" not in payload and "family" not in json.loads((run_dir / "config.json").read_text())
    run = load_run(run_dir)
    assert run.family == "dt" and run.config.model == "tokenized-spread" and run.tokenizer is not None
    before = json.loads((fixture / "eval.json").read_text())
    report = evaluate_run(run_dir, episodes=before["episodes"], device="cpu")
    for old, new in zip(before["results"], report["results"]):
        assert old["target"] == new["target"]
        np.testing.assert_allclose(old["returns"], new["returns"], rtol=1e-5)
    records = collect(tmp_path)
    assert [r.model for r in records] == ["tokenized-spread"]
