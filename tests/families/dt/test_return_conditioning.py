"""The Decision Transformer's return conditioning, learnt end to end: on data where the return
says which of two behaviours an episode followed (and the states do not), a trained DT's
action must follow the target return it is given. This guards the plumbing that the DT paper's
"one model, a distribution of policies" (achieved against target return) rests on: the
return-to-go input, its scale, and the policy that feeds it, for pooled and spread actions."""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.data.sources import save_dataset
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.families import get_family
from seqrl.train import train
from tests.helpers.dt import tiny_config

GOOD, BAD = 0.7, -0.7  # every action feature of an episode; reward 1 a step for GOOD, 0 for BAD
STEPS = 10


def two_behaviour_dataset(episodes: int = 40, obs_dim: int = 3, act_dim: int = 2) -> TrajectoryDataset:
    rng = np.random.default_rng(0)
    eps = []
    for i in range(episodes):
        good = i % 2 == 0
        actions = np.clip((GOOD if good else BAD) + 0.05 * rng.normal(size=(STEPS, act_dim)), -1, 1)
        terminated = np.zeros(STEPS, bool)
        terminated[-1] = True
        eps.append(dict(observations=rng.normal(size=(STEPS + 1, obs_dim)),  # states carry no hint
                        actions=actions, rewards=np.full(STEPS, 1.0 if good else 0.0), terminations=terminated,
                        truncations=np.zeros(STEPS, bool)))
    meta = {"name": "two-behaviours", "env_id": None, "action_low": [-1.0] * act_dim, "action_high": [1.0] * act_dim}
    return TrajectoryDataset.from_episodes(eps, meta)


@pytest.mark.parametrize("model", ["continuous", "tokenized-spread"])
def test_a_trained_dt_acts_as_the_behaviour_its_target_return_names(tmp_path, minari_root, model):
    save_dataset(two_behaviour_dataset(), "seqrl/two-behaviours-v0", "InvertedPendulum-v5")
    run = train(tiny_config(tmp_path, dataset="two-behaviours", model=model, steps=300, warmup_steps=20,
                            rtg_scale=0.1, targets=(10.0, 0.0), device="cpu", checkpoint_every=300))
    family = get_family("dt")
    rng = np.random.default_rng(1)
    first_actions = {}
    for target in (10.0, 0.0):
        policy = family.make_policy(run.model.eval(), run.spec, run.config, target, device="cpu")
        policy.reset(4, seed=0)
        rows = np.arange(4)
        actions = policy.act(rows, rng.normal(size=(4, 3)), np.zeros(4, np.int64))
        policy.observe(rows, actions, np.full(4, 1.0 if target else 0.0))
        later = policy.act(rows, rng.normal(size=(4, 3)), np.ones(4, np.int64))  # with the return-to-go updated
        first_actions[target] = np.concatenate([actions, later])
    assert first_actions[10.0].mean() > 0.4, first_actions[10.0]  # the return-10 behaviour, GOOD
    assert first_actions[0.0].mean() < -0.4, first_actions[0.0]  # the return-0 behaviour, BAD
