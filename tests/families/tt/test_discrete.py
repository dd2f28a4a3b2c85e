"""The Trajectory Transformer on Discrete(n) actions (issue 28): the action dimension is one
token of n values (never binned), trained, saved, loaded and planning in the real CartPole env."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqrl.evaluation.evaluate import evaluate_run
from seqrl.families.tt.data import fit_discretizer, run_transitions
from seqrl.loading import load_run
from seqrl.train import train
from tests.helpers.discrete import MAX_STEPS, cartpole_dataset
from tests.helpers.tt import tiny_tt_config


@pytest.fixture(scope="module")
def data():
    return cartpole_dataset()


def test_the_action_column_is_one_token_per_action_index_whatever_the_bins(data):
    cfg = tiny_tt_config(num_bins=3, discount=0.99)
    joined = run_transitions(data, cfg)
    action = data.obs_dim  # [s_0 .. s_3, a, r, V]
    d = fit_discretizer(joined, cfg.num_bins, cfg.binning, num_actions=2, action_column=action)
    assert d.bins_per_feature[action] == 2 and d.values[action].tolist() == [0.0, 1.0]
    local = d.encode(joined)[:, action] - d.offsets[action]
    assert local.tolist() == data.actions[:, 0].tolist()  # token k is action k
    # Every other column is fitted exactly as without the index column.
    plain = fit_discretizer(joined, cfg.num_bins, cfg.binning)
    for i in range(joined.shape[1]):
        if i != action:
            assert d.edges[i].tolist() == plain.edges[i].tolist()
    # A rare action keeps its own token (quantile bins would merge it into its neighbour's bin).
    rare = joined.copy()
    rare[:, action] = 0.0
    rare[:3, action] = 1.0
    kept = fit_discretizer(rare, 100, "quantile", num_actions=2, action_column=action)
    assert kept.bins_per_feature[action] == 2


def test_tt_trains_saves_loads_and_plans_in_cartpole(tmp_path, data):
    cfg = tiny_tt_config(tmp_path, num_bins=16, steps=30, discount=0.99, termination_penalty="none", eval_episodes=2)
    train(cfg, dataset=data)
    run = tmp_path / "tt"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    actions = [m["loss/action"] for m in metrics if "loss/action" in m]
    assert actions[-1] < actions[0] and max(actions) < 0.75  # cross-entropy over 2 actions (ln 2 = 0.69), not 16 bins (ln 16 = 2.8)
    loaded = load_run(run)
    assert loaded.spec.num_actions == 2
    assert loaded.artefacts.bins_per_feature[data.obs_dim] == 2
    report = evaluate_run(run, episodes=2, settings={"horizon": 2, "beam_width": 4, "context_transitions": 2},
                          write=False)
    returns = report["results"][0]["returns"]
    assert len(returns) == 2 and all(1 <= r <= MAX_STEPS for r in returns)
