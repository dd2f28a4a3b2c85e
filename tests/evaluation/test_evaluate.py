"""Vectorized evaluation: agreement with the one-episode-at-a-time loop, ragged episode ends,
spread decoding, seeding, RNG hygiene, run directories and the `seqrl eval` command."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from seqrl.loading import load_run
from seqrl.cli import main
from seqrl.errors import CheckpointError, ConfigError
from seqrl.evaluation import rollout as rollout_module
from seqrl.evaluation.evaluate import evaluate, evaluate_run, evaluate_sequential, make_eval_envs
from seqrl.families.dt.model import DecisionTransformer
from seqrl.models.gpt import GPT
from seqrl.train import train

from tests.helpers.dt import make_dataset, tiny_config
from tests.helpers.envs import ACT_DIM, ENV_ID, OBS_DIM, K, env_dataset, expected_lengths, register, trained

@pytest.fixture(autouse=True)
def _env():
    register()


SPREAD_AND_POOLED = [
    dict(model="continuous"),
    dict(model="tokenized"),
    dict(model="tokenized-spread"),
    dict(model="continuous-spread"),
    dict(model="tokenized-spread", head="categorical"),
]


@pytest.mark.parametrize("overrides", SPREAD_AND_POOLED, ids=lambda o: "-".join(o.values()))
def test_vectorized_agrees_with_sequential_episode_by_episode(tmp_path, overrides):
    result = trained(tmp_path, **overrides)
    kw = dict(context_len=K, episodes=7, seed=11, targets=(-1.0, -0.2))
    vec = evaluate(result.model, result.spec, **kw)
    seq = evaluate_sequential(result.model, result.spec, **kw)
    lengths = expected_lengths(11, 7)
    assert len(set(lengths)) > 2  # episodes really end at different steps
    for v, s in zip(vec, seq):
        assert v["target"] == s["target"] and v["episodes"] == s["episodes"] == 7
        assert v["lengths"] == s["lengths"] == lengths  # exactly one episode per seed, none extra
        np.testing.assert_allclose(v["returns"], s["returns"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(v["score_mean"], 100 * (np.mean(v["returns"]) + 3) / 3)
        assert v["return_std"] == pytest.approx(np.std(v["returns"]))


@pytest.mark.parametrize("overrides", [dict(model="tokenized-spread"), dict(model="continuous-spread"), dict(model="continuous")],
                         ids=lambda o: o["model"])
def test_one_batched_act_per_step_over_live_episodes(tmp_path, monkeypatch, overrides):
    """act sees every live episode at once, right-sized contexts, and spread variants run one
    forward pass and then one cached single-token pass (GPT.extend) per further action feature."""
    result = trained(tmp_path, **overrides)
    calls, forwards, extends = [], [], []
    act, forward, extend = DecisionTransformer.act, DecisionTransformer.forward, GPT.extend

    def spy_act(self, rtg, states, actions, timesteps, lengths=None, generator=None):
        calls.append((rtg.shape, states.shape, actions.shape, timesteps[:, 0].tolist(), lengths.tolist()))
        return act(self, rtg, states, actions, timesteps, lengths, generator)

    def spy_forward(self, *args, **kwargs):
        forwards.append(1)
        return forward(self, *args, **kwargs)

    def spy_extend(self, *args, **kwargs):
        extends.append(1)
        return extend(self, *args, **kwargs)

    monkeypatch.setattr(DecisionTransformer, "act", spy_act)
    monkeypatch.setattr(DecisionTransformer, "forward", spy_forward)
    monkeypatch.setattr(GPT, "extend", spy_extend)
    evaluate(result.model, result.spec, context_len=K, episodes=6, seed=3, targets=(-1.0,))
    lengths = np.array(expected_lengths(3, 6))
    assert len(calls) == lengths.max()  # one call per env step
    for t, (rtg_shape, states_shape, actions_shape, first_steps, row_lengths) in enumerate(calls):
        live = int((lengths > t).sum())
        width = min(t + 1, K)
        assert rtg_shape == (live, width, 1)
        assert states_shape == (live, width, OBS_DIM) and actions_shape == (live, width, ACT_DIM)
        assert first_steps == [max(0, t - K + 1)] * live and row_lengths == [width] * live
    assert len(forwards) == len(calls)
    extra = ACT_DIM - 1 if overrides["model"].endswith("spread") else 0
    assert len(extends) == extra * len(calls)


def test_context_holds_the_last_k_steps(tmp_path, monkeypatch):
    """Returns-to-go fall by each reward (scaled), timesteps count up, actions are those taken."""
    result = trained(tmp_path)
    seen = []
    act = DecisionTransformer.act

    def spy(self, rtg, states, actions, timesteps, lengths=None, generator=None):
        out = act(self, rtg, states, actions, timesteps, lengths, generator)
        seen.append((rtg[0, :, 0].clone(), actions[0].clone(), timesteps[0].clone(), out[0].clone()))
        return out

    monkeypatch.setattr(DecisionTransformer, "act", spy)
    [res] = evaluate(result.model, result.spec, context_len=K, episodes=1, seed=5, targets=(-0.5,))
    assert len(seen) == res["lengths"][0] and len(seen) > K
    last_rtg, last_actions, last_steps, _ = seen[-1]
    t = len(seen) - 1
    assert last_steps.tolist() == list(range(t - K + 1, t + 1))
    taken = torch.stack([s[3] for s in seen])
    torch.testing.assert_close(last_actions[:-1], taken[t - K + 1 : t].clamp(-1, 1))
    # Replay the taken actions in a fresh env: the model saw target - (rewards so far), scaled.
    from tests.helpers.envs import SeedLengthEnv

    env = SeedLengthEnv()
    env.reset(seed=5)
    rewards = [env.step(a.clamp(-1, 1).numpy())[1] for a in taken]
    expected_rtg = (-0.5 - np.concatenate([[0.0], np.cumsum(rewards)[:-1]])) * result.spec.rtg_scale
    seen_rtg = [s[0][min(i, K - 1)].item() for i, s in enumerate(seen)]
    np.testing.assert_allclose(seen_rtg, expected_rtg, rtol=1e-6)
    assert res["returns"][0] == pytest.approx(sum(rewards))


def test_sampled_decoding_is_reproducible_from_the_seed_and_leaves_global_rngs_alone(tmp_path):
    result = trained(tmp_path, model="tokenized", head="categorical", decode="sample")
    kw = dict(context_len=K, episodes=5, targets=(-1.0,))
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a = evaluate(result.model, result.spec, seed=1, **kw)
    b = evaluate(result.model, result.spec, seed=1, **kw)
    c = evaluate(result.model, result.spec, seed=2, **kw)
    assert a == b and a != c
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), np_state))


def test_evaluation_during_training_does_not_change_training(tmp_path):
    quiet = trained(tmp_path, name="quiet", steps=6)
    evaluated = trained(tmp_path, name="evaluated", steps=6, eval_every=3, eval_episodes=2)
    for (name, a), b in zip(quiet.model.state_dict().items(), evaluated.model.state_dict().values()):
        assert torch.equal(a, b), name
    records = [json.loads(x) for x in (evaluated.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [3, 6]
    assert all(f"eval/target_{t:g}/score_mean" in evals[0] for t in evaluated.spec.targets)


def test_eval_targets_highest_evaluates_only_the_highest_target_during_training(tmp_path):
    """--eval-targets highest: the in-training evaluations roll out the highest target alone, with
    the same scores as evaluating every target; a BC run (no target) still evaluates."""
    from seqrl.families.bc import BCConfig

    def evals(result):
        records = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k.startswith("eval/")} for r in records if r.get("kind") == "eval"]

    kw = dict(steps=4, eval_every=2, eval_episodes=2, targets=(-1.0, -0.2))
    every = evals(trained(tmp_path, name="all", **kw))
    highest = evals(trained(tmp_path, name="highest", eval_targets="highest", **kw))
    assert len(every) == len(highest) == 2
    for a, b in zip(every, highest):
        assert set(b) == {"eval/target_-0.2/return_mean", "eval/target_-0.2/score_mean"}
        assert {k: a[k] for k in b} == b
        assert "eval/target_-1/return_mean" in a
    bc = train(BCConfig(dataset="env", steps=4, warmup_steps=1, hidden_dim=8, progress=False, device="cpu",
                        eval_every=2, eval_episodes=2, eval_targets="highest", run_dir=str(tmp_path / "bc")),
               dataset=env_dataset())
    assert len(evals(bc)) == 2 and all(evals(bc))
    with pytest.raises(ConfigError, match="unknown --eval-targets 'best'; choose all or highest"):
        tiny_config(tmp_path, eval_targets="best")


def test_reused_envs_give_the_same_results_as_fresh_ones(tmp_path):
    result = trained(tmp_path, model="tokenized-spread")
    kw = dict(context_len=K, episodes=5, targets=(-1.0, -0.2))
    envs = make_eval_envs(result.spec, 5)
    try:
        # Another evaluation (other seed) first, so the reused envs carry state from it.
        first = evaluate(result.model, result.spec, seed=3, envs=envs, **kw)
        reused = evaluate(result.model, result.spec, seed=11, envs=envs, **kw)
        assert not envs.closed  # the caller owns it
        with pytest.raises(ConfigError, match="hold 5 environments, but 4 episodes"):
            evaluate(result.model, result.spec, context_len=K, episodes=4, envs=envs)
    finally:
        envs.close()
    assert reused == evaluate(result.model, result.spec, seed=11, **kw)
    assert first[0]["lengths"] == expected_lengths(3, 5) != reused[0]["lengths"]


def test_training_builds_its_evaluation_envs_once_and_closes_them(tmp_path, monkeypatch):
    built = []

    def counting_make_eval_envs(*args, **kwargs):
        envs = make_eval_envs(*args, **kwargs)
        built.append(envs)
        return envs

    monkeypatch.setattr(rollout_module, "make_eval_envs", counting_make_eval_envs)
    result = trained(tmp_path, steps=6, eval_every=2, eval_episodes=3)
    records = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("kind") == "eval"] == [2, 4, 6]
    assert len(built) == 1 and built[0].closed


def test_async_vectorization_gives_the_same_returns(tmp_path):
    result = trained(tmp_path)
    kw = dict(context_len=K, episodes=3, seed=4, targets=(-1.0,))
    sync = evaluate(result.model, result.spec, **kw)
    async_ = evaluate(result.model, result.spec, vectorization="async", **kw)
    assert sync == async_


def test_bad_inputs_fail_clearly(tmp_path):
    result = trained(tmp_path)
    kw = dict(context_len=K, episodes=2)
    with pytest.raises(ConfigError, match="--env"):
        evaluate(result.model, dataclasses.replace(result.spec, env_id=None), **kw)
    with pytest.raises(ConfigError, match="unknown environment 'NoSuchEnv-v0'"):
        evaluate(result.model, result.spec, env_id="NoSuchEnv-v0", **kw)
    with pytest.raises(ConfigError, match=r"obs_dim=4, act_dim=3"):
        evaluate(result.model, result.spec, env_id="Pendulum-v1", **kw)
    with pytest.raises(ConfigError, match="episodes must be >= 1"):
        evaluate(result.model, result.spec, context_len=K, episodes=0)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        evaluate_run(tmp_path / "empty-run")
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        evaluate_run(tmp_path / "not-a-run")


def test_eval_command_prints_json_and_writes_eval_json(tmp_path, capsys):
    result = trained(tmp_path)
    main(["eval", str(result.run_dir), "--episodes", "4", "--seed", "2", "--targets", "-1", "-0.5", "--json",
          "--video", str(tmp_path / "episode.gif")])
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((result.run_dir / "eval.json").read_text())
    assert printed == written
    assert written["step"] == 4 and written["episodes"] == 4 and written["seed"] == 2
    assert [r["target"] for r in written["results"]] == [-1.0, -0.5]
    assert written["results"][0]["lengths"] == expected_lengths(2, 4)
    assert (tmp_path / "episode.gif").stat().st_size > 0
    # The same run evaluated in-process gives the same numbers.
    run = load_run(result.run_dir)
    again = evaluate(run.model, run.spec, context_len=K, episodes=4, seed=2, targets=(-1.0, -0.5))
    assert again == written["results"]


def test_eval_command_table_and_clear_errors(tmp_path, capsys):
    result = trained(tmp_path)
    main(["eval", str(result.run_dir), "--episodes", "2"])
    out = capsys.readouterr().out
    assert "target" in out and "score" in out and "eval.json" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    assert "no checkpoint" in capsys.readouterr().err
