"""`seqrl demo --quick` end to end: datasets, four trained representations, table, plot, reuse."""

from __future__ import annotations

import json

from seqrl.cli import main
from seqrl.config import VARIANTS
from seqrl.data.sources import local_dataset_ids
from seqrl.demo import PLOT_FILE, RECIPES, SUMMARY_FILE


def test_quick_demo_end_to_end_and_rerun_reuses_everything(tmp_path, minari_root, capsys):
    out = tmp_path / "demo"
    main(["demo", "--quick", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    for variant in VARIANTS:
        assert f"DT {variant}" in printed
    assert "score" in printed and "medium-expert data" in printed and PLOT_FILE in printed

    # The datasets went to the normal store (here the test's MINARI_DATASETS_PATH).
    assert {f"seqrl/{r}-quick-v0" for r in RECIPES} <= set(local_dataset_ids(minari_root))
    png = (out / PLOT_FILE).read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert list(summary["variants"]) == list(VARIANTS)
    for report in summary["variants"].values():
        assert report["step"] == summary["steps"]
        assert [p["step"] for p in report["curve"]] == [5, 10]
        assert all(r["score_mean"] is not None for r in report["results"])
    random_row = next(row for row in summary["datasets"] if "random" in row["dataset"])
    assert abs(random_row["score_mean"]) < 50  # random data scores near 0 by construction

    # Re-running trains and evaluates nothing again: checkpoints and results are untouched.
    checkpoints = {v: (out / "runs" / v / "checkpoints" / "latest.pt").stat().st_mtime_ns for v in VARIANTS}
    main(["demo", "--quick", "--out", str(out), "--no-progress"])
    assert "DT continuous" in capsys.readouterr().out
    again = json.loads((out / SUMMARY_FILE).read_text())
    assert again["variants"] == summary["variants"]
    assert {v: (out / "runs" / v / "checkpoints" / "latest.pt").stat().st_mtime_ns for v in VARIANTS} == checkpoints


def test_interrupted_demo_finishes_the_missing_work(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["demo", "--quick", "--out", str(out), "--no-progress"])
    capsys.readouterr()
    # Lose one variant's final evaluation and last curve point, as if killed while evaluating.
    run = out / "runs" / "tokenized"
    (run / "eval.json").unlink()
    curve = json.loads((run / "curve.json").read_text())
    (run / "curve.json").write_text(json.dumps(curve[:1]))
    main(["demo", "--quick", "--out", str(out), "--no-progress"])
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert [p["step"] for p in summary["variants"]["tokenized"]["curve"]] == [5, 10]
    assert (run / "eval.json").exists()
