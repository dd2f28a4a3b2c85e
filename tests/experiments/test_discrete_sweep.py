"""A sweep and its report on Discrete(n) data work unchanged (issue 28): DT representations and
BC on CartPole data saved in the Minari store, evaluated in the real env, reported in one table."""

from __future__ import annotations

import json

from seqrl.data.sources import load_dataset, save_dataset
from seqrl.experiments.report import write_report
from seqrl.experiments.spec import expand
from seqrl.experiments.sweep import run_sweep
from tests.helpers.discrete import ENV_ID, cartpole_dataset
from tests.helpers.dt import SWEEP_TINY_DEFAULTS

# The tiny sweep's settings, less --num-bins: a discrete action is not binned (refused by name).
DEFAULTS = {k: v for k, v in SWEEP_TINY_DEFAULTS.items() if k != "num_bins"}


def test_a_sweep_over_discrete_data_trains_evaluates_and_reports(tmp_path, minari_root):
    data = cartpole_dataset(episodes=6)
    save_dataset(data, "seqrl/cartpole-tiny-v0", ENV_ID, ref_min_score=10.0, ref_max_score=40.0)
    assert load_dataset("cartpole-tiny").num_actions == 2
    sweep = expand({"name": "discrete", "defaults": DEFAULTS, "eval": {"episodes": 2}, "experiments": {
        "dt": {"datasets": ["cartpole-tiny"], "models": ["continuous", "tokenized"]},
        "bc": {"datasets": ["cartpole-tiny"], "models": ["bc"]},
    }})
    result = run_sweep(sweep, tmp_path / "out", workers=1, threads=1)
    assert sorted(result.names("done")) == sorted(r.name for r in sweep.runs) and len(sweep.runs) == 3
    for run in sweep.runs:
        report = json.loads((tmp_path / "out" / run.name / "eval.json").read_text())
        assert all(1 <= r <= 40 for res in report["results"] for r in res["returns"])  # CartPole, capped at 40
    rows = write_report(tmp_path / "out", plots=False)["rows"]
    assert {row["model"] for row in rows} >= {"continuous", "tokenized", "bc"}
