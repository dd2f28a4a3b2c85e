"""Recipes: each family collected small, returns checked against the policies' known returns.

Known deterministic returns on the -v5 tasks (zoo README, re-measured in docs/datasets.md):
hopper SAC ~1100 (episodes ~300 steps, a few reach ~1800), TRPO ~3620; halfcheetah PPO ~5900, TQC ~12000;
walker2d ARS ~1000 (falls after ~400 steps), TQC ~4500. LunarLander heuristic ~+280,
uniform random ~-200.
"""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.collect import recipes
from seqrl.collect.recipes import RECIPES, build_recipe, collect_command, get_recipe
from seqrl.collect.rollout import finished_episode_mask
from seqrl.data.scores import normalized_score, reference_returns
from seqrl.errors import ConfigError, DatasetError


def finished_returns(dataset, source: int) -> np.ndarray:
    """Returns of the episodes of source `source` that ended in the environment."""
    counts = [s["episodes"] for s in dataset.metadata["sources"]]
    start = sum(counts[:source])
    mask = finished_episode_mask(dataset)[start : start + counts[source]]
    returns = dataset.episode_returns[start : start + counts[source]][mask]
    assert len(returns) > 0, "no finished episode to check"
    return returns


def test_menu_rebuilds_d4rl_names():
    for family in ("hopper", "halfcheetah", "walker2d"):
        for kind in ("random", "medium", "expert", "medium-expert", "mixed"):
            assert f"{family}-{kind}" in RECIPES
    for kind in ("random", "medium", "expert", "medium-expert"):
        assert f"lunarlander-{kind}" in RECIPES
    medium, expert = get_recipe("hopper-medium"), get_recipe("hopper-expert")
    assert get_recipe("hopper-medium-expert").sources == (
        recipes.Source(medium.sources[0].policy, share=0.5),
        recipes.Source(expert.sources[0].policy, share=0.5),
    )


@pytest.mark.zoo
@pytest.mark.parametrize(
    "family, medium_range, expert_min",
    [
        ("hopper", (800, 2000), 3300),
        ("halfcheetah", (5300, 6400), 11000),
        ("walker2d", (600, 1600), 4000),
    ],
)
def test_mujoco_medium_expert_returns_match_the_policies(family, medium_range, expert_min, zoo_dir, in_tmp_dir):
    # 1 env x 1000 steps per source: one whole 1000-step expert episode (these deterministic
    # agents vary by a few percent between episodes), several shorter medium ones.
    data, save_args = build_recipe(f"{family}-medium-expert", 2000, zoo=zoo_dir, n_envs=1, seed=0)
    assert data.num_transitions == 2000
    medium, expert = finished_returns(data, 0), finished_returns(data, 1)
    assert medium_range[0] < medium.mean() < medium_range[1]
    assert expert.mean() > expert_min
    # D4RL's reference returns apply; nothing to store.
    assert save_args["ref_min_score"] is None and save_args["ref_max_score"] is None
    low, high = reference_returns(data.metadata["env_id"], data.metadata)
    assert normalized_score(expert.mean(), low, high) > 85
    assert normalized_score(expert.mean(), low, high) - normalized_score(medium.mean(), low, high) > 40
    sources = data.metadata["sources"]
    assert [s["policy"]["algo"] for s in sources] == [get_recipe(f"{family}-{k}").sources[0].policy for k in ("medium", "expert")]
    assert [s["transitions"] for s in sources] == [1000, 1000]


@pytest.mark.zoo
def test_hopper_random_scores_near_zero(zoo_dir):
    data, _ = build_recipe("hopper-random", 1000, zoo=zoo_dir, n_envs=4, seed=0)
    returns = finished_returns(data, 0)
    low, high = reference_returns("Hopper-v5")
    assert abs(normalized_score(returns.mean(), low, high)) < 5
    assert data.metadata["sources"][0]["policy"]["kind"] == "random"


@pytest.mark.zoo
def test_mixed_recipe_records_every_policy_and_noise(zoo_dir):
    recipe = get_recipe("hopper-mixed")
    data, _ = build_recipe("hopper-mixed", 1000, zoo=zoo_dir, n_envs=2, seed=0)
    sources = data.metadata["sources"]
    assert len(sources) == len(recipe.sources) >= 4
    assert sum(s["transitions"] for s in sources) == data.num_transitions == 1000
    for declared, recorded in zip(recipe.sources, sources):
        assert recorded["policy"].get("algo", recorded["policy"]["kind"]) == declared.policy
        assert recorded["noise_std"] == declared.noise_std
    assert len({s["noise_std"] for s in sources}) >= 2
    assert len({s["seed"] for s in sources}) == len(sources)  # no shared streams


def test_lunarlander_grades_and_reference_returns():
    expert, save_args = build_recipe("lunarlander-expert", 3000, n_envs=4, seed=0, reference_episodes=5)
    medium, _ = build_recipe("lunarlander-medium", 3000, n_envs=4, seed=0, reference_episodes=5)
    random, _ = build_recipe("lunarlander-random", 1500, n_envs=4, seed=0, reference_episodes=5)
    expert_r, medium_r, random_r = (finished_returns(d, 0).mean() for d in (expert, medium, random))
    assert expert_r > 200
    assert random_r < 0
    assert random_r + 50 < medium_r < expert_r - 100
    low, high = save_args["ref_min_score"], save_args["ref_max_score"]
    assert low < -50 and high > 200
    # Fixed reference seed: every lunarlander dataset is normalised the same way.
    assert (medium.metadata["ref_min_score"], medium.metadata["ref_max_score"]) == (low, high)
    assert medium.metadata["sources"][0]["noise_std"] > 0
    assert medium.metadata["sources"][0]["policy"]["kind"] == "heuristic"


def test_same_seed_same_dataset():
    a, _ = build_recipe("lunarlander-medium-expert", 800, n_envs=4, seed=7, reference_episodes=2)
    b, _ = build_recipe("lunarlander-medium-expert", 800, n_envs=4, seed=7, reference_episodes=2)
    c, _ = build_recipe("lunarlander-medium-expert", 800, n_envs=4, seed=8, reference_episodes=2)
    for key in ("observations", "actions", "rewards", "terminations", "truncations", "episode_starts"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.array_equal(a.actions[:100], c.actions[:100])


def test_noise_override_applies_to_every_source():
    data, _ = build_recipe("lunarlander-medium-expert", 400, n_envs=2, noise=0.2, reference_episodes=2)
    assert [s["noise_std"] for s in data.metadata["sources"]] == [0.2, 0.2]


def test_collect_command_saves_a_loadable_dataset(minari_root, monkeypatch, capsys):
    from seqrl.data.sources import load_dataset

    monkeypatch.setattr(recipes, "REFERENCE_EPISODES", 3)
    collect_command("lunarlander-random", transitions=600, seed=1, n_envs=3)
    out = capsys.readouterr().out
    assert "seqrl/lunarlander-random-v0" in out and "normalized score" in out
    loaded = load_dataset("lunarlander-random")
    assert loaded.num_transitions == 600
    meta = loaded.metadata
    assert meta["recipe"] == "lunarlander-random" and meta["seed"] == 1
    assert meta["ref_min_score"] < 0 < meta["ref_max_score"]
    assert meta["sources"][0]["policy"]["kind"] == "random"
    with pytest.raises(DatasetError, match="already exists"):
        collect_command("lunarlander-random", transitions=600, seed=1, n_envs=3)
    collect_command("lunarlander-random", transitions=300, seed=2, n_envs=3, overwrite=True)
    assert load_dataset("lunarlander-random").num_transitions == 300


def test_cli_takes_the_recipe_as_a_positional(minari_root, monkeypatch, capsys):
    from seqrl.cli import main

    monkeypatch.setattr(recipes, "REFERENCE_EPISODES", 2)
    main(["collect", "lunarlander-expert", "--transitions", "300", "--n-envs", "2"])
    assert (minari_root / "seqrl" / "lunarlander-expert-v0").is_dir()


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown recipe 'hopper-medium-replay'.*hopper-medium.*lunarlander-expert"):
        build_recipe("hopper-medium-replay")


def test_mujoco_recipe_without_zoo_says_how_to_give_one_and_where_it_looked(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("SEQRL_ZOO", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no zoo/ here, no shared/zoo beside it
    with pytest.raises(ConfigError, match=rf"--zoo DIR or set SEQRL_ZOO .*none was found in {tmp_path / 'zoo'}, "
                                          rf"{tmp_path.parent / 'shared' / 'zoo'}, {tmp_path / 'home' / '.seqrl' / 'zoo'}"):
        build_recipe("walker2d-expert", 100)
    from seqrl.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["collect", "hopper-medium", "--transitions", "100"])
    assert exit_info.value.code == 2
    assert "SEQRL_ZOO" in capsys.readouterr().err


def test_too_few_transitions_for_the_sources():
    with pytest.raises(ConfigError, match="at least 2 transitions"):
        build_recipe("lunarlander-medium-expert", 1)


def test_the_zoo_is_found_in_its_default_places_without_flags(monkeypatch, tmp_path):
    from seqrl.paths import zoo_root

    monkeypatch.delenv("SEQRL_ZOO", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    project = tmp_path / "main"
    project.mkdir()
    monkeypatch.chdir(project)
    assert zoo_root() is None
    (tmp_path / "shared" / "zoo").mkdir(parents=True)  # this project's layout: ../shared/zoo
    assert zoo_root() == tmp_path / "shared" / "zoo"
    (project / "zoo").mkdir()
    assert zoo_root() == project / "zoo"  # the working directory's own first
    monkeypatch.setenv("SEQRL_ZOO", str(tmp_path / "elsewhere"))
    assert zoo_root() == tmp_path / "elsewhere"  # the variable, then --zoo, win
    assert zoo_root(str(tmp_path / "given")) == tmp_path / "given"


# ----------------------------------------------------------------------------- discrete lander
def test_discrete_lunarlander_menu():
    for kind in ("random", "medium", "expert", "medium-expert", "mixed"):
        recipe = get_recipe(f"lunarlander-discrete-{kind}")
        assert recipe.env_id == "LunarLander-v3" and recipe.reference_policies == ("ppo",)
        assert all(s.noise_std == 0 for s in recipe.sources)  # discrete noise is epsilon
    assert get_recipe("lunarlander-discrete-medium").sources == (recipes.Source("dqn", epsilon=0.3),)
    assert get_recipe("lunarlander-discrete-expert").sources == (recipes.Source("ppo"),)
    mixed = get_recipe("lunarlander-discrete-mixed").sources
    assert mixed[0] == recipes.Source("random") and len({s.policy for s in mixed}) == 5
    assert all(0 < s.epsilon <= 0.3 for s in mixed[1:])


@pytest.mark.zoo
def test_discrete_lunarlander_medium_below_expert_with_reference_returns(zoo_dir):
    # Medium (DQN, epsilon 0.3) then expert (PPO); 4 envs x 1500 steps per source gives several
    # finished episodes of each (PPO lands in ~250-400 steps).
    data, save_args = build_recipe("lunarlander-discrete-medium-expert", 12_000, zoo=zoo_dir, n_envs=4, seed=0,
                                   reference_episodes=5)
    assert data.discrete and data.num_actions == 4 and data.actions.dtype == np.int64
    assert "action_low" not in data.metadata and data.metadata["action_space"] == {"type": "Discrete", "n": 4}
    medium, expert = finished_returns(data, 0), finished_returns(data, 1)
    assert expert.mean() > 200  # PPO: 247 +- 21 over 50 episodes (docs/datasets.md)
    assert -60 < medium.mean() < 120  # DQN + epsilon 0.3: 32 +- 55
    assert medium.mean() + 100 < expert.mean()
    sources = data.metadata["sources"]
    assert [(s["policy"]["algo"], s["epsilon"], s["noise_std"]) for s in sources] == [("dqn", 0.3, 0.0), ("ppo", 0.0, 0.0)]
    # Reference returns for normalized scores: random and the PPO expert, with the fixed seed.
    low, high = save_args["ref_min_score"], save_args["ref_max_score"]
    assert low < -80 and high > 200 and data.metadata["reference_expert"] == "ppo"
    assert reference_returns("LunarLander-v3", data.metadata) == (low, high)
    assert 20 < normalized_score(medium.mean(), low, high) < 80 < normalized_score(expert.mean(), low, high)


@pytest.mark.zoo
def test_discrete_mixed_recipe_records_every_agent_and_epsilon(zoo_dir):
    recipe = get_recipe("lunarlander-discrete-mixed")
    data, _ = build_recipe("lunarlander-discrete-mixed", 1000, zoo=zoo_dir, n_envs=2, seed=0, reference_episodes=2)
    sources = data.metadata["sources"]
    assert sum(s["transitions"] for s in sources) == data.num_transitions == 1000
    for declared, recorded in zip(recipe.sources, sources, strict=True):
        assert recorded["policy"].get("algo", recorded["policy"]["kind"]) == declared.policy
        assert recorded["epsilon"] == declared.epsilon
    assert data.discrete


@pytest.mark.zoo
def test_noise_override_is_epsilon_on_a_discrete_recipe(zoo_dir):
    data, _ = build_recipe("lunarlander-discrete-random", 200, n_envs=2, noise=0.5, reference_episodes=1, zoo=zoo_dir)
    assert data.metadata["sources"][0]["epsilon"] == 0.5 and data.metadata["sources"][0]["noise_std"] == 0.0
    with pytest.raises(ConfigError, match=r"--noise \(epsilon for the Discrete actions of LunarLander-v3\) must be in \[0, 1\]"):
        build_recipe("lunarlander-discrete-random", 200, noise=1.5, zoo=zoo_dir)


def test_discrete_random_recipe_needs_the_zoo_for_its_expert_reference(monkeypatch, tmp_path):
    monkeypatch.delenv("SEQRL_ZOO", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="lunarlander-discrete-random uses trained agents from the zoo"):
        build_recipe("lunarlander-discrete-random", 100)
