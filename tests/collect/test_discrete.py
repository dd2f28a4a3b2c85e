"""Collecting with Discrete(n) action spaces: epsilon-greedy noise, the zoo's discrete agents,
integer actions through Minari, and clear errors for what does not fit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from seqrl.collect.policies import EpsilonGreedy, RandomPolicy, action_spec, load_zoo_policy
from seqrl.collect.recipes import custom_recipe, parse_source
from seqrl.collect.rollout import collect, evaluate_returns
from seqrl.errors import ConfigError

CHOICE_ENV_ID = "seqrl-test/Choice-v0"
MULTI_ENV_ID = "seqrl-test/MultiChoice-v0"


class ChoiceEnv(gym.Env):
    """obs = [episode tag, step]; Discrete(3) actions; reward = the action taken, so the data
    shows which action was executed. Episodes last 4 steps."""

    def __init__(self, multi: bool = False) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = gym.spaces.MultiDiscrete([3, 2]) if multi else gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._tag, self._t = float(self.np_random.uniform(1, 2)), 0
        return np.array([self._tag, 0.0]), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self._t += 1
        reward = float(np.asarray(action).reshape(-1)[0])
        return np.array([self._tag, float(self._t)]), reward, self._t >= 4, False, {}


@pytest.fixture(scope="module")
def choice_env_id() -> str:
    if CHOICE_ENV_ID not in gym.registry:
        gym.register(CHOICE_ENV_ID, entry_point=ChoiceEnv)
        gym.register(MULTI_ENV_ID, entry_point=ChoiceEnv, kwargs={"multi": True})
    return CHOICE_ENV_ID


class Constant:
    """Always action `a` (shape (n_envs,)); counts its calls."""

    spec = {"kind": "constant"}

    def __init__(self, a: int = 2) -> None:
        self.a, self.calls = a, 0

    def __call__(self, obs):
        self.calls += 1
        return np.full(len(obs), self.a, dtype=np.int64)


# ----------------------------------------------------------------------------- without the zoo
def test_discrete_collect_records_int64_indices_as_executed(choice_env_id):
    data = collect(choice_env_id, RandomPolicy(gym.spaces.Discrete(3), seed=0), 40, n_envs=3, seed=0)
    assert data.discrete and data.num_actions == 3
    assert data.actions.dtype == np.int64 and data.actions.shape == (40, 1)
    assert np.array_equal(data.rewards, data.actions[:, 0].astype(np.float32))  # reward = executed action
    assert set(np.unique(data.actions)) == {0, 1, 2}
    assert data.metadata["action_space"] == {"type": "Discrete", "n": 3} and data.metadata["epsilon"] == 0.0
    assert "action_low" not in data.metadata
    # (n_envs, 1) outputs are accepted too, and whole-number floats.
    column = collect(choice_env_id, lambda obs: np.ones((len(obs), 1)), 8, n_envs=2, seed=0)
    assert column.actions[:, 0].tolist() == [1] * 8 and column.actions.dtype == np.int64


def test_epsilon_greedy_zero_is_the_policy_and_one_is_uniform():
    obs = np.zeros((20_000, 2))
    space = gym.spaces.Discrete(4)
    assert np.array_equal(EpsilonGreedy(Constant(2), 0.0, space, seed=0)(obs), np.full(20_000, 2))
    uniform = EpsilonGreedy(Constant(2), 1.0, space, seed=0)(obs)
    counts = np.bincount(uniform, minlength=4)
    assert np.all(np.abs(counts / 20_000 - 0.25) < 0.015), counts  # ~8 standard errors apart
    # With eps = 0.3 the action differs from the greedy one with probability 0.3 * 3/4.
    noisy = EpsilonGreedy(Constant(2), 0.3, space, seed=1)(obs)
    assert abs(np.mean(noisy != 2) - 0.225) < 0.015
    again = EpsilonGreedy(Constant(2), 0.3, space, seed=1)(obs)
    assert np.array_equal(noisy, again)  # seeded
    assert EpsilonGreedy(Constant(2), 0.3, space).spec == {"kind": "constant", "epsilon": 0.3}


def test_collect_with_epsilon_is_seeded_and_recorded(choice_env_id):
    policy = Constant(0)
    a = collect(choice_env_id, policy, 400, n_envs=4, seed=3, epsilon=0.5)
    b = collect(choice_env_id, Constant(0), 400, n_envs=4, seed=3, epsilon=0.5)
    assert np.array_equal(a.actions, b.actions)
    assert policy.calls == 100  # the policy still sees every step
    assert abs(np.mean(a.actions != 0) - 0.5 * 2 / 3) < 0.08
    assert a.metadata["epsilon"] == 0.5 and a.metadata["policy"]["epsilon"] == 0.5
    assert a.metadata["noise_std"] == 0.0


@pytest.mark.parametrize("epsilon", [1.5, -0.1, float("nan")])
def test_epsilon_outside_zero_one_is_refused(choice_env_id, epsilon):
    with pytest.raises(ConfigError, match=r"epsilon must be in \[0, 1\].*probability of a uniformly random action"):
        collect(choice_env_id, Constant(), 10, epsilon=epsilon)
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\]"):
        parse_source(f"dqn:{epsilon}", discrete=True)


def test_each_noise_belongs_to_its_kind_of_space(choice_env_id, counter_env_id):
    with pytest.raises(ConfigError, match=r"Discrete\(3\) actions: Gaussian action noise \(noise_std=0.2\) has no meaning"):
        collect(choice_env_id, Constant(), 10, noise_std=0.2)
    with pytest.raises(ConfigError, match="epsilon-greedy noise \\(epsilon=0.1\\) is for Discrete action spaces"):
        collect(counter_env_id, lambda obs: np.zeros((len(obs), 1)), 10, epsilon=0.1)
    # The same text means epsilon on a discrete task and a Gaussian std on a continuous one.
    assert parse_source("dqn:0.1", discrete=True).epsilon == 0.1 and parse_source("sac:0.1").noise_std == 0.1
    recipe = custom_recipe(choice_env_id, ["random:0.2"])
    assert recipe.sources[0].epsilon == 0.2 and recipe.sources[0].noise_std == 0.0
    assert recipe.name == "choice-random_eps0p2" and recipe.description == "random + epsilon 0.2"


def test_continuous_policies_cannot_act_in_a_discrete_space(choice_env_id):
    with pytest.raises(ConfigError, match=r"shape \(2, 2\) for the Discrete\(3\) action space.*continuous policy cannot act here"):
        collect(choice_env_id, lambda obs: np.zeros((len(obs), 2)), 10, n_envs=2)
    with pytest.raises(ConfigError, match=r"non-integer actions \(e.g. 0.4\) for the Discrete\(3\).*continuous policy"):
        collect(choice_env_id, lambda obs: np.full(len(obs), 0.4), 10, n_envs=2)
    with pytest.raises(ConfigError, match=r"action 3, not an index of the Discrete\(3\) action space \(0..2\)"):
        collect(choice_env_id, lambda obs: np.full(len(obs), 3), 10, n_envs=2)


def test_multidiscrete_is_refused_by_name(choice_env_id, minari_root, capsys):
    from seqrl.cli import main

    with pytest.raises(ConfigError, match=r"MultiDiscrete \(MultiDiscrete\(\[3 2\]\)\), which seqrl cannot collect"):
        collect(MULTI_ENV_ID, Constant(), 10)
    with pytest.raises(ConfigError, match="MultiDiscrete"):
        RandomPolicy(gym.spaces.MultiDiscrete([3, 2]))
    with pytest.raises(ConfigError, match="MultiDiscrete"):
        action_spec(gym.spaces.MultiDiscrete([2, 2]))
    with pytest.raises(SystemExit):
        main(["collect", "--env", MULTI_ENV_ID, "--policy", "random", "--transitions", "10"])
    assert "MultiDiscrete" in capsys.readouterr().err


def test_reference_returns_run_on_discrete_tasks(choice_env_id):
    returns = evaluate_returns(choice_env_id, Constant(2), 3)
    assert returns.tolist() == [8.0, 8.0, 8.0]  # 4 steps of reward 2


# ----------------------------------------------------------------------------- the zoo's agents
ZOO_DISCRETE = [
    ("dqn", "LunarLander-v3", 4), ("qrdqn", "LunarLander-v3", 4), ("ppo", "LunarLander-v3", 4),
    ("a2c", "LunarLander-v3", 4), ("trpo", "LunarLander-v3", 4),
    ("dqn", "CartPole-v1", 2), ("qrdqn", "CartPole-v1", 2), ("ppo", "CartPole-v1", 2),
    ("a2c", "CartPole-v1", 2), ("trpo", "CartPole-v1", 2),
    ("dqn", "Acrobot-v1", 3), ("qrdqn", "Acrobot-v1", 3), ("ppo", "Acrobot-v1", 3),
    ("a2c", "Acrobot-v1", 3), ("trpo", "Acrobot-v1", 3),
]  # fmt: skip


@pytest.mark.zoo
@pytest.mark.parametrize(("algo", "env_id", "n"), ZOO_DISCRETE)
def test_every_discrete_zoo_agent_loads_and_chooses_indices(zoo_dir, algo, env_id, n):
    policy = load_zoo_policy(zoo_dir, algo, env_id)
    env = gym.make(env_id)
    obs = np.stack([env.reset(seed=i)[0] for i in range(5)])
    actions = np.asarray(policy(obs))
    assert actions.shape == (5,) and actions.dtype.kind in "iu"
    assert np.all((0 <= actions) & (actions < n))
    assert np.array_equal(actions, np.asarray(policy(obs)))  # deterministic
    # The zoo normalised Acrobot's observations for its actor-critic agents only.
    with_stats = algo in ("ppo", "a2c", "trpo") and env_id == "Acrobot-v1"
    assert policy.spec["obs_normalization"] is with_stats and (policy.normalizer is not None) is with_stats
    assert policy.spec["trained_env"] == {"LunarLander-v3": "LunarLander-v2"}.get(env_id, env_id)


@pytest.mark.zoo
def test_vecnormalize_is_applied_to_the_discrete_agents(zoo_dir):
    policy = load_zoo_policy(zoo_dir, "ppo", "Acrobot-v1")
    obs = np.stack([gym.make("Acrobot-v1").reset(seed=i)[0] for i in range(4)])
    norm = policy.normalizer
    expected = np.clip((obs - norm.mean) / np.sqrt(norm.var + norm.epsilon), -norm.clip_obs, norm.clip_obs)
    assert np.allclose(policy.observations(obs), expected)
    # The agent swings up well within Acrobot's 500 steps (random actions never do: -500).
    assert evaluate_returns("Acrobot-v1", policy, 4, seed=0).mean() > -150


@pytest.mark.zoo
def test_epsilon_zero_is_the_dqn_agents_greedy_action(zoo_dir):
    import torch

    policy = load_zoo_policy(zoo_dir, "dqn", "LunarLander-v3")
    data = collect("LunarLander-v3", policy, 300, n_envs=2, seed=0, epsilon=0.0)
    again = collect("LunarLander-v3", policy, 300, n_envs=2, seed=0, epsilon=0.0)
    assert np.array_equal(data.actions, again.actions) and np.array_equal(data.observations, again.observations)
    with torch.no_grad():  # the argmax of the agent's own Q-network on the recorded observations
        q = policy.model.q_net(torch.as_tensor(data.observations))
    assert np.array_equal(data.actions[:, 0], q.argmax(dim=1).numpy())
    assert data.metadata["policy"]["algo"] == "dqn" and data.metadata["epsilon"] == 0.0
    # "Stochastic" is greedy too: no hidden epsilon saved from training acts behind the data's back.
    sampled = load_zoo_policy(zoo_dir, "dqn", "LunarLander-v3", deterministic=False, seed=0)
    assert np.array_equal(sampled(data.observations), data.actions[:, 0])


@pytest.mark.zoo
def test_epsilon_one_is_uniform_whatever_the_agent(zoo_dir):
    import torch

    policy = load_zoo_policy(zoo_dir, "dqn", "LunarLander-v3")
    data = collect("LunarLander-v3", policy, 4000, n_envs=4, seed=0, epsilon=1.0)
    counts = np.bincount(data.actions[:, 0], minlength=4) / data.num_transitions
    assert np.all(np.abs(counts - 0.25) < 0.03), counts
    with torch.no_grad():
        greedy = policy.model.q_net(torch.as_tensor(data.observations)).argmax(dim=1).numpy()
    assert abs(np.mean(greedy == data.actions[:, 0]) - 0.25) < 0.03  # agrees only by chance


@pytest.mark.zoo
def test_seqrl_collect_env_policy_writes_a_discrete_minari_dataset(zoo_dir, minari_root, capsys):
    import minari

    from seqrl.cli import main
    from seqrl.data.sources import load_dataset

    main(["collect", "--env", "Acrobot-v1", "--policy", "dqn:0.1", "--transitions", "600", "--n-envs", "2",
          "--zoo", str(zoo_dir)])
    out = capsys.readouterr().out
    assert "seqrl/acrobot-dqn_eps0p1-v0" in out and "dqn + epsilon 0.1" in out
    data = load_dataset("acrobot-dqn_eps0p1")
    assert data.discrete and data.num_actions == 3 and data.actions.dtype == np.int64
    assert data.num_transitions == 600 and data.metadata["env_id"] == "Acrobot-v1"
    assert data.metadata["sources"][0]["epsilon"] == 0.1 and data.metadata["sources"][0]["policy"]["algo"] == "dqn"
    assert data.metadata["ref_min_score"] == -500.0 and data.metadata["ref_max_score"] > -100
    theirs = minari.load_dataset("seqrl/acrobot-dqn_eps0p1-v0")
    assert str(theirs.action_space) == "Discrete(3)"
    assert theirs.recover_environment().spec.id == "Acrobot-v1"


@pytest.mark.zoo
def test_wrong_kind_of_agent_for_the_task_is_named(zoo_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"dqn acts in discrete action spaces only, but Hopper-v5 has Box"):
        load_zoo_policy(zoo_dir, "dqn", "Hopper-v5")
    with pytest.raises(ConfigError, match=r"sac acts in continuous action spaces only, but CartPole-v1 has Discrete\(2\).*dqn"):
        load_zoo_policy(zoo_dir, "sac", "CartPole-v1")
    # An agent whose file says Box actions, filed under a discrete task (and the reverse).
    (tmp_path / "ppo" / "CartPole-v1_1").mkdir(parents=True)
    (tmp_path / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip").symlink_to(zoo_dir / "ppo" / "Hopper-v3_1" / "Hopper-v3.zip")
    with pytest.raises(ConfigError, match=r"ppo/CartPole-v1_1 agent's actions are continuous \(Box \(3,\)\), but CartPole-v1's are discrete"):
        load_zoo_policy(tmp_path, "ppo", "CartPole-v1")
    (tmp_path / "a2c" / "Hopper-v3_1").mkdir(parents=True)
    (tmp_path / "a2c" / "Hopper-v3_1" / "Hopper-v3.zip").symlink_to(zoo_dir / "a2c" / "CartPole-v1_1" / "CartPole-v1.zip")
    with pytest.raises(ConfigError, match=r"actions are discrete \(Discrete\), but Hopper-v5's are continuous.*a discrete policy cannot act"):
        load_zoo_policy(tmp_path, "a2c", "Hopper-v5")
    (tmp_path / "dqn" / "Acrobot-v1_1").mkdir(parents=True)
    (tmp_path / "dqn" / "Acrobot-v1_1" / "Acrobot-v1.zip").symlink_to(zoo_dir / "dqn" / "CartPole-v1_1" / "CartPole-v1.zip")
    with pytest.raises(ConfigError, match=r"chooses among 2 actions, but Acrobot-v1 has Discrete\(3\)"):
        load_zoo_policy(tmp_path, "dqn", "Acrobot-v1")
