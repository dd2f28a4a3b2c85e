"""Any rl-baselines3-zoo agent as a behaviour policy: its config.yml / env_kwargs.yml / wrapper are
read and the observation it was trained on is rebuilt (TimeFeatureWrapper, matching layouts), and
`seqrl collect --env ENV_ID --policy ALGO[:noise] ...` mixes sources for tasks without a recipe.

The agents here are real SB3 models trained by the fixtures for a few hundred steps and saved in
the zoo's layout (config.yml written with the zoo's own OrderedDict YAML).
"""

from __future__ import annotations

import collections
import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

from seqrl.collect import recipes
from seqrl.collect.policies import load_zoo_policy
from seqrl.collect.rollout import collect, evaluate_returns
from seqrl.collect.zoo import Layout, ZooAgent, read_zoo_agent, read_zoo_yaml, resolve_layout
from seqrl.errors import ConfigError

TIME_FEATURE = "sb3_contrib.common.wrappers.TimeFeatureWrapper"


def save_in_zoo_layout(zoo: Path, algo: str, env_name: str, model, venv=None, hyperparams=None, env_kwargs=None) -> Path:
    """ALGO/ENV_1/ENV.zip plus ENV_1/ENV/{config,args,env_kwargs}.yml (and vecnormalize.pkl)."""
    run = zoo / algo / f"{env_name}_1"
    files = run / env_name
    files.mkdir(parents=True)
    model.save(run / f"{env_name}.zip")
    if venv is not None:
        venv.save(files / "vecnormalize.pkl")
    config = collections.OrderedDict(sorted({"n_timesteps": 256, "policy": "MlpPolicy", **(hyperparams or {})}.items()))
    (files / "config.yml").write_text(yaml.dump(config))  # the zoo writes it this way
    (files / "args.yml").write_text(yaml.dump(collections.OrderedDict([("algo", algo), ("env", env_name)])))
    (files / "env_kwargs.yml").write_text(yaml.dump(env_kwargs or {}))
    return run


def time_feature_venv():
    from sb3_contrib.common.wrappers import TimeFeatureWrapper
    from stable_baselines3.common.vec_env import DummyVecEnv

    return DummyVecEnv([lambda: TimeFeatureWrapper(gym.make("Pendulum-v1"))])


@pytest.fixture(scope="module")
def trained_zoo(tmp_path_factory) -> Path:
    """A PPO agent trained 256 steps on Pendulum-v1 behind TimeFeatureWrapper and VecNormalize (the
    zoo's PPO MuJoCo setup), and one trained 64 steps on Ant's v3 layout (Ant-v4 with contact
    forces, 111 features), filed as the zoo files its Ant-v3 agents."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    zoo = tmp_path_factory.mktemp("zoo")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        venv = VecNormalize(time_feature_venv(), norm_reward=False)
        model = PPO("MlpPolicy", venv, n_steps=128, batch_size=64, n_epochs=1, seed=0,
                    policy_kwargs=dict(net_arch=[16]), device="cpu")
        model.learn(256)
        save_in_zoo_layout(zoo, "ppo", "Pendulum-v1", model, venv, hyperparams={
            "env_wrapper": [TIME_FEATURE], "normalize": "dict(norm_obs=True, norm_reward=False)"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ant = PPO("MlpPolicy", gym.make("Ant-v4", use_contact_forces=True), n_steps=64, batch_size=64,
                      n_epochs=1, seed=0, policy_kwargs=dict(net_arch=[16]), device="cpu")
            ant.learn(64)
        save_in_zoo_layout(zoo, "ppo", "Ant-v3", ant)
    finally:
        torch.set_num_threads(threads)
    return zoo


def sb3_reference_actions(zoo: Path, seed: int, steps: int) -> np.ndarray:
    """The agent's actions in SB3's own stack: TimeFeatureWrapper, VecNormalize.load, model.predict."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    files = zoo / "ppo" / "Pendulum-v1_1"
    venv = VecNormalize.load(str(files / "Pendulum-v1" / "vecnormalize.pkl"), time_feature_venv())
    venv.training = False
    model = PPO.load(files / "Pendulum-v1.zip", device="cpu")
    venv.seed(seed)
    obs = venv.reset()
    actions = []
    for _ in range(steps):
        action, _ = model.predict(obs, deterministic=True)
        actions.append(action[0])
        obs, _, _, _ = venv.step(action)
    return np.asarray(actions)


def test_zoo_yaml_is_read_with_its_ordered_dict_tag(trained_zoo):
    config = read_zoo_yaml(trained_zoo / "ppo" / "Pendulum-v1_1" / "Pendulum-v1" / "config.yml")
    assert config["env_wrapper"] == [TIME_FEATURE] and config["policy"] == "MlpPolicy"
    agent = read_zoo_agent(trained_zoo, "ppo", "Pendulum-v1")
    assert agent.obs_shape == (4,) and agent.extra_features == 1 and agent.trained_env == "Pendulum-v1"
    bad = trained_zoo / "evil.yml"
    bad.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception, match="cannot read"):
        read_zoo_yaml(bad)


@pytest.mark.parametrize("autoreset_mode", ["same_step", "next_step"])
def test_time_feature_agent_acts_as_in_sb3s_own_stack_across_episodes(trained_zoo, autoreset_mode):
    """450 steps (two 200-step episodes and part of a third): the time feature restarts at each
    episode, so the actions equal SB3's with the real wrapper and VecNormalize at every step."""
    policy = load_zoo_policy(trained_zoo, "ppo", "Pendulum-v1")
    assert policy.spec["time_feature"] == {"max_steps": 200, "test_mode": False}
    assert policy.spec["obs_normalization"]
    data = collect("Pendulum-v1", policy, 450, n_envs=1, seed=7, autoreset_mode=autoreset_mode)
    assert data.obs_dim == 3  # the dataset keeps the task's own observations
    assert list(data.episode_lengths) == [200, 200, 50]
    np.testing.assert_allclose(data.actions, sb3_reference_actions(trained_zoo, 7, 450), atol=1e-4)


def test_time_feature_is_per_environment(trained_zoo):
    """Three envs at once, and the reference returns' one-episode-per-env loop: each env keeps
    its own step count (env i is seeded 7 + i)."""
    policy = load_zoo_policy(trained_zoo, "ppo", "Pendulum-v1")
    data = collect("Pendulum-v1", policy, 600, n_envs=3, seed=7)
    assert list(data.episode_lengths) == [200, 200, 200]  # one episode per env, in env order
    for i in range(3):
        np.testing.assert_allclose(data.episode(i)["actions"], sb3_reference_actions(trained_zoo, 7 + i, 200), atol=1e-4)
    returns = evaluate_returns("Pendulum-v1", policy, 3, seed=7)
    np.testing.assert_allclose(returns, data.episode_returns, rtol=1e-6)


def test_v3_layout_mismatch_names_the_dimensions_and_the_env_that_matches(trained_zoo):
    with pytest.raises(ConfigError) as info:
        load_zoo_policy(trained_zoo, "ppo", "Ant-v5")
    message = str(info.value)
    assert "the ppo/Ant-v3_1 agent (trained on Ant-v3) takes 111 observation features" in message
    assert "Ant-v5 gives 105" in message
    assert "Ant-v5 with include_cfrc_ext_in_observation=False gives 27" in message
    assert "Ant-v4 with use_contact_forces=True gives 111 and matches: collect with --env Ant-v4" in message
    assert "size mismatch" not in message
    # On Ant-v4 the layout keyword is found and applied by itself.
    policy = load_zoo_policy(trained_zoo, "ppo", "Ant-v4")
    assert policy.layout == Layout("Ant-v4", {"use_contact_forces": True})
    assert policy.spec["env_kwargs"] == {"use_contact_forces": True}


def test_layouts_with_a_time_feature_count_the_extra_feature():
    hopper = dict(algo="ppo", run_dir=Path("ppo/Hopper-v3_1"), env_name="Hopper-v3", trained_env="Hopper-v3",
                  model_path=Path("x.zip"), norm_path=None, wrappers=((TIME_FEATURE, {}),))
    assert resolve_layout(ZooAgent(**hopper, obs_shape=(12,)), "Hopper-v5") == Layout("Hopper-v5", {})
    assert resolve_layout(ZooAgent(**hopper, obs_shape=(13,)), "Hopper-v5") == Layout(
        "Hopper-v5", {"exclude_current_positions_from_observation": False})
    with pytest.raises(ConfigError, match=r"takes 50 observation features \(49 from the environment \+ 1 time "
                                          r"feature\), but Hopper-v5 gives 11.*No registered version"):
        resolve_layout(ZooAgent(**hopper, obs_shape=(50,)), "Hopper-v5")
    with pytest.raises(ConfigError, match="trained behind rl_zoo3.wrappers.HistoryWrapper, which seqrl cannot rebuild"):
        resolve_layout(ZooAgent(**{**hopper, "wrappers": (("rl_zoo3.wrappers.HistoryWrapper", {"horizon": 2}),)},
                                obs_shape=(22,)), "Hopper-v5")


def test_unknown_wrapper_in_config_yml_is_a_clear_error(trained_zoo, tmp_path):
    zoo = tmp_path / "zoo"
    shutil.copytree(trained_zoo / "ppo" / "Pendulum-v1_1", zoo / "ppo" / "Pendulum-v1_1")
    config = zoo / "ppo" / "Pendulum-v1_1" / "Pendulum-v1" / "config.yml"
    config.write_text(yaml.dump(collections.OrderedDict(
        [("env_wrapper", [{"rl_zoo3.wrappers.HistoryWrapper": {"horizon": 2}}]), ("policy", "MlpPolicy")])))
    with pytest.raises(ConfigError, match="HistoryWrapper, which seqrl cannot rebuild"):
        load_zoo_policy(zoo, "ppo", "Pendulum-v1")


def test_collect_env_and_policies_mixes_sources_with_random_and_strongest_references(
    trained_zoo, minari_root, monkeypatch, capsys
):
    from seqrl.cli import main
    from seqrl.data.sources import load_dataset

    monkeypatch.setattr(recipes, "REFERENCE_EPISODES", 2)
    main(["collect", "--env", "Pendulum-v1", "--policy", "ppo", "ppo:0.5", "random", "--zoo", str(trained_zoo),
          "--transitions", "1200", "--n-envs", "2", "--seed", "3"])
    out = capsys.readouterr().out
    assert "seqrl/pendulum-ppo-ppo_noise0p5-random-v0" in out and "expert" in out
    data = load_dataset("pendulum-ppo-ppo_noise0p5-random")
    meta = data.metadata
    assert data.num_transitions == 1200 and data.obs_dim == 3
    assert [(s["policy"].get("algo", s["policy"]["kind"]), s["noise_std"], s["transitions"]) for s in meta["sources"]] == [
        ("ppo", 0.0, 400), ("ppo", 0.5, 400), ("random", 0.0, 400)]
    assert meta["sources"][0]["policy"]["time_feature"]["max_steps"] == 200
    # References: the random policy and the strongest source (the only non-random one, noise-free).
    from seqrl.collect.policies import RandomPolicy

    reference_seed = recipes.REFERENCE_SEED
    random_mean = evaluate_returns("Pendulum-v1", RandomPolicy(gym.make("Pendulum-v1").action_space, seed=reference_seed),
                                   2, seed=reference_seed).mean()
    ppo_mean = evaluate_returns("Pendulum-v1", load_zoo_policy(trained_zoo, "ppo", "Pendulum-v1"), 2,
                                seed=reference_seed).mean()
    assert meta["ref_min_score"] == pytest.approx(random_mean)
    assert meta["ref_max_score"] == pytest.approx(ppo_mean)
    assert meta["reference_expert"] == "ppo" and meta["reference_episodes"] == 2


def test_collect_on_a_task_with_a_layout_keyword_records_it(trained_zoo, minari_root, capsys):
    from seqrl.cli import main
    from seqrl.data.sources import load_dataset

    main(["collect", "--env", "Ant-v4", "--policy", "ppo", "--zoo", str(trained_zoo), "--transitions", "100",
          "--n-envs", "2", "--name", "ant-v3-layout"])
    assert "Ant-v4 with use_contact_forces=True" in capsys.readouterr().out
    data = load_dataset("ant-v3-layout")
    assert data.obs_dim == 111 and data.metadata["env_kwargs"] == {"use_contact_forces": True}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "Pendulum-v1", "--policy", "ddpg"], "unknown policy 'ddpg'"),
        (["--env", "Pendulum-v1", "--policy", "dqn"], "dqn acts in discrete action spaces only, but Pendulum-v1 has Box"),
        (["--env", "Pendulum-v1", "--policy", "ppo:lots"], "the noise after ':' must be a number"),
        (["--env", "Pendulum-v1", "--policy", "ppo:-1"], "must be a finite number >= 0, got -1.0"),
        (["--env", "Pendulum-v1", "--policy", "ppo:nan"], "must be a finite number >= 0, got nan"),
        (["--env", "Pendulum-v1"], "--env needs at least one --policy"),
        (["hopper-medium", "--env", "Hopper-v5", "--policy", "sac"], "not both"),
        ([], "name a RECIPE"),
        (["--env", "NoSuchTask-v0", "--policy", "random"], "unknown environment 'NoSuchTask-v0'"),
        (["--env", "Pendulum-v1", "--policy", "random"], "add a --policy other than random"),
        (["--env", "Pendulum-v1", "--policy", "ppo", "--env-kwargs", "g"], "--env-kwargs takes KEY=VALUE"),
    ],
)
def test_collect_command_line_mistakes(args, message, minari_root, capsys, tmp_path):
    from seqrl.cli import main

    with pytest.raises(SystemExit) as info:
        main(["collect", *args, "--zoo", str(tmp_path), "--transitions", "50", "--n-envs", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.zoo
def test_the_shared_zoos_agents_read_as_trained(zoo_dir):
    config = read_zoo_yaml(zoo_dir / "ppo" / "Hopper-v3_1" / "Hopper-v3" / "config.yml")
    assert config["normalize"] is True and config["policy"] == "MlpPolicy"
    policy = load_zoo_policy(zoo_dir, "ppo", "Hopper-v5")
    assert policy.spec["trained_env"] == "Hopper-v3" and policy.layout == Layout("Hopper-v5", {})
    assert policy.time_feature is None
