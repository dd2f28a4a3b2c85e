"""Issue 30, "everything regenerates": the table scripts of experiments/ print docs/results' committed
tables byte for byte from committed data alone (the report CSVs and the committed run files).

Tables whose runs were not kept (lm_init_tables.md, tt_goal_tables.md, the TT's per-run rows,
halfcheetah_failure.md) cannot be regenerated; docs/RESULTS.md's appendix lists them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout


def _committed(path: Path) -> str:
    return path.read_text()


def test_paper_tables_regenerate_from_the_committed_report_csv():
    out = _run("paper_tables.py", "docs/results/results.csv")
    assert out == _committed(RESULTS / "paper_tables.md")


def test_agnostic_tables_regenerate_from_the_committed_report_csvs():
    out = _run("agnostic_tables.py", "docs/results/agnostic/results.csv", "docs/results/results.csv",
               "--halfcheetah-rerun", "docs/results/agnostic/halfcheetah-rerun/results.csv")
    assert out == _committed(RESULTS / "agnostic" / "agnostic_tables.md")


def test_keydoor_table_and_results_regenerate_from_the_committed_runs(tmp_path):
    out = _run("keydoor_tables.py", "docs/results/keydoor/runs", "--out", str(tmp_path))
    assert out == _committed(RESULTS / "keydoor" / "table.md")
    assert (tmp_path / "table.md").read_bytes() == (RESULTS / "keydoor" / "table.md").read_bytes()
    assert (tmp_path / "results.json").read_bytes() == (RESULTS / "keydoor" / "results.json").read_bytes()


def test_tt_tables_regenerate_their_csv_part_and_the_committed_rerun():
    out = _run("tt_tables.py", "docs/results/tt/results.csv", "docs/results/results.csv")
    committed = _committed(RESULTS / "tt" / "tt_tables.md")
    assert committed.startswith(out + "\n")  # the per-run rows after it need runs that were not kept
    rerun = RESULTS / "tt" / "rerun-2026-12-07"
    out = _run("tt_tables.py", str(rerun / "results.csv"), "docs/results/results.csv", "--runs", str(rerun))
    assert out == _committed(rerun / "tt_tables.md")


def test_the_verdict_effects_regenerate():
    pytest.importorskip("scipy")
    assert _run("verdict_effects.py") == _committed(RESULTS / "verdicts.md")


def test_every_effect_in_the_results_verdict_table_comes_from_verdicts_md():
    """Each 'difference [low, high]' quoted in RESULTS.md's verdict table is a row of verdicts.md."""
    import re

    text = (ROOT / "docs" / "RESULTS.md").read_text()
    table = text.split("## Verdicts", 1)[1].split("\n## ", 1)[0]
    effects = re.findall(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]", table)
    assert effects, "no effect with an interval in the verdict table"
    committed = _committed(RESULTS / "verdicts.md")
    for effect in effects:
        assert effect in committed, effect


def test_the_prediction_table_regenerates_from_predict_json():
    out = _run("predict_tables.py", "docs/results/predict/hopper-medium", "docs/results/predict/walker2d-medium")
    assert out == _committed(RESULTS / "predict" / "predict_tables.md")


def test_discrete_tables_regenerate_from_the_committed_runs(tmp_path):
    out = _run("discrete_tables.py", "docs/results/discrete/runs", "--out", str(tmp_path))
    assert out == _committed(RESULTS / "discrete" / "table.md")
    assert (tmp_path / "results.json").read_bytes() == (RESULTS / "discrete" / "results.json").read_bytes()


def test_convergence_table_regenerates_from_the_committed_runs(tmp_path):
    out = _run("convergence_tables.py", "docs/results/convergence/runs", "--out", str(tmp_path), "--no-plot")
    assert out == _committed(RESULTS / "convergence" / "table.md")
    assert (tmp_path / "curves.json").read_bytes() == (RESULTS / "convergence" / "curves.json").read_bytes()


def test_the_fixed_tt_tables_regenerate_from_their_committed_runs(tmp_path):
    """docs/results/tt_fixed (issue 25): the TT's hopper curve beside the DT's, the goal table and
    tt.yaml main's table, from the committed run files."""
    fixed = RESULTS / "tt_fixed"
    out = _run("convergence_tables.py", "docs/results/convergence/runs", "docs/results/tt_fixed/runs/tt_long",
               "--datasets", "hopper-medium", "--out", str(tmp_path), "--no-plot")
    assert out == _committed(fixed / "hopper_curves" / "table.md")
    assert (tmp_path / "curves.json").read_bytes() == (fixed / "hopper_curves" / "curves.json").read_bytes()
    assert "reward/hopper-medium/tt | 3 |" in out  # the TT's three seeds beside the DT's
    # walker2d-medium: the no-dropout runs were stopped at 15,400 updates (no eval.json), so unfinished ones count
    out = _run("convergence_tables.py", "docs/results/tt_fixed/runs/tt_long", "--datasets", "walker2d-medium",
               "--include-unfinished", "--out", str(tmp_path / "walker2d"), "--no-plot")
    assert out == _committed(fixed / "walker2d_curves" / "table.md")
    assert (tmp_path / "walker2d" / "curves.json").read_bytes() == (fixed / "walker2d_curves" / "curves.json").read_bytes()
    out = _run("tt_goal_tables.py", "docs/results/tt_fixed/runs/tt_goal")
    assert out == _committed(fixed / "goal_tables.md")
    out = _run("tt_tables.py", "docs/results/tt_fixed/tt_main/results.csv", "docs/results/results.csv",
               "--runs", "docs/results/tt_fixed/runs/tt")
    assert out == _committed(fixed / "tt_main" / "tt_tables.md")


def test_the_claims_tables_regenerate_from_the_committed_runs(tmp_path):
    """experiments/claims.yaml (issue 30 §2): scores and effects with bootstrap intervals, from the
    committed run files; the verdict table's claims.yaml rows come from the same comparisons."""
    out = _run("claims_tables.py", "docs/results/claims/runs", "--out", str(tmp_path))
    assert out == _committed(RESULTS / "claims" / "table.md")
    assert (tmp_path / "results.json").read_bytes() == (RESULTS / "claims" / "results.json").read_bytes()
    assert "| C1 | hopper-medium: DT pooled tokenized − DT continuous | -5.0 [-11.5, +0.6] | 5, 5 | not resolved |" in out
    verdicts = _committed(RESULTS / "verdicts.md")
    for line in out.splitlines():
        if line.startswith("| C") and "comparison" not in line:
            interval = line.split(" | ")[2]
            assert interval in verdicts, f"claims_tables.py's {line!r} is not in verdicts.md"
    # BC's curves at 20,000 updates; the runs evaluated only at their end have no curve and no row
    curves = _run("convergence_tables.py", "docs/results/claims/runs", "--experiments", "c4-bc-20k",
                  "--out", str(tmp_path / "bc"), "--no-plot")
    assert curves == _committed(RESULTS / "claims" / "bc_curves" / "table.md")
    assert (tmp_path / "bc" / "curves.json").read_bytes() == (RESULTS / "claims" / "bc_curves" / "curves.json").read_bytes()
    assert "c4-bc-20k/hopper-medium/bc+all | 5 |" in curves and "c1-hopper" not in curves
