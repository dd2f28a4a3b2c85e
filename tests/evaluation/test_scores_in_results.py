"""Normalized score mean and std in evaluation results, against hand-computed values."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from seqrl.evaluation.evaluate import evaluate, evaluate_run, summarize

from tests.helpers.envs import register
from tests.helpers.envs import K, trained


@pytest.fixture(autouse=True)
def _env():
    register()


def test_summarize_by_hand(tmp_path):
    result = trained(tmp_path)
    spec = dataclasses.replace(result.spec, ref_min_score=-3.0, ref_max_score=0.0)
    # Returns -3, 0 and -1.5 are scores 0, 100 and 50: mean 50, population std sqrt(5000 / 3).
    out = summarize(-1.0, np.array([-3.0, 0.0, -1.5]), np.array([4, 6, 5]), spec, seed=7)
    assert out["score_mean"] == pytest.approx(50.0)
    assert out["score_std"] == pytest.approx(math.sqrt(5000 / 3))  # 40.82...
    assert out["return_mean"] == pytest.approx(-1.5) and out["return_std"] == pytest.approx(math.sqrt(1.5))
    assert out["length_mean"] == 5.0 and out["length_std"] == pytest.approx(math.sqrt(2 / 3))
    assert out["episodes"] == 3 and out["seed"] == 7 and out["target"] == -1.0
    # Without reference returns there is no score, and no std of one.
    none = summarize(-1.0, np.array([-3.0, 0.0]), np.array([4, 6]), dataclasses.replace(spec, ref_min_score=None), seed=0)
    assert none["score_mean"] is None and none["score_std"] is None


def test_success_rate_and_steps_to_goal_by_hand(tmp_path):
    result = trained(tmp_path)
    out = summarize(None, np.array([1.0, 0.0, 1.0, 1.0]), np.array([40, 500, 60, 20]), result.spec, seed=0,
                    successes=np.array([True, False, True, True]))
    assert out["success_rate"] == 0.75 and out["successes"] == [True, False, True, True]
    assert out["steps_to_goal_mean"] == pytest.approx(40.0) and out["steps_to_goal_std"] == pytest.approx(math.sqrt(800 / 3))
    never = summarize(None, np.zeros(2), np.array([500, 500]), result.spec, seed=0, successes=np.zeros(2, bool))
    assert never["success_rate"] == 0.0 and never["steps_to_goal_mean"] is None
    # an env that reports no success gets no success fields (and the table no success column)
    assert "success_rate" not in summarize(None, np.zeros(2), np.array([5, 5]), result.spec, seed=0)


def test_score_std_of_a_real_evaluation_and_in_eval_json(tmp_path):
    result = trained(tmp_path)
    [res] = evaluate(result.model, result.spec, context_len=K, episodes=6, seed=2, targets=(-1.0,))
    scores = 100 * (np.array(res["returns"]) + 3.0) / 3.0  # the test dataset's references: -3 and 0
    assert res["score_std"] > 0
    assert res["score_std"] == pytest.approx(scores.std())
    assert res["score_std"] == pytest.approx(100 / 3 * res["return_std"])
    report = evaluate_run(result.run_dir, episodes=6, seed=2, targets=(-1.0,), device="cpu")
    written = json.loads((result.run_dir / "eval.json").read_text())
    assert written["results"][0]["score_std"] == pytest.approx(scores.std())
    assert report["results"][0]["score_std"] == written["results"][0]["score_std"]


def test_evaluate_run_with_another_env_than_the_datasets(tmp_path):
    """`seqrl eval --env`: a run whose dataset records no environment is evaluated in the one
    given, and the report says so (mutation testing: the override was never exercised)."""
    from seqrl.train import train

    from tests.helpers.dt import make_dataset, tiny_config
    from tests.helpers.envs import ACT_DIM, ENV_ID, OBS_DIM, expected_lengths

    data = make_dataset(obs_dim=OBS_DIM, act_dim=ACT_DIM, name="no-env")
    data.metadata.update(env_id=None, ref_min_score=-3.0, ref_max_score=0.0)
    result = train(tiny_config(tmp_path, run_dir=str(tmp_path / "run"), steps=2), dataset=data)
    report = evaluate_run(result.run_dir, episodes=3, seed=4, targets=(-1.0,), env_id=ENV_ID, device="cpu")
    assert report["env_id"] == ENV_ID and report["device"] == "cpu"
    assert report["results"][0]["lengths"] == expected_lengths(4, 3)
    assert report["results"][0]["score_mean"] == pytest.approx(100 * (report["results"][0]["return_mean"] + 3) / 3)


def test_eval_json_records_what_was_evaluated(tmp_path):
    result = trained(tmp_path)
    video = tmp_path / "episode.gif"
    report = evaluate_run(result.run_dir, episodes=2, seed=1, targets=(-1.0,), device="cpu", video=video)
    written = json.loads((result.run_dir / "eval.json").read_text())
    assert written == json.loads(json.dumps(report))
    assert written["run_dir"] == str(result.run_dir) and written["step"] == 4
    assert written["model"] == "continuous" and written["dataset"] == result.spec.dataset
    assert written["vectorization"] == "sync" and written["episodes"] == 2 and written["seed"] == 1
    assert (written["ref_min_score"], written["ref_max_score"]) == (-3.0, 0.0)
    assert 0 < written["wall_time_s"] < 600
    assert written["video"] == str(video) and video.stat().st_size > 0
