"""experiments/paper_tables.py: RESULTS.md's pivot tables from the CSV seqrl report writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seqrl.experiments.report import write_report
from seqrl.experiments.spec import Finetune

from tests.helpers.runs import fake_run

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "paper_tables.py"


def test_tables_arrange_the_reports_rows_by_the_papers_questions(tmp_path):
    for seed, score in enumerate([30.0, 34.0, 38.0]):
        fake_run(tmp_path, "main", "hopper-medium", "tokenized", seed, {3600.0: score, 1800.0: 1.0})
        fake_run(tmp_path, "ablations", "hopper-medium", "tokenized", seed, {3600.0: score - 10}, label="no-offset",
                 options={"token_offsets": False})
        for n, binning, offset in [(100, "quantile", 0.0), (100, "uniform", 5.0), (1000, "quantile", -5.0)]:
            fake_run(tmp_path, "bins", "hopper-medium", "tokenized", seed, {3600.0: score + offset},
                     label=f"num_bins={n},binning={binning}", options={"num_bins": n, "binning": binning})
        fake_run(tmp_path, "transfer-a-b", "hopper-medium", "tokenized", seed, {3600.0: score + 1},
                 label="ft-embeddings", finetune=Finetune(f"main/walker/tokenized/s{seed}", "embeddings"))
    fake_run(tmp_path, "main", "hopper-medium", "continuous", 0, {3600.0: 20.0})  # one seed only
    fake_run(tmp_path, "budget-x", "hopper-medium", "continuous", 0, {3600.0: 25.0}, losses=[1.0, 0.125])
    write_report(tmp_path, tmp_path / "report", plots=False)

    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "report" / "results.csv")],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    # Higher target only (3600, not 1800); mean ± population std over the 3 seeds.
    assert "| tokenized | 34.0 ± 3.3 |" in lines
    assert "| continuous | 20.0 ± 0.0 (1 seed) |" in lines
    assert "| tokenized-spread | – |" in lines
    assert "| tokenized | 24.0 ± 3.3 | – | 34.0 ± 3.3 |" in lines  # no-offset, action-index, main
    assert "| tokenized | 35.0 ± 3.3 | – | 34.0 ± 3.3 |" in lines  # ft-embeddings, ft-all, scratch
    assert "| 100 | 34.0 ± 3.3 | 39.0 ± 3.3 |" in lines and "| 1000 | 29.0 ± 3.3 | – |" in lines
    assert "| mean over bins | 31.5 | – |" in lines  # uniform lacks 1000 bins: no mean
    assert "| 100 | 0.2500 ± 0.0000 | 0.2500 ± 0.0000 |" in lines  # fake_run's last loss
    assert "| main: hopper-medium | 1.0 | 1.0 | – | – |" in lines  # fake_run's 60 s per run
    assert "| 100 | 1.6 |" not in lines and "| 100 | 0.0 |" in lines  # equal fake losses: no gap
    assert "| continuous | 25.0 ± 0.0 (1 seed) | 0.1250 ± 0.0000 | 20.0 ± 0.0 (1 seed) | 0.2500 ± 0.0000 |" in lines
    # 20 runs of fake_run's 60 s: 1200 s = 0.33 worker-hours.
    assert "In all: 20 evaluated runs, 0.3 worker-hours (0.2 h of wall-clock with 2 workers)." in lines


def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("paper_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loss_gap_with_unequal_losses(tmp_path):
    """Quantile's final loss below uniform's, in % of uniform's: 100 * (u - q) / u."""
    for seed in range(3):
        # fake_run's final loss is the last training record: quantile 0.2, uniform 0.25 and,
        # at 1000 bins, quantile 0.3 against uniform 0.24 (quantile worse: a negative gap).
        for n, binning, loss in [(100, "quantile", 0.2), (100, "uniform", 0.25), (1000, "quantile", 0.3), (1000, "uniform", 0.24)]:
            fake_run(tmp_path, "bins", "hopper-medium", "tokenized", seed, {3600.0: 30.0},
                     label=f"num_bins={n},binning={binning}", options={"num_bins": n, "binning": binning},
                     losses=[1.0, loss])
    write_report(tmp_path, tmp_path / "report", plots=False)
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "report" / "results.csv")],
                         capture_output=True, text=True, check=True).stdout
    gaps = out.split("quantile's final loss below uniform's")[1].splitlines()
    assert "| 100 | 20.0 |" in gaps  # 100 * (0.25 - 0.2) / 0.25
    assert "| 1000 | -25.0 |" in gaps  # 100 * (0.24 - 0.3) / 0.24
    loss_gap = _script().loss_gap
    assert loss_gap({"final_loss_mean": "0.09"}, {"final_loss_mean": "0.1"}) == "10.0"
    assert loss_gap({"final_loss_mean": "0.1"}, {"final_loss_mean": "0.08"}) == "-25.0"
    assert loss_gap(None, {"final_loss_mean": "0.1"}) == "–"
    assert loss_gap({"final_loss_mean": ""}, {"final_loss_mean": "0.1"}) == "–"
