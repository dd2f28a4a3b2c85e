"""The goal-conditioned Trajectory Transformer (issue 14, part 2): the goal prefix is visible to
every position and nothing else changes in the attention mask; hindsight relabelling; rewards
unused; the cached planner equals the reference with goals; the policy reads the environment's
goal; and a run on the four-rooms maze trains, plans and is evaluated with a success rate and
a picture of its paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seqrl.errors import ConfigError
from seqrl.families.tt.data import TransitionWindowSampler, fit_discretizer, run_transitions
from seqrl.families.tt.goals import GoalLayout, goal_layout, relabelled_goal_rows
from seqrl.families.tt.planner import PlannerSettings, beam_plan

from tests.helpers.dt import make_dataset
from tests.helpers.tt import random_prefix, tiny_tt, tiny_tt_config

# obs [p0, p1, v, goal_0, goal_1]: the goal is made of p0, p1; the environment's goal is dims 3, 4
GOAL = dict(goal="episode-end", goal_dims=(0, 1), observation_goal_dims=(3, 4))


def goal_tt(**overrides):
    return tiny_tt(obs_dim=5, **{**GOAL, **overrides})


def random_goal(model, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    positions = list(model.layout.goal_positions)
    local = torch.randint(0, 10_000, (n, model.goal_dim), generator=g) % model.discretizer.bins_per_feature[positions]
    return local + model.goal_offsets


def test_layout_leaves_the_environments_goal_out_of_the_state():
    layout = goal_layout(tiny_tt_config(**GOAL), obs_dim=5)
    assert layout == GoalLayout(state_columns=(0, 1, 2), goal_positions=(0, 1), observation_goal=(3, 4))
    obs = np.arange(10.0).reshape(2, 5)
    np.testing.assert_array_equal(layout.states(obs), obs[:, :3])
    np.testing.assert_array_equal(layout.environment_goal(obs), obs[:, 3:])
    # the maze's preset, by task name
    maze = goal_layout(tiny_tt_config(dataset="pointmaze-fourrooms", goal="future"), obs_dim=6)
    assert maze == GoalLayout((0, 1, 2, 3), (0, 1), (4, 5))
    # not goal-conditioned: every dimension is state, no goal
    assert goal_layout(tiny_tt_config(), obs_dim=5) == GoalLayout((0, 1, 2, 3, 4), (), ())


@pytest.mark.parametrize("bad, message", [
    (dict(goal_dims=(0, 3)), "must be state dimensions"),
    (dict(goal_dims=(0, 9)), "past the observation"),
    (dict(goal_dims=(0,)), "goal has 2 dimensions"),
])
def test_layout_errors_name_the_problem(bad, message):
    with pytest.raises(ConfigError, match=message):
        goal_layout(tiny_tt_config(**{**GOAL, **bad}), obs_dim=5)


def test_config_rejects_goal_dims_without_a_goal_and_bad_dims():
    with pytest.raises(ConfigError, match="apply to goal-conditioned runs"):
        tiny_tt_config(goal_dims=(0,))
    with pytest.raises(ConfigError, match="distinct"):
        tiny_tt_config(goal="future", goal_dims=(1, 1))


def test_goal_tokens_are_visible_to_every_position_and_nothing_else_changes_in_the_mask():
    model = goal_tt()
    T = model.transition_dim
    tokens = random_prefix(model, 2, transitions=2)[:, : 2 * T + 3]
    goal = random_goal(model, 2)
    base = model(tokens, goal=goal)
    moved_goal = goal.clone()
    moved_goal[:, 1] = (moved_goal[:, 1] - model.goal_offsets[1] + 1) % int(model.discretizer.bins_per_feature[1]) \
        + model.goal_offsets[1]
    changed = ~torch.isclose(base, model(tokens, goal=moved_goal)).flatten(2).all(-1)  # (B, L)
    assert changed.all()  # every window position reads the goal
    # within the window the mask is the ordinary causal one: an output ignores later tokens ...
    for position in (0, 4, T + 2):  # state and action tokens (reward and value have one bin here: no rewards)
        moved = tokens.clone()
        dim = position % T
        moved[:, position] = (moved[:, position] - model.discretizer.offsets[dim] + 1) \
            % int(model.discretizer.bins_per_feature[dim]) + model.discretizer.offsets[dim]
        out = model(moved, goal=goal)
        assert torch.equal(out[:, :position], base[:, :position])
        assert not torch.allclose(out[:, position], base[:, position])  # ... and reads its own


def test_value_masking_keeps_hiding_values_and_never_the_goal():
    model = goal_tt(mask_values=True)
    plain = tiny_tt(obs_dim=3, mask_values=True)  # the same transition layout, no goal
    L = 3 * model.transition_dim
    mask = model.key_mask(L, torch.device("cpu"))
    assert mask[: model.goal_dim].all() and torch.equal(mask[model.goal_dim :], plain.key_mask(L, torch.device("cpu")))
    assert goal_tt(mask_values=False).key_mask(L, torch.device("cpu")) is None  # values visible: the plain causal mask


def test_a_goal_model_needs_its_goal_and_a_plain_one_takes_none():
    model = goal_tt()
    tokens = random_prefix(model, 2, transitions=1)
    with pytest.raises(ValueError, match="goal-conditioned"):
        model(tokens)
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        model(tokens, goal=random_goal(model, 3))
    plain = tiny_tt()
    with pytest.raises(ValueError, match="not goal-conditioned"):
        plain(random_prefix(plain, 2, transitions=1), goal=random_goal(model, 2))


def test_cached_extension_equals_the_full_forward_with_a_goal():
    model = goal_tt(mask_values=True)
    tokens = random_prefix(model, 3, transitions=2)[:, :15]
    goal = random_goal(model, 3)
    full = model(tokens, goal=goal)
    cache: list = []
    model(tokens[:, :8], cache=cache, goal=goal)
    capacity = model.block_size
    cache = [tuple(F.pad(t, (0, 0, 0, capacity - 8)) for t in kv) for kv in cache]
    for p in range(8, 15):
        torch.testing.assert_close(model.extend(tokens[:, p], p, cache, capacity), full[:, p], rtol=1e-5, atol=1e-5)


def test_goal_values_are_tokenized_like_the_state_dimensions_they_are():
    model = goal_tt()
    states = torch.randn(6, model.observation_dim) * 0.3
    rows = torch.zeros(6, model.transition_dim)
    rows[:, : model.observation_dim] = states
    expected = model.discretizer.encode(rows)[:, :2]
    assert torch.equal(model.goal_tokens(states[:, :2]), expected)


@pytest.mark.parametrize("mode", ["episode-end", "window-end", "future"])
def test_relabelled_goals_come_from_the_windows_own_episode(mode):
    data = make_dataset(obs_dim=5, act_dim=2, episodes=6)
    cfg = tiny_tt_config(**{**GOAL, "goal": mode})
    joined = run_transitions(data, cfg)
    assert joined.shape[1] == 3 + 2 + 2 and not joined[:, -2:].any()  # the goal dims left out; no rewards
    discretizer = fit_discretizer(joined, cfg.num_bins, cfg.binning)
    sampler = TransitionWindowSampler(data, discretizer, sequence_length=4, joined=joined, goal=mode, goal_positions=(0, 1))
    state_tokens = discretizer.encode(joined)[:, :2]
    rng = np.random.default_rng(0)
    batch = sampler.sample(64, rng)
    assert batch.goal.shape == (64, 2)
    # replay the same draws to know each window's start, episode and last real transition
    starts = np.random.default_rng(0).integers(0, data.num_transitions, size=64)
    end = data.episode_ends[data.episode_index[starts]]
    last = np.minimum(starts + 3, end - 1)
    for i, start in enumerate(starts):
        candidates = {"episode-end": [end[i] - 1], "window-end": [last[i]], "future": range(last[i], end[i])}[mode]
        assert any(np.array_equal(batch.goal[i], state_tokens[row]) for row in candidates)
    if mode == "future":  # draws cover more than the two ends
        rows = relabelled_goal_rows("future", starts, last, end, np.random.default_rng(1))
        assert ((rows >= last) & (rows < end)).all() and ((rows > last) & (rows < end - 1)).any()


def test_plans_with_goals_batched_equal_each_alone_and_the_cached_planner_equals_the_reference():
    model = goal_tt()
    prefix = random_prefix(model, 3, transitions=2)
    goal = random_goal(model, 3, seed=4)
    goal[1] = goal[0]  # two environments with one goal: their shared rows must not merge with the third's
    settings = PlannerSettings(mode="likelihood", horizon=3, beam_width=4, expansion=2, context_transitions=2,
                               action_cdf=0.2)  # sample among several bins, so that the goal can move a plan

    def plan(rows, use_cache=True):
        gens = [torch.Generator().manual_seed(10 + r) for r in rows]
        return beam_plan(model, prefix[rows], PlannerSettings(**{**settings.to_dict(), "use_cache": use_cache}), gens,
                         goal[rows])

    together = plan([0, 1, 2])
    for r in range(3):
        assert torch.equal(together[r], plan([r])[0])
    assert torch.equal(together, plan([0, 1, 2], use_cache=False))
    # the goal matters: another goal, another plan
    other = goal.clone()
    other[:, 0] = model.goal_offsets[0] + (other[:, 0] - model.goal_offsets[0] + 3) % int(model.discretizer.bins_per_feature[0])
    gens = [torch.Generator().manual_seed(10 + r) for r in range(3)]
    assert not torch.equal(together, beam_plan(model, prefix, settings, gens, other))


def test_policy_plans_towards_the_goal_in_the_observation_and_feeds_no_rewards():
    from seqrl.families import get_family

    model = goal_tt()
    cfg = tiny_tt_config(**GOAL)
    family = get_family("tt")
    policy = family.make_policy(model, model.spec, cfg, None, settings={"horizon": 2, "beam_width": 2})
    assert policy.settings.mode == "likelihood"
    with pytest.raises(ConfigError, match="trained without rewards"):
        family.make_policy(model, model.spec, cfg, None, settings={"mode": "reward"})
    obs = np.random.default_rng(0).normal(size=(2, 5)).astype(np.float32) * 0.3
    policy.reset(2, seed=0)
    first = policy.act(np.arange(2), obs, np.zeros(2, np.int64))
    expected = model.goal_tokens(torch.from_numpy(obs[:, 3:]))
    assert torch.equal(policy.goals, expected)
    policy.observe(np.arange(2), first, np.array([5.0, -7.0]))
    T = model.transition_dim
    rows = torch.zeros(2, T)
    zero_reward = model.discretizer.encode(rows)[:, T - 2]
    assert torch.equal(policy.history[:, -1, T - 2], zero_reward)  # the reward slot holds a reward of 0
    assert torch.equal(policy.history[:, -1, :3], model.discretizer.encode(
        torch.cat([torch.from_numpy(obs[:, :3]), torch.zeros(2, T - 3)], 1))[:, :3])  # the state without the goal


def test_goal_conditioned_run_on_the_maze_trains_plans_and_reports_success(tmp_path, minari_root):
    pytest.importorskip("gymnasium_robotics")
    from seqrl.cli import main

    main(["collect", "pointmaze-fourrooms", "--transitions", "1500"])
    run_dir = tmp_path / "goal-tt"
    main(["train", "--family", "tt", "--dataset", "pointmaze-fourrooms", "--goal", "future", "--steps", "20",
          "--embed-dim", "16", "--n-layers", "1", "--n-heads", "1", "--sequence-length", "3", "--batch-size", "8",
          "--warmup-steps", "2", "--eval-every", "0", "--num-bins", "10", "--run-dir", str(run_dir), "--no-progress"])
    picture = tmp_path / "maze.png"
    main(["eval", str(run_dir), "--episodes", "2", "--horizon", "1", "--beam-width", "2", "--context-transitions", "2",
          "--replan-every", "1", "--plot", str(picture), "--no-progress", "--json"])
    report = json.loads((run_dir / "eval.json").read_text())
    result = report["results"][0]
    assert report["model"] == "tt-goal:future" and report["planner"]["mode"] == "likelihood"
    assert 0.0 <= result["success_rate"] <= 1.0 and len(result["successes"]) == 2
    assert result["success_rate"] == pytest.approx(np.mean(result["returns"]))  # the maze's return is its success
    assert picture.stat().st_size > 10_000


def test_a_goal_run_without_an_environment_goal_and_open_loop_prediction_are_refused_by_name():
    from seqrl.families import get_family

    family = get_family("tt")
    cfg = tiny_tt_config(goal="episode-end", goal_dims=(0, 1))  # no --observation-goal-dims, no preset for "tiny"
    model = tiny_tt(obs_dim=5, goal="episode-end", goal_dims=(0, 1))
    assert model.layout.state_columns == (0, 1, 2, 3, 4)  # every dimension is state
    with pytest.raises(ConfigError, match="hold no goal to plan towards"):
        family.make_policy(model, model.spec, cfg, None)
    with pytest.raises(ConfigError, match="goal-conditioned"):
        family.open_loop(model, tiny_tt_config(**GOAL), None, make_dataset(obs_dim=5, act_dim=2), np.array([0]), 2)


def test_a_goal_conditioned_tt_learns_to_read_its_goal(tmp_path):
    """Real training steps on episodes whose action is their goal: the first action of a window,
    which nothing else in the window gives away, is predicted far better with the window's own
    goal than with another window's."""
    from seqrl.data.trajectories import TrajectoryDataset
    from seqrl.families import get_family
    from seqrl.families.tt.goals import first_action_cross_entropy
    from seqrl.train import train

    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(300):
        target, position, length = rng.uniform(-1, 1), rng.uniform(-1, 1), 20
        observations = []
        for _ in range(length + 1):  # [position, noise, the environment's goal]; the position closes in on it
            observations.append([position, rng.normal() * 0.1, target])
            position += 0.3 * (target - position)
        episodes.append(dict(observations=np.array(observations), actions=np.full((length, 1), target),
                             rewards=np.zeros(length), terminations=np.arange(length) == length - 1,
                             truncations=np.zeros(length, bool)))
    data = TrajectoryDataset.from_episodes(episodes, {"name": "goal-is-action", "env_id": None, "action_low": [-1.0],
                                                      "action_high": [1.0]})
    cfg = tiny_tt_config(tmp_path, dataset="goal-is-action", goal="episode-end", goal_dims=(0,), observation_goal_dims=(2,),
                         num_bins=20, sequence_length=3, steps=300, batch_size=64, warmup_steps=20, log_every=100,
                         checkpoint_every=1000)
    result = train(cfg, dataset=data)
    family = get_family("tt")
    sampler = family.build_sampler(cfg, data, result.spec, family.fit_artefacts(cfg, data, result.spec))
    batch = sampler.sample(512, np.random.default_rng(1)).to_torch()
    model = result.model.eval()
    own = first_action_cross_entropy(model, batch.tokens, batch.goal)
    other = first_action_cross_entropy(model, batch.tokens, batch.goal[torch.randperm(512, generator=torch.Generator().manual_seed(0))])
    assert own < 0.6 * other, (own, other)
