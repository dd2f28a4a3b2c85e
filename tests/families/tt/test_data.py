"""The TT's data choices: terminal penalty, values from t+1 on, windows, padding, and the discretizer."""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.families.tt.data import (
    TransitionWindowSampler,
    fit_discretizer,
    joined_transitions,
    transition_rewards,
    values_from,
)

from tests.conftest import make_trajectory_dataset


def test_terminal_reward_is_replaced_by_the_penalty_and_truncated_ends_are_not():
    data = make_trajectory_dataset(lengths=(3, 2), terminated=[True, False])
    rewards = transition_rewards(data, -100.0)
    assert rewards[2] == -100.0  # episode 0 ended in a terminal state
    np.testing.assert_array_equal(rewards[[0, 1, 3, 4]], data.rewards[[0, 1, 3, 4]])  # truncation keeps its reward
    np.testing.assert_array_equal(transition_rewards(data, None), data.rewards)


def test_value_is_the_discounted_reward_to_go_from_the_next_step_within_the_episode():
    data = make_trajectory_dataset(lengths=(3, 2))
    r = data.rewards.astype(np.float64)
    v = values_from(data.rewards, data, 0.5)
    expected = [r[1] + 0.5 * r[2], r[2], 0.0, r[4], 0.0]  # never crosses into the next episode
    np.testing.assert_allclose(v, expected, rtol=1e-6)


def test_joined_layout_is_state_action_reward_value():
    data = make_trajectory_dataset(lengths=(4,), obs_dim=3, act_dim=2, terminated=[True])
    joined = joined_transitions(data, 0.99, -100.0)
    assert joined.shape == (4, 3 + 2 + 2)
    np.testing.assert_array_equal(joined[:, :3], data.observations)
    np.testing.assert_array_equal(joined[:, 3:5], data.actions)
    assert joined[3, 5] == -100.0 and joined[3, 6] == 0.0
    np.testing.assert_allclose(joined[2, 6], -100.0, rtol=1e-6)


def test_windows_are_contiguous_within_an_episode_and_padding_is_masked():
    data = make_trajectory_dataset(lengths=(5, 3), obs_dim=2, act_dim=1)
    joined = joined_transitions(data, 0.99, None)
    disc = fit_discretizer(joined, 4, "quantile")
    sampler = TransitionWindowSampler(data, disc, sequence_length=4, discount=0.99, termination_penalty=None)
    tokens = disc.encode(joined)  # (N, T)
    T = joined.shape[1]
    batch = sampler.sample(200, np.random.default_rng(0))
    assert batch.tokens.shape == (200, 4 * T) and batch.mask.shape == (200, 4 * T)
    for row, mask in zip(batch.tokens, batch.mask):
        steps = row.reshape(4, T)
        real = mask.reshape(4, T)[:, 0]
        assert real[0] and (np.diff(real.astype(int)) <= 0).all()  # real steps first, then padding
        starts = [i for i in range(len(tokens)) if np.array_equal(tokens[i], steps[0])]
        assert any(np.array_equal(tokens[s : s + real.sum()], steps[real]) for s in starts)
    # windows starting at an episode's last steps are padded: every start can be drawn
    assert (~batch.mask).any() and batch.mask.all(axis=1).any()


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_discretizer_round_trips_within_the_bin(strategy):
    """decode(encode(x)) lies in x's own bin (so within one bin width of x), and ids round-trip exactly."""
    rng = np.random.default_rng(0)
    joined = np.concatenate([rng.normal(size=(500, 3)), rng.uniform(-1, 1, size=(500, 2))], 1).astype(np.float32)
    disc = fit_discretizer(joined, 20, strategy)
    ids = disc.encode(joined)
    decoded = disc.decode(ids)
    np.testing.assert_array_equal(disc.encode(decoded), ids)
    for i, edges in enumerate(disc.edges):
        local = ids[:, i] - disc.offsets[i]
        lo, hi = edges[local], edges[local + 1]
        assert ((decoded[:, i] >= lo) & (decoded[:, i] <= hi)).all()
        assert (np.abs(decoded[:, i] - joined[:, i]) <= hi - lo).all()
        if strategy == "uniform":  # equal widths: within one bin width everywhere
            assert np.abs(decoded[:, i] - joined[:, i]).max() <= (edges[-1] - edges[0]) / 20 * (1 + 1e-5)


def test_quantile_bins_never_collapse_on_repeated_values():
    """The authors' quantile bins can duplicate edges; here every bin has positive width."""
    column = np.r_[np.full(300, 1.0), np.linspace(-1, 1, 50)].astype(np.float32)[:, None]
    disc = fit_discretizer(np.concatenate([column, column * 0], 1), 10, "quantile")
    for edges in disc.edges:
        assert (np.diff(edges) > 0).all()
    assert disc.bins_per_feature[1] == 1  # a constant column gets one bin, not ten empty ones


def test_termination_penalty_follows_the_task_unless_given():
    """LunarLander terminates on a landing too (+100): the authors' -100 would turn it into a crash."""
    import dataclasses

    from seqrl.errors import ConfigError
    from seqrl.families.tt.config import TTConfig

    assert TTConfig(dataset="hopper-medium").terminal_reward == -100.0
    assert TTConfig(dataset="lunarlander-medium-expert").terminal_reward is None
    assert TTConfig(dataset="lunarlander-medium-expert", termination_penalty=-50.0).terminal_reward == -50.0
    assert TTConfig(dataset="hopper-medium", termination_penalty="none").terminal_reward is None
    # the run directory records the value used
    assert TTConfig(dataset="hopper-medium").resolved().termination_penalty == -100.0
    assert TTConfig(dataset="lunarlander-medium").resolved().termination_penalty == "none"
    # configs written when None meant "keep the rewards" still mean it; a missing mask_values was False
    stored = dataclasses.asdict(TTConfig(dataset="hopper-medium"))
    stored.pop("mask_values")
    old = TTConfig.from_dict({**stored, "termination_penalty": None})
    assert old.terminal_reward is None and old.mask_values is False
    for bad in (float("nan"), float("inf"), "sometimes"):
        with pytest.raises(ConfigError, match="termination-penalty"):
            TTConfig(dataset="hopper-medium", termination_penalty=bad)
