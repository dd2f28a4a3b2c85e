"""Key-to-Door end to end (issue 28, section 4): a tiny DT trains on DoorKey data and evaluates with a
success rate; experiments/keydoor.yaml expands to the DT, BC and 10% BC arms, runs at tiny size on
tiny keydoor datasets, and experiments/keydoor_tables.py turns its runs into results.json and a table."""

from __future__ import annotations

import importlib.util
import sys
import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("minigrid")

from seqrl.collect.recipes import build_recipe  # noqa: E402
from seqrl.data.sources import save_dataset  # noqa: E402
from seqrl.evaluation.rollout import evaluate  # noqa: E402
from seqrl.experiments.spec import expand  # noqa: E402
from seqrl.experiments.sweep import run_sweep  # noqa: E402
from seqrl.loading import load_run  # noqa: E402
from seqrl.train import train  # noqa: E402
from tests.helpers.dt import SWEEP_TINY_DEFAULTS, tiny_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "keydoor.yaml"


def _tables():
    # the script imports run_tables from beside it, as it does when run as `python experiments/...`
    if str(ROOT / "experiments") not in sys.path:
        sys.path.insert(0, str(ROOT / "experiments"))
    spec = importlib.util.spec_from_file_location("keydoor_tables", ROOT / "experiments" / "keydoor_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def keydoor_data(minari_root):
    """Tiny keydoor-random and keydoor-mixed datasets in the (per-test) Minari store."""
    out = {}
    for name in ("keydoor-random", "keydoor-mixed"):
        data, save_args = build_recipe(name, 1500, seed=0, n_envs=2, reference_episodes=2)
        save_dataset(data, f"seqrl/{name}-v0", data.metadata["env_id"], **save_args)
        out[name] = data
    return out


def test_a_tiny_dt_trains_on_doorkey_and_reports_a_success_rate(tmp_path, keydoor_data):
    cfg = tiny_config(tmp_path, dataset="keydoor-mixed", num_bins=256, rtg_scale=1.0, targets=(1.0,), steps=6,
                      checkpoint_every=6)
    trained = train(cfg)
    run = load_run(tmp_path / "run")
    assert run.spec.discrete and run.spec.num_actions == 5 and run.spec.env_id == "seqrl/DoorKey-5x5-v0"
    (result,) = evaluate(trained.model, trained.spec, config=trained.config, episodes=3, seed=0,
                         max_episode_steps=30, progress=False)
    assert 0.0 <= result["success_rate"] <= 1.0 and len(result["successes"]) == 3
    assert all(r > 0 for r, s in zip(result["returns"], result["successes"]) if s)
    assert all(r == 0 for r, s in zip(result["returns"], result["successes"]) if not s)


def test_the_spec_has_dt_bc_and_top10_bc_on_both_datasets_with_three_seeds():
    sweep = expand(yaml.safe_load(SPEC.read_text()))
    names = {run.name for run in sweep.runs}
    assert len(sweep.runs) == 24
    for dataset in ("keydoor-random", "keydoor-mixed"):
        for seed in range(3):
            assert {f"dt/{dataset}/continuous+argmax/s{seed}", f"dt/{dataset}/continuous+sample/s{seed}",
                    f"bc/{dataset}/bc+all/s{seed}",
                    f"bc/{dataset}/bc+top10/s{seed}"} <= names
    top10 = next(run for run in sweep.runs if run.name == "bc/keydoor-random/bc+top10/s0")
    assert top10.config("out").top_fraction == 0.1
    sample = next(run for run in sweep.runs if run.name == "dt/keydoor-mixed/continuous+sample/s2")
    assert sample.config("out").decode == "sample" and sample.config("out").targets == (1.0,)


def test_the_sweep_runs_tiny_and_the_table_script_reports_success_rates(tmp_path, keydoor_data, capsys):
    spec = yaml.safe_load(SPEC.read_text())
    tiny = {k: v for k, v in SWEEP_TINY_DEFAULTS.items() if k not in ("num_bins", "targets", "rtg_scale")}
    spec["defaults"] = {**spec["defaults"], **tiny}
    spec["eval"] = {"episodes": 2}
    for experiment in spec["experiments"].values():
        experiment["seeds"] = 1
    spec["experiments"]["dt"]["datasets"] = spec["experiments"]["bc"]["datasets"] = ["keydoor-mixed"]
    sweep = expand(spec)
    result = run_sweep(sweep, tmp_path / "runs", workers=1, threads=1)
    assert sorted(result.names("done")) == sorted(run.name for run in sweep.runs) and len(sweep.runs) == 4
    _tables().main([str(tmp_path / "runs"), "--out", str(tmp_path / "table")])
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "table" / "results.json").read_text())
    arms = results["keydoor-mixed"]
    assert set(arms) == {"continuous+argmax", "continuous+sample", "bc+all", "bc+top10"}
    for arm in arms.values():
        assert set(arm["seeds"]) == {"0"} and 0.0 <= arm["success_mean"] <= 1.0 and arm["success_std"] == 0.0
        assert arm["seeds"]["0"]["episodes"] == 2
    assert arms["continuous+sample"]["seeds"]["0"]["target"] == 1.0 and arms["bc+all"]["seeds"]["0"]["target"] is None
    for label in ("| keydoor-mixed | DT, argmax (target 1.0) |", "| keydoor-mixed | DT, sampled (target 1.0) |",
                  "| keydoor-mixed | BC |", "| keydoor-mixed | 10% BC |"):
        assert label in out
    assert (tmp_path / "table" / "table.md").read_text() == out


def test_the_table_script_takes_mean_and_std_over_seeds(tmp_path, capsys):
    for seed, rate in enumerate((0.5, 1.0)):
        run = tmp_path / "dt" / "keydoor-random" / "continuous+sample" / f"s{seed}"
        run.mkdir(parents=True)
        result = {"target": 1.0, "episodes": 2, "return_mean": rate / 2, "length_mean": 10.0, "success_rate": rate}
        low = {**result, "target": 0.5, "success_rate": 0.0}
        (run / "eval.json").write_text(json.dumps({"results": [low, result]}))
    _tables().main([str(tmp_path), "--out", str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert "| keydoor-random | DT, sampled (target 1.0) | 75.0% ± 25.0 | 50%, 100% | 0.375 |" in out
