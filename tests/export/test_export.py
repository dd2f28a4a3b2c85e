"""`seqrl export`: every DT action representation and BC, in both formats, reproduce seqrl's own
actions through the exported runner (normalisation and bookkeeping included) on 200 states of a
real dataset, and score what seqrl's rollout scores in the real environment; the runner needs
no seqrl; families that cannot be exported are refused by name.

Tolerances (measured maxima in docs/export.md): actions agree within ACTION_TOL (float rounding
between torch, TorchScript and onnxruntime kernels, and seqrl's key/value-cached spread decode
against the step's full passes); episode lengths exactly, returns within RETURN_TOL of seqrl's
relative to their size (LunarLander's contacts amplify a 1e-7 action difference to ~1e-4 in a
return of about 50 on an AVX2-only CPU).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from seqrl.cli import main
from seqrl.errors import ConfigError
from seqrl.evaluation.rollout import evaluate
from seqrl.export import export_run
from seqrl.families import get_family
from seqrl.loading import load_run
from seqrl.train import train
from tests.helpers.dt import tiny_config

ACTION_TOL = 1e-4
# relative: |return - seqrl's| <= RETURN_TOL * max(1, |seqrl's|). Measured maxima: 8.5e-6 on an
# AVX-512 CPU, 1.04e-4 on an AVX2-only one (onnxruntime's kernels round differently there, and
# the lander's contacts amplify it), so 1e-3: ten times the worst seen, still far below a wrong
# bookkeeping step (which moves a 60-step return by whole points).
RETURN_TOL = 1e-3
STATES = 200
EPISODE_STEPS = 60  # max_episode_steps of the episodes compared (LunarLander's own limit is 1000)

DT_CASES = [
    pytest.param(dict(model="continuous"), id="continuous"),
    pytest.param(dict(model="tokenized"), id="tokenized"),
    pytest.param(dict(model="tokenized-spread"), id="tokenized-spread"),
    pytest.param(dict(model="continuous-spread"), id="continuous-spread"),
    pytest.param(dict(model="continuous", head="categorical"), id="continuous-categorical"),
    pytest.param(dict(model="tokenized", head="categorical"), id="tokenized-categorical"),
    pytest.param(dict(model="tokenized-spread", head="categorical"), id="tokenized-spread-categorical"),
    pytest.param(dict(model="tokenized", head="categorical", decode="expectation", pool="sum"),
                 id="tokenized-categorical-expectation"),
    pytest.param(dict(model="tokenized-spread", head="categorical", spread_head="shared", max_action_features=8,
                      token_offsets=False, action_index_embedding=True), id="tokenized-spread-agnostic-categorical"),
    pytest.param(dict(model="continuous-spread", spread_head="shared", max_action_features=8),
                 id="continuous-spread-agnostic"),
]
BC_CASES = [pytest.param(dict(history_len=1), id="bc"), pytest.param(dict(history_len=3), id="bc-history3")]


@pytest.fixture(scope="module")
def lander():
    """A real tiny dataset: 1,200 LunarLanderContinuous transitions of the medium-expert recipe."""
    from seqrl.collect.recipes import build_recipe

    data, _ = build_recipe("lunarlander-medium-expert", 1200, n_envs=2, seed=0, reference_episodes=1)
    return data


def dt_run(tmp_path, data, **overrides):
    settings = dict(dataset=data.name, embed_dim=16, n_layers=1, n_heads=1, context_len=5, steps=20,
                    checkpoint_every=20, num_bins=16, rtg_scale=0.01, targets=(200.0,))
    cfg = tiny_config(tmp_path, **{**settings, **overrides})
    train(cfg, dataset=data)
    return tmp_path / "run"


def bc_run(tmp_path, data, **overrides):
    from seqrl.families.bc import BCConfig

    cfg = BCConfig(dataset=data.name, hidden_dim=16, n_layers=2, steps=20, batch_size=16, warmup_steps=2,
                   log_every=10, checkpoint_every=20, progress=False, precision="fp32", device="cpu",
                   run_dir=str(tmp_path / "run"), **overrides)
    train(cfg, dataset=data)
    return tmp_path / "run"


def import_runner(directory):
    """runner.py of an export directory, as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"runner_{abs(hash(str(directory)))}", directory / "runner.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dataset_windows_diff(run, runner_policy, data, rows: int = 4) -> float:
    """The largest difference between seqrl's policy and the runner over STATES dataset states.

    `rows` episodes (the longest) are fed side by side, STATES / rows steps each: both see the
    dataset's observations, then the dataset's actions and rewards (teacher forcing), so both
    hold the same real windows: the context shifts once full, and the return-to-go drops by
    the dataset's rewards."""
    family = get_family(run.family)
    condition = family.conditions(run.config, run.spec)[0]
    ours = family.make_policy(run.model, run.spec, run.config, condition)
    episodes = np.argsort(-data.episode_lengths, kind="stable")[:rows]
    steps = STATES // rows
    assert data.episode_lengths[episodes].min() >= steps
    starts = data.episode_starts[episodes]
    ours.reset(rows, seed=0)
    runner_policy.reset(rows)
    every = np.arange(rows)
    worst = 0.0
    for t in range(steps):
        obs = data.observations[starts + t]
        a = ours.act(every, obs, np.full(rows, t))
        b = runner_policy.act(obs)
        assert b.shape == a.shape == (rows, run.spec.act_dim) and b.dtype == np.float32
        worst = max(worst, float(np.abs(a - b).max()))
        ours.observe(every, data.actions[starts + t], data.rewards[starts + t])
        runner_policy.observe(data.actions[starts + t], data.rewards[starts + t])
    return worst


def runner_episodes(runner_policy, manifest, seed: int, episodes: int) -> tuple[list[float], list[int]]:
    """Episodes in the real environment driven by the exported runner alone (one at a time;
    episode i reset with seed + i, as seqrl's evaluation seeds its vector env)."""
    env = gym.make(manifest["run"]["env_id"], max_episode_steps=EPISODE_STEPS, **(manifest["run"]["env_kwargs"] or {}))
    low, high = env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32)
    returns, lengths = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        runner_policy.reset(1)
        total, steps, done = 0.0, 0, False
        while not done:
            action = np.clip(runner_policy.act(obs[None])[0], low, high)
            obs, reward, terminated, truncated, _ = env.step(action)
            runner_policy.observe(action[None], [reward])
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
    env.close()
    return returns, lengths


def check_export(run_dir, data, tmp_path) -> dict[str, float]:
    """Both formats against seqrl: dataset states, then episodes. Returns the measured maxima."""
    run = load_run(run_dir)
    family = get_family(run.family)
    condition = family.conditions(run.config, run.spec)[0]
    seqrl_result = evaluate(run.model, run.spec, config=run.config, episodes=2, seed=0,
                            max_episode_steps=EPISODE_STEPS, progress=False,
                            targets=None if condition is None else [condition])[0]
    measured = {}
    for fmt in ("onnx", "torchscript"):
        out = tmp_path / f"export-{fmt}"
        manifest = export_run(run_dir, out, format=fmt)
        assert manifest["check"]["checked"] and manifest["check"]["max_abs_diff"] <= ACTION_TOL
        assert (out / manifest["file"]).is_file() and (out / "README.md").is_file()
        policy = import_runner(out).Policy(str(out))
        measured[f"{fmt}/actions"] = diff = dataset_windows_diff(run, policy, data)
        assert diff <= ACTION_TOL, f"{fmt}: actions differ from seqrl's by {diff}"
        returns, lengths = runner_episodes(policy, manifest, seed=0, episodes=2)
        assert lengths == seqrl_result["lengths"], fmt
        theirs = np.array(seqrl_result["returns"])
        measured[f"{fmt}/return"] = gap = float((np.abs(np.array(returns) - theirs) / np.maximum(1, np.abs(theirs))).max())
        assert gap <= RETURN_TOL, f"{fmt}: returns {returns} against seqrl's {seqrl_result['returns']}"
    print(json.dumps(measured))  # shown with -s: the numbers docs/export.md quotes
    return measured


@pytest.mark.parametrize("overrides", DT_CASES)
def test_dt_exports_reproduce_seqrl(tmp_path, lander, overrides):
    check_export(dt_run(tmp_path, lander, **overrides), lander, tmp_path)


def test_an_lm_initialised_dt_with_lora_exports(tmp_path, lander, tiny_gpt2):
    """A trunk from GPT-2 (its tanh GELU) with LoRA adapters on the attention: the step traces
    through the adapters."""
    check_export(dt_run(tmp_path, lander, model="tokenized-spread", init=f"gpt2:{tiny_gpt2}", lora_rank=2,
                        n_heads=2), lander, tmp_path)


@pytest.mark.parametrize("overrides", BC_CASES)
def test_bc_exports_reproduce_seqrl(tmp_path, lander, overrides):
    check_export(bc_run(tmp_path, lander, **overrides), lander, tmp_path)


# --------------------------------------------------------------------------- the runner alone
RUNNER_ALONE = textwrap.dedent("""
    import json, sys
    sys.modules["seqrl"] = None  # not importable, whatever the environment's editable install says
    sys.modules[{blocked!r}] = None  # nor the other format's runtime
    sys.path = [p for p in sys.path if not p.rstrip("/").endswith("src")]
    sys.path.insert(0, {directory!r})
    import numpy as np
    from runner import Policy
    policy = Policy({directory!r})
    policy.reset(2)
    actions = []
    for t in range(7):
        obs = np.full((2, {obs_dim}), 0.1 * t, np.float32)
        a = policy.act(obs)
        policy.observe(a, [1.0, -1.0])
        actions.append(a.tolist())
    print(json.dumps(actions))
""")


@pytest.mark.parametrize("fmt, blocked", [("onnx", "torch"), ("torchscript", "onnxruntime")])
@pytest.mark.parametrize("family", ["dt", "bc"])
def test_runner_runs_without_seqrl(tmp_path, lander, fmt, blocked, family):
    run_dir = (dt_run(tmp_path, lander, model="tokenized-spread", head="categorical") if family == "dt"
               else bc_run(tmp_path, lander, history_len=2))
    out = tmp_path / "export"
    manifest = export_run(run_dir, out, format=fmt)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = RUNNER_ALONE.format(directory=str(out), obs_dim=manifest["obs_dim"], blocked=blocked)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    alone = np.array(json.loads(done.stdout))
    # The same calls in this process give the same actions.
    policy = import_runner(out).Policy(str(out))
    policy.reset(2)
    here = []
    for t in range(7):
        a = policy.act(np.full((2, manifest["obs_dim"]), 0.1 * t, np.float32))
        policy.observe(a, [1.0, -1.0])
        here.append(a)
    np.testing.assert_array_equal(alone, np.array(here))


# --------------------------------------------------------------------------- refusals and the command
def test_seqrl_export_command_writes_a_directory(tmp_path, lander, capsys):
    run_dir = dt_run(tmp_path, lander, model="continuous-spread")
    main(["export", str(run_dir), "--format", "torchscript", "--out", str(tmp_path / "ts")])
    assert "exported dt continuous-spread" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "ts" / "manifest.json").read_text())
    assert manifest["format"] == "torchscript" and manifest["file"] == "policy.pt" and manifest["spread"]
    assert sorted(p.name for p in (tmp_path / "ts").iterdir()) == ["README.md", "manifest.json", "policy.pt", "runner.py"]
    # An existing export is not overwritten unless asked.
    with pytest.raises(SystemExit):
        main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "ts")])
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "ts"), "--overwrite"])
    assert sorted(p.name for p in (tmp_path / "ts").iterdir()) == ["README.md", "manifest.json", "policy.onnx", "runner.py"]


def test_sampling_runs_export_only_with_a_deterministic_decode(tmp_path, lander):
    run_dir = dt_run(tmp_path, lander, model="tokenized", head="categorical", decode="sample")
    with pytest.raises(ConfigError, match="--decode argmax or --decode expectation"):
        export_run(run_dir, tmp_path / "a")
    manifest = export_run(run_dir, tmp_path / "b", decode="argmax")
    assert manifest["decode"] == "argmax" and "argmax (the run's own is sample)" in manifest["notes"][0]
    assert "the run's own is sample" in (tmp_path / "b" / "README.md").read_text()
    with pytest.raises(ConfigError, match="--decode sample cannot be exported"):
        export_run(run_dir, tmp_path / "c", decode="sample")
    regression = dt_run(tmp_path / "r", lander, model="continuous")
    with pytest.raises(ConfigError, match="applies to a categorical action head"):
        export_run(regression, tmp_path / "d", decode="argmax")


def test_a_trajectory_transformer_run_is_refused_by_name(tmp_path, lander, capsys):
    from tests.helpers.tt import tiny_tt_config

    train(tiny_tt_config(tmp_path, dataset=lander.name, steps=2, checkpoint_every=2), dataset=lander)
    with pytest.raises(ConfigError, match=r"a tt run \(Trajectory Transformer\) cannot be exported: .*beam-search"):
        export_run(tmp_path / "tt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path / "tt"), "--out", str(tmp_path / "out")])
    assert "a tt run (Trajectory Transformer) cannot be exported" in capsys.readouterr().err


@pytest.mark.parametrize("tag", ["lm", "dynamics", "mtdt"])
def test_families_without_an_exported_policy_are_refused_by_name(tag):
    family = get_family(tag)
    assert family.exports == ()
    with pytest.raises(ConfigError, match=rf"a {tag} run cannot be exported .* the families that export are: bc, dt"):
        family.export_policy(None)
