"""Behaviour cloning (the Decision Transformer paper's baseline) as a family of the one loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.loading import load_run
from seqrl.cli import main
from seqrl.data.sources import save_dataset
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import ConfigError
from seqrl.evaluation.evaluate import evaluate, evaluate_run
from seqrl.experiments.spec import expand
from seqrl.families import family_of_model_name, get_family
from seqrl.families.bc import BCConfig, BCSampler, kept_episodes
from seqrl.train import train

from tests.helpers.dt import make_dataset


def bc_config(tmp_path, **overrides) -> BCConfig:
    base = dict(dataset="tiny", steps=10, warmup_steps=2, learning_rate=1e-3, batch_size=16, hidden_dim=32,
                n_layers=2, log_every=5, checkpoint_every=5, progress=False, precision="fp32", device="cpu",
                run_dir=str(tmp_path / "bc"))
    base.update(overrides)
    return BCConfig(**base)


def linear_expert(obs_dim=3, act_dim=2, episodes=20, seed=0) -> TrajectoryDataset:
    """Episodes whose actions are a fixed function of the state: what cloning should recover."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(obs_dim, act_dim))
    eps = []
    for i in range(episodes):
        t = 40
        obs = rng.normal(size=(t + 1, obs_dim))
        actions = np.tanh(obs[:-1] @ W)
        rewards = np.full(t, float(i))  # episode i returns 40 * i: the returns rank the episodes
        term = np.zeros(t, bool)
        eps.append(dict(observations=obs, actions=actions, rewards=rewards, terminations=term,
                        truncations=np.arange(t) == t - 1))
    meta = {"name": "expert", "env_id": None, "action_low": [-1.0] * act_dim, "action_high": [1.0] * act_dim}
    return TrajectoryDataset.from_episodes(eps, meta)


def test_top_fraction_keeps_the_best_episodes():
    returns = np.array([5.0, 1.0, 9.0, 3.0, 7.0])
    assert kept_episodes(returns, 1.0).tolist() == [0, 1, 2, 3, 4]
    assert kept_episodes(returns, 0.4).tolist() == [2, 4]
    assert kept_episodes(returns, 0.01).tolist() == [2]  # at least one episode
    data = linear_expert()
    sampler = BCSampler(data, 1, 0.25, data.observation_mean, data.observation_std)
    assert sampler.episodes.tolist() == [15, 16, 17, 18, 19]
    batch = sampler.sample(200, np.random.default_rng(0))
    kept = {tuple(a) for e in range(15, 20) for a in data.episode(e)["actions"].round(6)}
    assert all(tuple(a) in kept for a in batch.actions.round(6))


def test_history_is_zero_padded_before_the_episode_start():
    data = make_dataset(obs_dim=4, act_dim=3)
    mean, std = data.observation_mean, data.observation_std
    sampler = BCSampler(data, 3, 1.0, mean, std)
    rng = np.random.default_rng(1)
    batch = sampler.sample(64, rng)
    # Recompute by hand: which transitions were drawn is found from the actions.
    normalised = (data.observations - mean) / std
    for states, action in zip(batch.states, batch.actions):
        i = int(np.flatnonzero((data.actions == action).all(1))[0])
        t = int(data.timesteps[i])
        for h in range(3):
            back = 2 - h  # row h holds the state `back` steps before the current one
            expected = normalised[i - back] if t - back >= 0 else np.zeros(4)
            np.testing.assert_allclose(states[h], expected, rtol=1e-5, atol=1e-6)


def test_bc_learns_a_state_to_action_map_through_the_training_loop(tmp_path):
    data = linear_expert()
    result = train(bc_config(tmp_path, steps=400, log_every=100, checkpoint_every=400, dropout=0.0), dataset=data)
    states = torch.from_numpy(((data.observations - data.observation_mean) / data.observation_std)[:, None])
    with torch.no_grad():
        predicted = result.model.act(states.float()).numpy()
    mse = float(((predicted - data.actions) ** 2).mean())
    assert mse < 0.1 * float(data.actions.var()), mse  # far below predicting the mean action
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["loss"] < records[0]["loss"]
    # The checkpoint carries the bc tag and loads back to the same model.
    payload = load_checkpoint(result.run_dir)
    assert payload["config"]["family"] == "bc" and "family" not in payload and payload["config"]["model"] == "bc"
    run = load_run(result.run_dir)
    with torch.no_grad():
        np.testing.assert_array_equal(run.model.act(states.float()).numpy(), predicted)


def test_bc_resumes_bit_identically(tmp_path):
    data = make_dataset()
    straight = train(bc_config(tmp_path, run_dir=str(tmp_path / "a"), steps=10), dataset=data)
    train(bc_config(tmp_path, run_dir=str(tmp_path / "b"), steps=5), dataset=data)
    resumed = train(bc_config(tmp_path, run_dir=str(tmp_path / "b"), steps=10, resume=True), dataset=data)
    a, b = load_checkpoint(straight.run_dir)["model"], load_checkpoint(resumed.run_dir)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bc_evaluates_in_a_real_environment_without_targets(tmp_path, minari_root):
    data = make_dataset(obs_dim=4, act_dim=1, episodes=4, name="pole-bc")
    save_dataset(data, "seqrl/pole-bc-v0", "InvertedPendulum-v5", ref_min_score=0.0, ref_max_score=1000.0)
    result = train(bc_config(tmp_path, dataset="pole-bc", history_len=2, steps=4))
    results = evaluate(result.model, result.spec, config=result.config, episodes=3, seed=0)
    assert len(results) == 1 and results[0]["target"] is None and results[0]["episodes"] == 3
    assert results[0]["score_mean"] is not None and results[0]["length_mean"] >= 1
    with pytest.raises(ConfigError, match="not conditioned on a target return"):
        evaluate(result.model, result.spec, config=result.config, episodes=2, targets=(10.0,))
    # Through the command line too: seqrl train --family bc, then seqrl eval.
    main(["train", "--family", "bc", "--dataset", "pole-bc", "--steps", "3", "--warmup-steps", "1",
          "--hidden-dim", "16", "--top-fraction", "0.5", "--run-dir", str(tmp_path / "cli"), "--no-progress",
          "--device", "cpu"])
    report = evaluate_run(tmp_path / "cli", episodes=2)
    assert report["family"] == "bc" and report["model"] == "bc-top50"
    assert json.loads((tmp_path / "cli" / "eval.json").read_text())["results"][0]["target"] is None


@pytest.mark.parametrize("overrides, flag", [
    (dict(top_fraction=0.0), "--top-fraction"), (dict(top_fraction=1.5), "--top-fraction"),
    (dict(history_len=0), "--history-len"), (dict(hidden_dim=0), "--hidden-dim"), (dict(dropout=1.0), "--dropout"),
    (dict(learning_rate=float("nan")), "--learning-rate"),
])
def test_bad_bc_flags_are_config_errors_naming_the_flag(tmp_path, overrides, flag):
    with pytest.raises(ConfigError, match=flag):
        bc_config(tmp_path, **overrides)


def test_sweeps_host_bc_beside_dt_rows():
    assert family_of_model_name("bc") is get_family("bc")
    sweep = expand({"name": "x", "defaults": {"steps": 5, "embed_dim": 16, "context_len": 4, "hidden_dim": 8},
                    "experiments": {"main": {"datasets": ["hopper-medium"], "models": ["continuous", "bc"]}}})
    runs = {r.model: r for r in sweep.runs}
    bc, dt = runs["bc"].config("runs"), runs["continuous"].config("runs")
    assert isinstance(bc, BCConfig) and bc.hidden_dim == 8 and bc.steps == 5
    assert not hasattr(bc, "embed_dim") and dt.embed_dim == 16
