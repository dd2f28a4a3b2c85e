"""The beam-search planner: exact cache, batching that changes nothing, the filters, and scoring."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seqrl.errors import ConfigError
from seqrl.families.tt.planner import (
    PlannerSettings,
    TokenDecoder,
    beam_plan,
    filter_logits,
    planner_settings,
)

from tests.helpers.tt import random_prefix, tiny_tt


def generators(n: int, seed: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


SETTINGS = [
    # crops happen inside the plan: the window (3 transitions) is shorter than context + horizon
    pytest.param(dict(mode="reward", horizon=4, beam_width=4, expansion=2, context_transitions=3), id="reward"),
    pytest.param(dict(mode="likelihood", horizon=3, beam_width=3, expansion=3, context_transitions=2), id="likelihood"),
    pytest.param(dict(mode="reward", horizon=3, beam_width=2, expansion=2, action_cdf=None, action_top_k=3,
                      context_transitions=4), id="top-k"),
]


@pytest.mark.parametrize("overrides", SETTINGS)
@pytest.mark.parametrize("mask_values", [False, True])
def test_cached_and_uncached_planning_give_the_same_plan(overrides, mask_values):
    model = tiny_tt(mask_values=mask_values)
    prefix = random_prefix(model, 3, transitions=2)
    settings = PlannerSettings(**overrides)
    cached = beam_plan(model, prefix, settings, generators(3))
    reference = beam_plan(model, prefix, dataclasses.replace(settings, use_cache=False), generators(3))
    assert torch.equal(cached, reference)


def test_decoder_logits_equal_a_full_forward_over_the_cropped_window():
    model = tiny_tt()
    T = model.transition_dim
    tokens = random_prefix(model, 2, transitions=4, seed=3)  # 4T + obs_dim tokens
    max_tokens = 2 * T - 1
    decoder = TokenDecoder(model, tokens[:, : T + 1], max_tokens)
    for end in range(T + 1, tokens.shape[1]):
        logits = decoder.logits()
        length = end - ((end - max_tokens + T - 1) // T) * T if end > max_tokens else end
        start = end - length
        assert start % T == 0  # the window starts at a transition boundary
        torch.testing.assert_close(logits, model(tokens[:, start:end])[:, -1], rtol=1e-5, atol=1e-5)
        decoder.append(tokens[:, end])


def test_decoder_re_encodes_copied_rows_exactly_after_beams_were_expanded():
    """A crop right after an expansion encodes the distinct shared rows once, then extends each copy."""
    model = tiny_tt()
    T = model.transition_dim
    decoder = TokenDecoder(model, random_prefix(model, 2, transitions=1, seed=4), 2 * T - 1)
    decoder.logits()
    decoder.reorder(torch.tensor([0, 0, 0, 1, 1, 1]))  # three copies of each row
    d = model.discretizer
    for j in range(T):  # crosses the window limit (a crop) a few tokens after the copy
        logits = decoder.logits()
        window = decoder.tokens[:, decoder.start :]
        torch.testing.assert_close(logits, model(window)[:, -1], rtol=1e-5, atol=1e-5)
        dim = decoder.tokens.shape[1] % T
        decoder.append(d.offsets[dim] + (torch.arange(6) * 3 + j) % d.bins_per_feature[dim])  # differs per copy
    assert decoder.start > 0  # the crop did happen


def test_batched_planning_equals_planning_each_environment_alone():
    model = tiny_tt()
    prefix = random_prefix(model, 4, transitions=1, seed=1)
    settings = PlannerSettings(horizon=3, beam_width=4, expansion=2, context_transitions=3)
    together = beam_plan(model, prefix, settings, generators(4))
    alone = torch.cat([beam_plan(model, prefix[i : i + 1], settings, generators(1, seed=i)) for i in range(4)])
    assert torch.equal(together, alone)


def test_plan_starts_at_the_current_observation_and_holds_valid_tokens():
    model = tiny_tt()
    prefix = random_prefix(model, 2, transitions=1)
    plan = beam_plan(model, prefix, PlannerSettings(horizon=3, beam_width=2, expansion=2), generators(2))
    T = model.transition_dim
    assert plan.shape == (2, 3, T)
    assert torch.equal(plan[:, 0, : model.observation_dim], prefix[:, -model.observation_dim :])
    local = plan - model.discretizer.offsets
    assert (local >= 0).all() and (local < model.discretizer.bins_per_feature).all()


def test_greedy_single_beam_reward_search_follows_the_models_argmax():
    """beam 1, expansion 1, top-1 actions: the plan is the model's greedy continuation."""
    model = tiny_tt()
    prefix = random_prefix(model, 1, transitions=1)
    settings = PlannerSettings(horizon=2, beam_width=1, expansion=1, action_cdf=None, action_top_k=1)
    plan = beam_plan(model, prefix, settings, generators(1))
    tokens = prefix.clone()
    T = model.transition_dim
    for _ in range(2 * T - model.observation_dim):
        local = model(tokens[:, -min(tokens.shape[1], 5 * T - 1, model.block_size):])[:, -1].argmax(-1)
        dim = tokens.shape[1] % T
        tokens = torch.cat([tokens, (local + model.discretizer.offsets[dim])[:, None]], 1)
    assert torch.equal(plan.flatten(1), tokens[:, prefix.shape[1] - model.observation_dim :])


def test_cdf_filter_drops_the_least_likely_mass_below_the_threshold_as_the_authors_do():
    """`action_cdf` is the authors' cdf_act: the mass to drop, least likely bins first."""
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.05, 0.1, 0.8]]))
    # 0.6: ascending cumulative masses 0.05, 0.2, 0.5 are below it, so all bins up to 0.3 go.
    kept = torch.isfinite(filter_logits(logits, 0.6, None))
    assert kept.tolist() == [[True, False, False, False], [False, False, False, True]]
    # 0.3: 0.05 and 0.2 are below it: the bins of 0.05 and 0.15 (row 0), 0.05, 0.05, 0.1 (row 1) go.
    kept = torch.isfinite(filter_logits(logits, 0.3, None))
    assert kept.tolist() == [[True, True, False, False], [False, False, False, True]]
    kept = torch.isfinite(filter_logits(logits, None, 2))
    assert kept.tolist() == [[True, True, False, False], [False, False, True, True]]
    # No cumulative mass below 0.01: the authors' argmax still drops the least likely bin.
    kept = torch.isfinite(filter_logits(logits, 0.01, None))
    assert kept.tolist() == [[True, True, True, False], [False, False, True, True]]
    # Everything below the most likely bin dropped: it always stays (theirs would go uniform).
    tied = torch.log(torch.tensor([[0.4, 0.4, 0.2]]))
    assert torch.isfinite(filter_logits(tied, 0.99, None)).tolist() == [[True, True, False]]


class RiggedModel:
    """A stand-in TT whose next-token logits depend on the current token only:

    - action bins: bin 0 is the most likely (logit 2), the rest equal (0);
    - the reward after the last action dimension: almost surely the reward bin with the same index
      as that action's bin (so a higher action bin means a higher reward);
    - everything else: uniform.
    The planner sees it through the same interface as a real model (forward with a cache, extend).
    """

    def __init__(self, real) -> None:
        self.discretizer = real.discretizer
        self.transition_dim, self.observation_dim, self.action_dim = real.transition_dim, real.observation_dim, real.action_dim
        self.block_size = real.block_size
        self.bins = int(self.discretizer.bins_per_feature.max())
        self.reward_dim = self.observation_dim + self.action_dim

    def _logits(self, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        T, d = self.transition_dim, self.discretizer
        predicted = (position + 1) % T
        logits = torch.zeros(token.shape + (self.bins,))
        is_action = (predicted >= self.observation_dim) & (predicted < self.reward_dim)
        logits[..., 0] += 2.0 * is_action
        local = token - d.offsets[position % T]
        reward_bins = int(d.bins_per_feature[self.reward_dim])
        rigged = torch.nn.functional.one_hot(local.clamp(max=reward_bins - 1), self.bins) * 20.0
        logits = torch.where((predicted == self.reward_dim)[..., None], rigged - 10.0, logits)
        valid = torch.arange(self.bins) < d.bins_per_feature[predicted][..., None]
        return logits.masked_fill(~valid, float("-inf"))

    def __call__(self, tokens: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        if cache is not None:
            cache.append((torch.zeros(tokens.shape[0], 1, tokens.shape[1], 1),) * 2)
        return self._logits(tokens, torch.arange(tokens.shape[1]).expand_as(tokens))

    def extend(self, tokens: torch.Tensor, position: int, cache: list, capacity: int) -> torch.Tensor:
        return self._logits(tokens, torch.full_like(tokens, position))


@pytest.mark.parametrize("use_cache", [True, False])
def test_reward_search_takes_the_rewarding_action_and_likelihood_search_the_likely_one(use_cache):
    model = RiggedModel(tiny_tt(num_bins=8))
    last_action = model.reward_dim - 1
    prefix = random_prefix(tiny_tt(num_bins=8), 1, transitions=1)
    common = dict(horizon=1, beam_width=16, expansion=4, action_cdf=None, use_cache=use_cache)
    table = model.discretizer.value_table[model.reward_dim]
    top_reward_bin = int(table[: model.discretizer.bins_per_feature[model.reward_dim]].argmax())
    reward_plan = beam_plan(model, prefix, PlannerSettings(mode="reward", **common), generators(1))
    chosen = int(reward_plan[0, 0, last_action] - model.discretizer.offsets[last_action])
    assert min(chosen, int(model.discretizer.bins_per_feature[model.reward_dim]) - 1) == top_reward_bin
    likely_plan = beam_plan(model, prefix, PlannerSettings(mode="likelihood", **common), generators(1))
    assert int(likely_plan[0, 0, last_action] - model.discretizer.offsets[last_action]) == 0


def test_settings_validate_and_presets_apply():
    assert planner_settings("halfcheetah-medium", 0.99).horizon == 5
    assert planner_settings("halfcheetah-medium", 0.99).beam_width == 32
    assert planner_settings("hopper-medium", 0.99).horizon == 15
    assert planner_settings("hopper-medium", 0.9, {"horizon": 2, "beam_width": None}).horizon == 2
    assert planner_settings("hopper-medium", 0.9).discount == 0.9
    for bad in (dict(horizon=0), dict(action_cdf=1.5), dict(mode="greedy"), dict(replan_every=20)):
        with pytest.raises(ConfigError):
            PlannerSettings(**bad)
    with pytest.raises(ConfigError, match="unknown planner settings"):
        planner_settings("hopper-medium", 0.99, {"beams": 3})


@pytest.mark.parametrize("context_value", ["planned", "zero"])
def test_policy_context_holds_the_taken_transition_and_the_chosen_value_token(context_value):
    import numpy as np

    from seqrl.families.tt import TTPolicy

    model = tiny_tt()
    settings = PlannerSettings(horizon=2, beam_width=2, expansion=2, context_transitions=2, context_value=context_value)
    policy = TTPolicy(model, settings, torch.device("cpu"))
    policy.reset(3, seed=0)
    rows = np.arange(3)
    obs = np.random.default_rng(0).normal(size=(3, model.observation_dim)).astype(np.float32)
    actions = policy.act(rows, obs, np.zeros(3, np.int64))
    planned_actions = policy.plans[:, 0, model.observation_dim : model.observation_dim + model.action_dim]
    d = model.discretizer
    assert np.array_equal(d.encode(torch.from_numpy(np.concatenate(
        [obs, actions, np.zeros((3, 2), np.float32)], 1)))[:, model.observation_dim : -2].numpy(), planned_actions.numpy())
    policy.observe(rows, actions, np.array([1.0, 2.0, 3.0]))
    last = policy.history[:, -1]  # (3, T)
    T = model.transition_dim
    expected_value = policy.plans[:, 0, T - 1] if context_value == "planned" else \
        d.encode(torch.zeros(3, T))[:, T - 1]
    assert torch.equal(last[:, T - 1], expected_value)
    assert torch.equal(last[:, : model.observation_dim], d.encode(torch.from_numpy(np.concatenate(
        [obs, np.zeros((3, T - model.observation_dim), np.float32)], 1)))[:, : model.observation_dim])
    policy.act(rows, obs, np.ones(3, np.int64))
    policy.observe(rows, actions, np.zeros(3))
    policy.act(rows, obs, np.full(3, 2))
    policy.observe(rows, actions, np.zeros(3))
    assert policy.history.shape[1] == 2  # the last `context_transitions` transitions


def test_a_runs_own_planner_size_is_its_evaluations_default_and_flags_override_it():
    """--eval-horizon/--eval-beam-width make a run's own evaluations (during training, after a
    sweep's training, `seqrl eval` without flags) plan at that size; a flag given wins, and an
    unset one (None) does not undo the run's."""
    from seqrl.errors import ConfigError
    from seqrl.families import get_family
    from tests.helpers.tt import tiny_tt, tiny_tt_config

    family = get_family("tt")
    model = tiny_tt()
    cfg = tiny_tt_config(eval_horizon=2, eval_beam_width=3)
    settings = family.make_policy(model, model.spec, cfg, None).settings
    assert (settings.horizon, settings.beam_width) == (2, 3)
    settings = family.make_policy(model, model.spec, cfg, None, settings={"horizon": 4, "beam_width": None}).settings
    assert (settings.horizon, settings.beam_width) == (4, 3)
    default = family.make_policy(model, model.spec, tiny_tt_config(), None).settings
    assert (default.horizon, default.beam_width) == (15, 128)  # the authors' planner
    with pytest.raises(ConfigError, match="--eval-beam-width must be >= 1"):
        tiny_tt_config(eval_beam_width=0)


def test_a_runs_own_plan_mode_is_its_evaluations_default_and_a_flag_overrides_it():
    """--eval-plan-mode likelihood makes an imitation run's evaluations during training plan the most
    probable trajectory, as its final one does; a mode given to `seqrl eval` still wins."""
    from seqrl.errors import ConfigError
    from seqrl.families import get_family
    from tests.helpers.tt import tiny_tt, tiny_tt_config

    family = get_family("tt")
    model = tiny_tt()
    assert family.make_policy(model, model.spec, tiny_tt_config(), None).settings.mode == "reward"
    cfg = tiny_tt_config(eval_plan_mode="likelihood")
    assert family.make_policy(model, model.spec, cfg, None).settings.mode == "likelihood"
    assert family.make_policy(model, model.spec, cfg, None, settings={"mode": "reward"}).settings.mode == "reward"
    with pytest.raises(ConfigError, match="unknown --eval-plan-mode 'greedy'"):
        tiny_tt_config(eval_plan_mode="greedy")
    with pytest.raises(ConfigError, match="--eval-plan-mode reward: a goal-conditioned run"):
        tiny_tt_config(goal="episode-end", eval_plan_mode="reward")


def test_a_context_of_one_transition_is_refused_by_name():
    """Cropped in whole transitions, a one-transition window empties when its transition completes."""
    from seqrl.errors import ConfigError
    from seqrl.families.tt.planner import planner_settings

    with pytest.raises(ConfigError, match="--context-transitions must be >= 2"):
        planner_settings("hopper-medium", 0.99, {"context_transitions": 1})
    assert planner_settings("hopper-medium", 0.99, {"context_transitions": 2}).context_transitions == 2
