"""Behaviour cloning on Discrete(n) actions (issue 28): n logits, cross-entropy, the most likely
action; trained on CartPole's data, saved, loaded and acting in the real environment."""

from __future__ import annotations

import json

import numpy as np
import torch

from seqrl.evaluation.evaluate import evaluate_run
from seqrl.families.bc import BCConfig
from seqrl.loading import load_run
from seqrl.train import train
from tests.helpers.discrete import balance, cartpole_dataset


def test_bc_learns_the_rule_with_cross_entropy_and_acts_with_integer_actions(tmp_path):
    data = cartpole_dataset(episodes=12, epsilons=(0.0,), seed=1)
    cfg = BCConfig(dataset="cartpole-tiny", steps=300, batch_size=64, warmup_steps=10, learning_rate=3e-3,
                   hidden_dim=32, n_layers=2, dropout=0.0, log_every=50, checkpoint_every=300, progress=False,
                   precision="fp32", device="cpu", run_dir=str(tmp_path / "bc"))
    result = train(cfg, dataset=data)
    logged = [json.loads(line)["loss"] for line in (tmp_path / "bc" / "metrics.jsonl").read_text().splitlines()]
    assert logged[0] < 0.75 and logged[-1] < 0.3  # cross-entropy over 2 actions, from about ln 2
    assert result.model.mlp[-1].out_features == 2
    loaded = load_run(tmp_path / "bc")
    held_out = cartpole_dataset(episodes=4, epsilons=(0.5,), seed=7)
    states = torch.from_numpy(loaded.spec.normalize_states(held_out.observations))[:, None]
    acted = loaded.model.act(states)
    assert acted.shape == (len(states), 1) and acted.dtype == torch.int64
    assert (acted[:, 0].numpy() == np.array([balance(o) for o in held_out.observations])).mean() > 0.85
    report = evaluate_run(tmp_path / "bc", episodes=4, write=False)
    assert report["results"][0]["return_mean"] >= 30  # random actions last about 20 steps
