"""experiments/graph_stitching.py end to end on a tiny setting: random walks collected, a small
DT trained a few hundred steps and conditioned on return 0 finds shorter paths to the goal than
the random walks it learnt from; results.json and the histogram are written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _script():
    spec = importlib.util.spec_from_file_location("graph_stitching", EXPERIMENTS / "graph_stitching.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_path_measures_count_optimal_paths_against_the_start_distance():
    measures = _script().path_measures(
        lengths=np.array([2, 3, 5, 20]), successes=np.array([True, True, True, False]), starts=np.array([1, 2, 1, 3]),
        distances=np.array([0, 2, 1, 4]), cap=20)
    # start 1 (distance 2) in 2: optimal; start 2 (distance 1) in 3: not; start 1 in 5: not; not reached.
    assert measures["optimal"] == 0.25 and measures["success"] == 0.75
    assert measures["path_lengths"] == [2, 3, 5, 21] and measures["shortest"] == [2, 1, 2, 4]
    assert measures["excess_mean_reached"] == (0 + 2 + 3) / 3


def test_the_script_trains_a_dt_that_walks_shorter_paths_than_the_random_walks(tmp_path):
    out = tmp_path / "out"
    results = _script().main(["--seeds", "0", "--transitions", "2000", "--steps", "250", "--episodes", "40",
                              "--no-bc", "--embed-dim", "32", "--out", str(out)])
    assert (out / "path_lengths.png").stat().st_size > 1000
    written = json.loads((out / "results.json").read_text())
    assert written["summary"] == results["summary"] and set(written["summary"]) == {"random_walks", "dt"}
    walks, dt = written["seeds"][0]["random_walks"], written["seeds"][0]["dt"]
    assert dt["episodes"] == 40 and len(dt["path_lengths"]) == 40
    # The random walks rarely take a shortest path; the DT asked for the highest return mostly does.
    assert walks["optimal"] < 0.2 and walks["success"] < 0.6
    assert dt["success"] > 0.8 and dt["optimal"] > 0.5 and dt["optimal"] > 3 * walks["optimal"]
    assert np.mean(dt["path_lengths"]) < np.mean(walks["path_lengths"]) - 5
