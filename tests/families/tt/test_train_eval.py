"""The TT through the one loop: checkpoints, resume, the schedule, `seqrl train --family tt`,
`seqrl eval` with planner flags, and a trained tiny TT that plans better than a random policy."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.loading import load_run
from seqrl.cli import main
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import CheckpointError, ConfigError
from seqrl.evaluation.evaluate import evaluate, evaluate_run
from seqrl.train import lr_multiplier, train

from tests.helpers.envs import ACT_DIM, ENV_ID, SeedLengthEnv, register
from tests.helpers.dt import make_dataset, tiny_config
from tests.helpers.tt import tiny_tt_config
from tests.helpers.interrupt import killed_while_sampling


@pytest.fixture(autouse=True)
def _env():
    register()


def env_dataset(episodes: int = 60, noise: float = 0.1, random_share: float = 0.3, seed: int = 0) -> TrajectoryDataset:
    """Episodes of the SeedLength env: a noisy expert (action = goal + noise) and a random policy."""
    rng = np.random.default_rng(seed)
    env = SeedLengthEnv()
    eps = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + i)
        random_policy = rng.random() < random_share
        observations, actions, rewards = [obs], [], []
        done = False
        while not done:
            action = rng.uniform(-1, 1, ACT_DIM) if random_policy else np.clip(obs[1:] + rng.normal(0, noise, ACT_DIM), -1, 1)
            obs, reward, terminated, truncated, _ = env.step(action.astype(np.float32))
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            done = terminated or truncated
        n = len(actions)
        eps.append(dict(observations=np.array(observations), actions=np.array(actions), rewards=np.array(rewards),
                        terminations=np.arange(n) == n - 1, truncations=np.zeros(n, bool)))
    meta = {"name": "seedlength-tt", "env_id": ENV_ID, "ref_min_score": -3.0, "ref_max_score": 0.0,
            "action_low": [-1.0] * ACT_DIM, "action_high": [1.0] * ACT_DIM}
    return TrajectoryDataset.from_episodes(eps, meta)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tt_run_directory_checkpoint_and_terms(tmp_path):
    data = make_dataset(obs_dim=3, act_dim=2)
    result = train(tiny_tt_config(tmp_path), dataset=data)
    payload = load_checkpoint(result.run_dir)
    assert "family" not in payload and payload["config"]["family"] == "tt" and "artefacts" in payload
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all({"loss/state", "loss/action", "loss/reward", "loss/value"} <= set(x) for x in lines)
    meta = json.loads((result.run_dir / "metadata.json").read_text())
    assert "family" not in meta  # one source of a run's family: its config
    run = load_run(result.run_dir)
    assert run.family == "tt" and type(run.model).__name__ == "TrajectoryTransformer"
    assert states_equal(run.model.state_dict(), result.model.state_dict())


def test_tt_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, monkeypatch):
    from seqrl.families.tt.data import TransitionWindowSampler

    data = make_dataset(obs_dim=3, act_dim=2)
    cfg = dict(steps=8, checkpoint_every=4, dropout=0.1)
    straight = train(tiny_tt_config(tmp_path, run_dir=str(tmp_path / "a"), **cfg), dataset=data)
    # killed while sampling step 6's batch: the step-4 checkpoint survives
    with killed_while_sampling(monkeypatch, TransitionWindowSampler, 6):
        train(tiny_tt_config(tmp_path, run_dir=str(tmp_path / "b"), **cfg), dataset=data)
    assert load_checkpoint(tmp_path / "b")["step"] == 4
    resumed = train(tiny_tt_config(tmp_path, run_dir=str(tmp_path / "b"), resume=True, **cfg), dataset=data)
    assert resumed.step == 8 and states_equal(straight.model.state_dict(), resumed.model.state_dict())


def test_resuming_with_the_other_familys_config_is_refused(tmp_path):
    data = make_dataset(obs_dim=3, act_dim=2)
    train(tiny_tt_config(tmp_path, steps=2), dataset=data)
    with pytest.raises(CheckpointError, match="holds a tt run"):
        train(tiny_config(tmp_path, run_dir=str(tmp_path / "tt"), resume=True, steps=4), dataset=data)


def test_cosine_schedule_warms_up_decays_to_its_floor_and_stays_there():
    cfg = tiny_tt_config(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    f = lr_multiplier(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.55)
    values = [f(s) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone decay
    # Past the end (a resumed run with more steps than planned, or the authors' unclamped
    # cosine) the rate stays at the floor instead of climbing back up.
    assert f(100) == pytest.approx(0.1) and f(150) == pytest.approx(0.1) and f(200) == pytest.approx(0.1)
    constant = lr_multiplier(dataclasses.replace(cfg, lr_schedule="constant"))
    assert constant(50) == 1.0 and constant(500) == 1.0


def test_trained_lr_follows_the_schedule(tmp_path):
    data = make_dataset(obs_dim=3, act_dim=2)
    result = train(tiny_tt_config(tmp_path, steps=10, warmup_steps=2, log_every=1), dataset=data)
    lrs = [json.loads(x)["lr"] for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    f = lr_multiplier(result.config)
    assert lrs == pytest.approx([6e-4 * f(s) for s in range(10)])


def test_cli_trains_a_tt_and_evaluates_it_with_planner_flags(tmp_path, capsys, monkeypatch):
    from seqrl.data import sources

    data = env_dataset(episodes=8)
    monkeypatch.setattr(sources, "load_dataset", lambda name, **kw: data)
    run_dir = tmp_path / "cli-tt"
    main(["train", "--family", "tt", "--dataset", "seedlength-tt", "--steps", "3", "--batch-size", "4",
          "--num-bins", "6", "--embed-dim", "16", "--n-layers", "1", "--n-heads", "1", "--sequence-length", "3",
          "--precision", "fp32", "--device", "cpu", "--no-progress", "--run-dir", str(run_dir)])
    assert json.loads((run_dir / "config.json").read_text())["family"] == "tt"
    main(["eval", str(run_dir), "--episodes", "3", "--horizon", "2", "--beam-width", "2", "--expansion", "2",
          "--context-transitions", "2", "--json", "--device", "cpu"])
    report = json.loads(capsys.readouterr().out.split("run directory:")[-1].split("\n", 1)[1])
    assert report["family"] == "tt" and report["model"] == "tt"
    assert report["planner"]["horizon"] == 2 and report["planner"]["beam_width"] == 2
    assert [r["target"] for r in report["results"]] == [None] and report["results"][0]["episodes"] == 3
    assert report["wall_time_per_episode_s"] > 0
    assert json.loads((run_dir / "eval.json").read_text())["planner"]["expansion"] == 2
    main(["eval", str(run_dir), "--episodes", "2", "--horizon", "2", "--beam-width", "2", "--device", "cpu"])
    table = capsys.readouterr().out
    flat = " ".join(table.split())  # rich wraps the title to the terminal's width
    assert "(tt, step 3, 2 episodes" in flat and "│ - │" in flat  # the title names the model; no target return
    with pytest.raises(SystemExit):
        main(["eval", str(run_dir), "--episodes", "2", "--targets", "1.0", "--device", "cpu"])
    assert "target return" in capsys.readouterr().err


def test_planner_flags_on_a_dt_run_are_refused(tmp_path, capsys):
    from tests.helpers.envs import trained

    result = trained(tmp_path)
    with pytest.raises(SystemExit):  # a DT run's `seqrl eval` has no planner flags
        main(["eval", str(result.run_dir), "--episodes", "2", "--horizon", "3", "--device", "cpu"])
    assert "--horizon" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="horizon: a dt run takes no evaluation settings"):
        evaluate_run(result.run_dir, episodes=2, device="cpu", settings={"horizon": 3})
    assert not (result.run_dir / "eval.json").exists()


def test_unknown_family_flag_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--family", "xl", "--dataset", "x"])
    assert "unknown --family 'xl'" in capsys.readouterr().err


@pytest.mark.slow
def test_trained_tiny_tt_plans_better_than_a_random_policy(tmp_path):
    data = env_dataset(episodes=120)
    cfg = tiny_tt_config(tmp_path, dataset="seedlength-tt", num_bins=16, sequence_length=3, embed_dim=64, n_layers=2,
                         n_heads=2, steps=400, batch_size=64, warmup_steps=20, learning_rate=3e-3, weight_decay=0.0)
    result = train(cfg, dataset=data)
    planner = dict(horizon=2, beam_width=8, expansion=2, context_transitions=2)
    planned = evaluate(result.model, result.spec, config=result.config, episodes=12, seed=123, device="cpu",
                       settings=planner)[0]
    rng = np.random.default_rng(0)
    random_returns = []
    env = SeedLengthEnv()
    for i in range(12):
        env.reset(seed=123 + i)
        total, done = 0.0, False
        while not done:
            _, r, done, _, _ = env.step(rng.uniform(-1, 1, ACT_DIM).astype(np.float32))
            total += r
        random_returns.append(total)
    print("planned", planned["return_mean"], "random", np.mean(random_returns))
    assert planned["return_mean"] > np.mean(random_returns) + 1.0, (planned["return_mean"], np.mean(random_returns))
    assert planned["score_mean"] is not None and math.isfinite(planned["score_mean"])


def test_finetune_refuses_a_tt_source_by_name(tmp_path):
    from seqrl.errors import ConfigError
    from seqrl.transfer import finetune

    data = make_dataset(obs_dim=3, act_dim=2)
    result = train(tiny_tt_config(tmp_path, steps=2), dataset=data)
    with pytest.raises(ConfigError, match="is a tt run"):
        finetune(result.run_dir, "tiny", data=data, steps=2, run_dir=tmp_path / "ft")


def test_a_tt_episode_records_as_a_gif_through_its_planner(tmp_path):
    import imageio.v2 as imageio

    data = env_dataset(episodes=8)
    result = train(tiny_tt_config(tmp_path, dataset="seedlength-tt", steps=2), dataset=data)
    report = evaluate_run(result.run_dir, episodes=1, device="cpu", video=tmp_path / "tt.gif", seed=5,
                          settings={"horizon": 2, "beam_width": 2, "expansion": 1})
    frames = imageio.mimread(tmp_path / "tt.gif")
    length = report["results"][0]["lengths"][0]
    assert len(frames) == length + 1  # the reset frame and one per step of the evaluated episode
    assert report["video"] == str(tmp_path / "tt.gif")


def test_resuming_a_tt_run_with_its_own_command_warns_about_nothing(tmp_path, capsys):
    """The run records its preset-resolved --termination-penalty; the command says `task`."""
    data = env_dataset(episodes=6)
    cfg = tiny_tt_config(tmp_path, steps=4, checkpoint_every=2)
    assert cfg.termination_penalty == "task"
    train(cfg, dataset=data)
    capsys.readouterr()
    resumed = train(dataclasses.replace(cfg, steps=6, resume=True), dataset=data)
    assert resumed.step == 6 and resumed.config.termination_penalty == -100.0
    assert "resuming with the checkpoint's values" not in capsys.readouterr().err
