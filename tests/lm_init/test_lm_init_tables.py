"""experiments/lm_init_tables.py: steps and training seconds to within 2 points of an arm's best,
computed by hand on made-up metrics."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "lm_init_tables.py"


def _module():
    spec = importlib.util.spec_from_file_location("lm_init_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(root: Path, name: str, scores: dict[int, float], steps_per_sec: float, finished: bool = True) -> None:
    run = root / name
    run.mkdir(parents=True)
    lines = []
    for step in (10, 20, 30):
        lines.append({"step": step, "loss": 1.0, "steps_per_sec": steps_per_sec})
        lines.append({"step": step, "kind": "eval", "eval/target_100/score_mean": scores[step] - 50,
                      "eval/target_3600/score_mean": scores[step]})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if finished:
        (run / "eval.json").write_text("{}")  # the final evaluation a finished sweep run writes


def test_steps_and_seconds_to_within_two_points_of_the_best(tmp_path):
    tables = _module()
    _run(tmp_path, "text/hopper-medium/continuous+plain/s0", {10: 40.0, 20: 49.0, 30: 50.0}, steps_per_sec=10.0)
    _run(tmp_path, "text/hopper-medium/continuous+plain/s1", {10: 44.0, 20: 47.0, 30: 52.0}, steps_per_sec=5.0)
    _run(tmp_path, "random/hopper-medium/continuous/s0", {10: 10.0, 20: 30.0, 30: 20.0}, steps_per_sec=10.0)
    _run(tmp_path, "text/hopper-medium/continuous+frozen/s0", {10: 5.0, 20: 10.0, 30: 15.0}, steps_per_sec=10.0)
    _run(tmp_path, "spread/hopper-medium/tokenized-spread+text/s0", {10: 9.0, 20: 9.0, 30: 9.0}, steps_per_sec=4.0)
    _run(tmp_path, "spread/hopper-medium/tokenized-spread+random/s0", {10: 1.0, 20: 10.0, 30: 2.0}, steps_per_sec=4.0)
    (tmp_path / "pretrain/markov/lm/s0").mkdir(parents=True)  # an LM run: no evaluations, skipped
    (tmp_path / "pretrain/markov/lm/s0/metrics.jsonl").write_text(json.dumps({"step": 10, "loss": 3.0}) + "\n")
    rows = {r["arm"]: r for r in tables.arm_rows(tmp_path)}
    assert set(rows) == {"text/continuous+plain", "random/continuous", "text/continuous+frozen",
                         "spread/tokenized-spread+text", "spread/tokenized-spread+random"}
    text = rows["text/continuous+plain"]
    # Mean curve 42, 48, 51 at the highest target (3600): best 51, first within 2 points at step 30.
    assert text["best"] == pytest.approx(51.0) and text["steps_to_best"] == 30
    assert text["final_mean"] == pytest.approx(51.0) and text["final_std"] == pytest.approx(1.0)
    assert text["train_seconds_to_best"] == pytest.approx((3.0 + 6.0) / 2)  # 30 steps at 10/s and at 5/s
    assert text["curve_mean"] == pytest.approx(47.0)
    # Against the random arm (best 30): within 2 points (>= 28) already at step 10, 1 s and 2 s in.
    assert text["reference"] == "random/continuous" and text["steps_to_reference"] == 10
    assert text["train_seconds_to_reference"] == pytest.approx(1.5)
    random = rows["random/continuous"]
    assert random["best"] == 30.0 and random["steps_to_best"] == 20 and random["train_seconds_to_best"] == pytest.approx(2.0)
    assert random["steps_to_reference"] == 20  # its own best
    # The frozen arm plateaus low: its own best-2 comes soon, the random arm's best never.
    frozen = rows["text/continuous+frozen"]
    assert frozen["steps_to_best"] == 30 and frozen["steps_to_reference"] is None
    # Tokenized-spread arms are measured against the random tokenized-spread arm, not the DT's.
    spread = rows["spread/tokenized-spread+text"]
    assert spread["reference"] == "spread/tokenized-spread+random" and spread["steps_to_reference"] == 10
    assert spread["train_seconds_to_reference"] == pytest.approx(2.5)
    table = tables.markdown(list(rows.values()))
    assert "| hopper-medium | random/continuous | 1 | 20.0 ± 0.0 (step 30) | 30.0 | 20.0 | 20 | 2 | 20 | 2 |" in table
    assert "| hopper-medium | text/continuous+frozen | 1 | 15.0 ± 0.0 (step 30) | 15.0 | 10.0 | 30 | 3 | - | - |" in table


def test_an_arm_without_its_reference_has_none(tmp_path):
    tables = _module()
    _run(tmp_path, "text/walker2d-medium/continuous+plain/s0", {10: 1.0, 20: 2.0, 30: 3.0}, steps_per_sec=10.0)
    (row,) = tables.arm_rows(tmp_path)
    assert row["reference"] is None and row["steps_to_reference"] is None
    assert "| - | - |" in tables.markdown([row])


def test_plot_draws_every_arm_of_a_dataset_on_one_figure(tmp_path):
    tables = _module()
    runs = tmp_path / "runs"
    _run(runs, "random/hopper-medium/continuous/s0", {10: 10.0, 20: 30.0, 30: 20.0}, steps_per_sec=10.0)
    _run(runs, "text/hopper-medium/continuous+plain/s0", {10: 40.0, 20: 49.0, 30: 50.0}, steps_per_sec=10.0)
    _run(runs, "text/walker2d-medium/continuous+plain/s0", {10: 1.0, 20: 2.0, 30: 3.0}, steps_per_sec=10.0)
    drawn = tables.plot_arms(runs, tmp_path / "plots")
    assert drawn == {"hopper-medium": ["random/continuous", "text/continuous+plain"],
                     "walker2d-medium": ["text/continuous+plain"]}
    for dataset in drawn:
        png = (tmp_path / "plots" / f"lm_init-{dataset}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_unfinished_runs_are_left_out_unless_asked_for(tmp_path):
    tables = _module()
    _run(tmp_path, "random/hopper-medium/continuous/s0", {10: 10.0, 20: 30.0, 30: 20.0}, steps_per_sec=10.0)
    _run(tmp_path, "random/hopper-medium/continuous/s1", {10: 90.0, 20: 90.0, 30: 90.0}, steps_per_sec=10.0,
         finished=False)
    (row,) = tables.arm_rows(tmp_path)
    assert row["seeds"] == 1 and row["best"] == 30.0
    (row,) = tables.arm_rows(tmp_path, include_unfinished=True)
    assert row["seeds"] == 2 and row["best"] == pytest.approx(60.0)


@pytest.mark.parametrize("args, message", [
    (["missing"], "is not a directory"),
    (["."], "no finished, evaluated runs"),
    ([".", "--reference", "random"], "expected EXPERIMENT/MODEL"),
])
def test_bad_input_is_named(tmp_path, args, message):
    result = subprocess.run([sys.executable, str(SCRIPT), *args], check=False, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr
