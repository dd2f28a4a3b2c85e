"""Long-horizon prediction: the TT's open-loop rollout is its own teacher-forced argmax, the
ensemble learns real dynamics, the oracle, and `seqrl predict` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqrl.analysis.prediction import normalized_error, prediction_starts, predict_runs
from seqrl.families.tt.predict import discretization_error as oracle_error
from seqrl.loading import load_run
from seqrl.cli import main
from seqrl.data.sources import save_dataset
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import ConfigError
from seqrl.families.dynamics import DynamicsConfig
from seqrl.families.tt.data import joined_transitions
from seqrl.families.tt.predict import tt_open_loop
from seqrl.train import train

from tests.helpers.dt import make_dataset, tiny_config
from tests.helpers.tt import tiny_tt_config


def linear_system(episodes: int = 20, length: int = 30, seed: int = 0) -> TrajectoryDataset:
    """s' = 0.9 s + 0.2 a (obs 3, act 2 mixed in), reward = -|s|^2; smooth and learnable."""
    rng = np.random.default_rng(seed)
    mix = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5]])
    eps = []
    for _ in range(episodes):
        s = [rng.normal(size=3)]
        actions = np.clip(rng.normal(size=(length, 2)) * 0.5, -1, 1)
        for a in actions:
            s.append(0.9 * s[-1] + 0.2 * a @ mix)
        s = np.array(s, np.float32)
        eps.append(dict(observations=s, actions=actions, rewards=-(s[:-1] ** 2).sum(1),
                        terminations=np.zeros(length, bool), truncations=np.arange(length) == length - 1))
    return TrajectoryDataset.from_episodes(eps, {"name": "linear", "env_id": None, "action_low": [-1.0] * 2,
                                                 "action_high": [1.0] * 2})


def test_starts_leave_room_for_context_and_horizon_in_their_episode():
    data = make_dataset(obs_dim=3, act_dim=2, episodes=6)
    starts = prediction_starts(data, 1000, horizon=5, context=2, seed=1)
    ep = data.episode_index[starts]
    assert (starts - data.episode_starts[ep] >= 2).all() and (starts + 5 <= data.episode_ends[ep] - 1).all()
    assert len(set(starts.tolist())) == len(starts)
    with pytest.raises(ConfigError, match="long enough"):
        prediction_starts(data, 5, horizon=500, context=1)


def test_tt_open_loop_is_its_own_teacher_forced_argmax_with_the_datas_actions(tmp_path):
    data = make_dataset(obs_dim=3, act_dim=2, episodes=6)
    result = train(tiny_tt_config(tmp_path, sequence_length=6, steps=20), dataset=data)
    model, run = result.model.eval(), load_run(result.run_dir)
    starts = prediction_starts(data, 4, horizon=3, context=1)
    out = tt_open_loop(model, result.config, run.artefacts, data, starts, 3, actions="dataset", context=1)
    tokens = torch.as_tensor(out["tokens"])
    T, obs, act = model.transition_dim, model.observation_dim, model.action_dim
    assert tokens.shape[1] <= model.block_size + 1  # no crop in this window: one forward checks everything
    logits = model(tokens[:, :-1])
    data_tokens = model.discretizer.encode(torch.from_numpy(joined_transitions(data, 0.99, -100.0)))
    prefix = out["prefix_length"]
    for p in range(prefix, tokens.shape[1]):
        step, dim = (p - prefix + obs) // T, p % T
        if obs <= dim < obs + act:  # teacher-forced actions: the dataset's
            assert torch.equal(tokens[:, p], data_tokens[torch.as_tensor(starts) + step, dim])
        else:  # everything else: the model's most likely token given what it generated
            assert torch.equal(tokens[:, p], logits[:, p - 1].argmax(-1) + model.discretizer.offsets[dim])
    # the log-probability of the truth is read off the same teacher-forced distributions
    k = 0
    positions = [prefix + act + 2 + j for j in range(obs)]  # the first predicted state's tokens
    truth = data_tokens[torch.as_tensor(starts) + 1, :obs] - model.discretizer.offsets[:obs]
    expected = sum(logits[:, q - 1].log_softmax(-1).gather(1, truth[:, j, None])[:, 0] for j, q in enumerate(positions))
    np.testing.assert_allclose(out["log_prob"][:, k], expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    # and the states are the decoded generated tokens
    decoded = [model.discretizer.value_table[j][tokens[:, positions[j]] - model.discretizer.offsets[j]] for j in range(obs)]
    np.testing.assert_array_equal(out["states"][:, 0], torch.stack(decoded, -1).numpy())


def test_tt_open_loop_with_its_own_actions_and_across_crops_stays_valid(tmp_path):
    data = make_dataset(obs_dim=3, act_dim=2, episodes=6)
    result = train(tiny_tt_config(tmp_path, sequence_length=2, steps=4), dataset=data)
    run = load_run(result.run_dir)
    starts = prediction_starts(data, 3, horizon=6, context=1)
    out = tt_open_loop(run.model, run.config, run.artefacts, data, starts, 6, actions="model", context=1)
    assert out["states"].shape == (3, 6, 3) and np.isfinite(out["log_density"]).all()
    assert (out["log_prob"] <= 0).all()


def test_gaussian_ensemble_learns_a_linear_system_and_its_one_step_rollout_is_its_mean(tmp_path):
    data = linear_system()
    cfg = DynamicsConfig(dataset="linear", steps=400, batch_size=128, hidden_dim=64, n_layers=2, ensemble_size=3,
                         progress=False, precision="fp32", device="cpu", log_every=100, run_dir=str(tmp_path / "dyn"))
    result = train(cfg, dataset=data)
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["loss/mse"] < 0.1 * lines[0]["loss/mse"]  # normalised targets: 1.0 is the untrained level
    run = load_run(result.run_dir)
    starts = prediction_starts(data, 20, horizon=5, context=0)
    from seqrl.families import get_family

    out = get_family("dynamics").open_loop(run.model, run.config, run.artefacts, data, starts, 5)
    mean, _, _ = run.model.predict(torch.as_tensor(data.observations[starts]), torch.as_tensor(data.actions[starts]))
    np.testing.assert_allclose(out["states"][:, 0], mean.mean(0).numpy(), rtol=1e-5, atol=1e-6)
    error = normalized_error(out["states"], data, starts)
    assert error[:, 0].mean() < 0.05 and np.isfinite(out["log_density"]).all()
    with pytest.raises(ConfigError, match="no policy"):
        get_family("dynamics").open_loop(run.model, run.config, run.artefacts, data, starts, 5, actions="model")


def test_oracle_is_the_discretization_error_of_the_true_states():
    from seqrl.families.tt.data import fit_discretizer

    data = linear_system(episodes=4)
    disc = fit_discretizer(joined_transitions(data, 0.99, None), 4, "uniform")
    starts = prediction_starts(data, 5, horizon=3, context=0)
    oracle = oracle_error(disc, data, starts, 3)
    truth = data.observations[starts[:, None] + np.arange(1, 4)]
    by_hand = np.zeros_like(oracle)
    for j in range(3):
        ids = disc.encode(np.concatenate([truth, np.zeros(truth.shape[:2] + (4,), np.float32)], -1))
        by_hand += ((disc.decode(ids)[..., j] - truth[..., j]) / data.observation_std[j]) ** 2 / 3
    np.testing.assert_allclose(oracle, by_hand, rtol=1e-5)
    assert (oracle > 0).all()  # 4 bins cannot be exact


def test_seqrl_predict_compares_a_tt_and_an_ensemble_on_the_same_starts(tmp_path, minari_root, capsys):
    data = linear_system()
    save_dataset(data, "seqrl/linear-v0", None)
    tt = train(tiny_tt_config(tmp_path, dataset="linear", sequence_length=3, steps=10), dataset=data)
    dyn = train(DynamicsConfig(dataset="linear", steps=20, batch_size=32, hidden_dim=16, n_layers=1, ensemble_size=2,
                               progress=False, precision="fp32", device="cpu", run_dir=str(tmp_path / "dyn")), dataset=data)
    main(["predict", str(tt.run_dir), str(dyn.run_dir), "--horizon", "4", "--starts", "6", "--out", str(tmp_path / "p")])
    report = json.loads((tmp_path / "p" / "predict.json").read_text())
    assert [r["family"] for r in report["runs"]] == ["tt", "dynamics"]
    assert all(len(r["error"]) == 4 and np.isfinite(r["error"]).all() for r in report["runs"])
    assert "log_prob" in report["runs"][0] and len(report["oracle"]["error"]) == 4 and len(report["starts"]) == 6
    assert (tmp_path / "p" / "predict.png").stat().st_size > 1000
    assert "discrete oracle" in capsys.readouterr().out
    from seqrl.evaluation.evaluate import evaluate_run

    with pytest.raises(ConfigError, match="does not act"):
        evaluate_run(dyn.run_dir, episodes=1, device="cpu", write=False)
    dt = train(tiny_config(tmp_path, run_dir=str(tmp_path / "dt"), dataset="linear", steps=2), dataset=data)
    with pytest.raises(ConfigError, match="does not predict states"):
        predict_runs([dt.run_dir], horizon=2, starts=2)


def test_the_dynamics_ensemble_refuses_discrete_actions_by_name(tmp_path):
    from seqrl.errors import ConfigError
    from tests.helpers.discrete import cartpole_dataset

    cfg = DynamicsConfig(dataset="cartpole", steps=2, batch_size=8, hidden_dim=8, n_layers=1, ensemble_size=2,
                         progress=False, run_dir=str(tmp_path / "dyn"))
    with pytest.raises(ConfigError, match=r"cartpole-tiny has Discrete\(2\) actions: the dynamics ensemble"):
        train(cfg, dataset=cartpole_dataset(episodes=3))
