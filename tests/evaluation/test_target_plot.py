"""Achieved against target return (the DT paper's "one model, a distribution of policies"):
`seqrl eval RUN_DIR --targets ... --plot FILE`, and the report's targets plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqrl.cli import main
from seqrl.data.sources import save_dataset
from seqrl.evaluation.evaluate import evaluate_run
from seqrl.experiments.report import write_report
from seqrl.families.bc import BCConfig
from seqrl.train import train
from tests.helpers.dt import make_dataset, tiny_config

TARGETS = ["2", "5", "10", "20", "40", "80"]


@pytest.fixture
def pole(minari_root) -> str:
    data = make_dataset(obs_dim=4, act_dim=1, episodes=4, name="pole-targets")
    save_dataset(data, "seqrl/pole-targets-v0", "InvertedPendulum-v5", ref_min_score=0.0, ref_max_score=1000.0)
    return "pole-targets"


def test_eval_plot_draws_six_targets_and_records_them(tmp_path, pole, capsys):
    import matplotlib.image

    run = train(tiny_config(tmp_path, dataset=pole, steps=4, run_dir=str(tmp_path / "runs" / "dt"), device="cpu"))
    plot = tmp_path / "targets.png"
    main(["eval", str(run.run_dir), "--episodes", "2", "--targets", *TARGETS, "--plot", str(plot), "--no-progress"])
    assert f"and {plot}" in capsys.readouterr().out.replace("\n", "")
    report = json.loads((run.run_dir / "eval.json").read_text())
    assert [r["target"] for r in report["results"]] == [float(t) for t in TARGETS]
    assert report["plot"] == str(plot)
    image = matplotlib.image.imread(plot)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas


def test_eval_plot_of_an_unconditioned_run_is_refused(tmp_path, pole, capsys):
    cfg = BCConfig(dataset=pole, steps=2, warmup_steps=1, hidden_dim=8, progress=False, device="cpu",
                   run_dir=str(tmp_path / "bc"))
    train(cfg)
    with pytest.raises(SystemExit):
        main(["eval", str(tmp_path / "bc"), "--episodes", "1", "--plot", str(tmp_path / "x.png"), "--no-progress"])
    assert "not conditioned on a target return" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_report_draws_achieved_against_target_with_bc_as_a_flat_line(tmp_path, pole):
    root = tmp_path / "runs"
    dt = train(tiny_config(tmp_path, dataset=pole, steps=4, run_dir=str(root / "dt"), device="cpu"))
    evaluate_run(dt.run_dir, episodes=2, targets=[float(t) for t in TARGETS])
    bc = train(BCConfig(dataset=pole, steps=2, warmup_steps=1, hidden_dim=8, progress=False, device="cpu",
                        run_dir=str(root / "bc")))
    evaluate_run(bc.run_dir, episodes=2)
    result = write_report(root)
    plots = [p for p in result["files"] if p.name.startswith("targets-")]
    assert len(plots) == 1 and plots[0].stat().st_size > 10_000
    # Each DT row of the table is one of the six targets; the BC row has none.
    rows = [r for r in result["rows"] if r["model"] == "continuous"]
    assert sorted(r["target"] for r in rows) == sorted(float(t) for t in TARGETS)
    assert [r["target"] for r in result["rows"] if r["model"] == "bc"] == [None]
    assert np.isfinite([r["return_mean"] for r in result["rows"]]).all()
