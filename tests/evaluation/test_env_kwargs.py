"""Datasets collected with environment keyword arguments are evaluated in that same environment."""

from __future__ import annotations

import json

from seqrl.loading import load_run
from seqrl.evaluation.evaluate import evaluate, evaluate_run
from seqrl.models.spec import DataSpec
from seqrl.train import train

from tests.helpers.dt import make_dataset, tiny_config
from tests.helpers.envs import ACT_DIM, ENV_ID, OBS_DIM, register


def test_the_datas_env_kwargs_reach_evaluation_and_survive_the_checkpoint(tmp_path):
    register()
    data = make_dataset(obs_dim=OBS_DIM, act_dim=ACT_DIM, name="seedlength")
    data.metadata.update(env_id=ENV_ID, ref_min_score=-3.0, ref_max_score=0.0, env_kwargs={"max_episode_steps": 2})
    assert DataSpec.from_dataset(data, rtg_scale=0.1, targets=(1.0,)).env_kwargs == {"max_episode_steps": 2}
    result = train(tiny_config(tmp_path, steps=2), dataset=data)
    run = load_run(result.run_dir)
    assert run.spec.env_kwargs == {"max_episode_steps": 2}
    lengths = evaluate(run.model, run.spec, config=run.config, episodes=4, device="cpu")[0]["lengths"]
    assert max(lengths) == 2  # the env's own episodes last 3 to 11 steps: the time limit came from the data
    report = evaluate_run(result.run_dir, episodes=3, device="cpu")
    assert max(report["results"][0]["lengths"]) == 2
    # A spec written before the field existed still loads (as the gymnasium defaults).
    old = {k: v for k, v in json.loads((result.run_dir / "metadata.json").read_text())["spec"].items() if k != "env_kwargs"}
    assert DataSpec.from_dict(old).env_kwargs is None
