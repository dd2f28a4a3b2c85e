"""TrajectoryDataset: layout, derived arrays, returns-to-go, statistics and validation."""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import DatasetError


def plain_returns_to_go(dataset: TrajectoryDataset, discount: float) -> np.ndarray:
    """The textbook definition, one episode and one step at a time."""
    out = []
    for ep in dataset.episodes():
        rewards = [float(r) for r in ep["rewards"]]
        for t in range(len(rewards)):
            out.append(sum(discount ** (k - t) * rewards[k] for k in range(t, len(rewards))))
    return np.array(out)


def flat(n=6, starts=(0, 4), **overrides) -> dict:
    rng = np.random.default_rng(0)
    fields = {
        "observations": rng.normal(size=(n, 3)),
        "actions": rng.uniform(-1, 1, size=(n, 2)),
        "rewards": rng.normal(size=n),
        "terminations": np.zeros(n, bool),
        "truncations": np.zeros(n, bool),
        "episode_starts": np.array(starts),
    }
    fields.update(overrides)
    return fields


def test_from_episodes_layout(make_dataset):
    ds = make_dataset(lengths=(5, 3, 4), terminated=[True, False, False])
    assert (ds.num_episodes, ds.num_transitions, ds.obs_dim, ds.act_dim) == (3, 12, 3, 2)
    np.testing.assert_array_equal(ds.episode_starts, [0, 5, 8])
    np.testing.assert_array_equal(ds.episode_lengths, [5, 3, 4])
    np.testing.assert_array_equal(ds.episode_ends, [5, 8, 12])
    np.testing.assert_array_equal(ds.episode_index, [0] * 5 + [1] * 3 + [2] * 4)
    np.testing.assert_array_equal(ds.timesteps, [0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3])
    np.testing.assert_array_equal(np.flatnonzero(ds.terminations), [4])
    np.testing.assert_array_equal(np.flatnonzero(ds.truncations), [7, 11])
    assert ds.final_observations.shape == (3, 3)
    assert ds.observations.dtype == np.float32 and ds.actions.dtype == np.float32
    ep = ds.episode(1)
    np.testing.assert_array_equal(ep["rewards"], ds.rewards[5:8])
    np.testing.assert_allclose(ds.episode_returns, [ds.rewards[s:e].sum() for s, e in ((0, 5), (5, 8), (8, 12))], rtol=1e-6)


def test_from_episodes_defaults_to_truncated_last_step():
    ds = TrajectoryDataset.from_episodes(
        [{"observations": np.zeros((3, 1)), "actions": np.zeros((3, 1)), "rewards": np.ones(3)},
         {"observations": np.zeros((2, 1)), "actions": np.zeros((2, 1)), "rewards": np.ones(2),
          "terminations": np.array([False, True])}]
    )
    np.testing.assert_array_equal(ds.truncations, [False, False, True, False, False])
    np.testing.assert_array_equal(ds.terminations, [False, False, False, False, True])
    assert ds.final_observations is None  # T observations, not T+1


@pytest.mark.parametrize("discount", [1.0, 0.99, 0.5])
def test_returns_to_go_match_a_plain_loop(make_dataset, discount):
    ds = make_dataset(lengths=(7, 1, 4, 9), seed=3)
    np.testing.assert_allclose(ds.returns_to_go(discount), plain_returns_to_go(ds, discount), rtol=1e-6, atol=1e-9)


def test_returns_to_go_start_at_the_episode_return(make_dataset):
    ds = make_dataset(lengths=(4, 6))
    rtg = ds.returns_to_go()
    np.testing.assert_allclose(rtg[ds.episode_starts], ds.episode_returns, rtol=1e-6)
    np.testing.assert_allclose(rtg[ds.episode_ends - 1], ds.rewards[ds.episode_ends - 1], rtol=1e-6)


def test_statistics(make_dataset):
    ds = make_dataset(lengths=(4, 6))
    np.testing.assert_allclose(ds.observation_mean, ds.observations.mean(0), rtol=1e-6)
    np.testing.assert_allclose(ds.observation_std, ds.observations.std(0), rtol=1e-6)
    summary = ds.summary()
    assert (summary["episodes"], summary["transitions"]) == (2, 10)
    assert summary["return_max"] == pytest.approx(ds.episode_returns.max())
    constant = TrajectoryDataset(**flat(observations=np.ones((6, 3))))
    assert np.all(constant.observation_std > 0)  # floored, so normalising never divides by 0


def test_action_bounds_from_metadata_or_data(make_dataset):
    ds = make_dataset()
    np.testing.assert_array_equal(ds.action_low, [-1, -1])
    unbounded = TrajectoryDataset(**flat())
    np.testing.assert_array_equal(unbounded.action_low, unbounded.actions.min(0))
    np.testing.assert_array_equal(unbounded.action_high, unbounded.actions.max(0))


def test_concatenate(make_dataset):
    a, b = make_dataset(lengths=(2, 3), seed=1), make_dataset(lengths=(4,), seed=2)
    both = TrajectoryDataset.concatenate([a, b], metadata={"name": "ab"})
    np.testing.assert_array_equal(both.episode_starts, [0, 2, 5])
    np.testing.assert_array_equal(both.rewards, np.concatenate([a.rewards, b.rewards]))
    np.testing.assert_array_equal(both.final_observations, np.concatenate([a.final_observations, b.final_observations]))
    assert both.name == "ab"
    with pytest.raises(DatasetError, match="different"):
        TrajectoryDataset.concatenate([a, make_dataset(obs_dim=5)])
    with pytest.raises(DatasetError, match="no datasets"):
        TrajectoryDataset.concatenate([])


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("key", ["observations", "actions", "rewards"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected(key, bad):
    fields = flat(metadata={"name": "toy"})
    fields[key] = np.array(fields[key], dtype=np.float64)
    fields[key].reshape(len(fields[key]), -1)[3, 0] = bad
    with pytest.raises(DatasetError, match=rf"toy: {key} contain NaN or inf \(first at step 3\)"):
        TrajectoryDataset(**fields)


@pytest.mark.parametrize("key", ["actions", "rewards", "terminations", "truncations"])
def test_length_mismatch_is_rejected(key):
    fields = flat()
    fields[key] = fields[key][:-1]
    with pytest.raises(DatasetError, match=f"length mismatch: 6 observations but 5 {key}"):
        TrajectoryDataset(**fields)


def test_episode_length_mismatch_in_from_episodes():
    with pytest.raises(DatasetError, match="episode 0: 5 observations for 3 actions"):
        TrajectoryDataset.from_episodes([{"observations": np.zeros((5, 1)), "actions": np.zeros((3, 1)), "rewards": np.zeros(3)}])
    with pytest.raises(DatasetError, match="episode 0: 2 rewards for 3 actions"):
        TrajectoryDataset.from_episodes([{"observations": np.zeros((3, 1)), "actions": np.zeros((3, 1)), "rewards": np.zeros(2)}])
    with pytest.raises(DatasetError, match="episode 0: 0 terminations for 3 actions"):
        TrajectoryDataset.from_episodes([{"observations": np.zeros((3, 1)), "actions": np.zeros((3, 1)),
                                          "rewards": np.zeros(3), "terminations": np.zeros(0)}])
    with pytest.raises(DatasetError, match="episode 0 is missing the key 'rewards'"):
        TrajectoryDataset.from_episodes([{"observations": np.zeros((3, 1)), "actions": np.zeros((3, 1))}])


def test_empty_is_rejected():
    with pytest.raises(DatasetError, match="empty"):
        TrajectoryDataset(**flat(n=0, starts=(), observations=np.zeros((0, 3)), actions=np.zeros((0, 2)),
                                 rewards=np.zeros(0), terminations=np.zeros(0), truncations=np.zeros(0)))
    with pytest.raises(DatasetError, match="empty"):
        TrajectoryDataset.from_episodes([], metadata={"name": "nothing"})
    with pytest.raises(DatasetError, match="episode 0 has no steps"):
        TrajectoryDataset.from_episodes([{"observations": np.zeros((0, 1)), "actions": np.zeros((0, 1)), "rewards": np.zeros(0)}])


def test_actions_outside_bounds_are_rejected():
    fields = flat(metadata={"name": "toy", "action_low": -1.0, "action_high": [1.0, 0.5]})
    fields["actions"] = np.zeros((6, 2))
    fields["actions"][2, 1] = 0.75
    with pytest.raises(DatasetError, match=r"outside the action space: action\[2\]\[1\] = 0.75, bounds \[-1, 0.5\]"):
        TrajectoryDataset(**fields)
    fields["actions"][2, 1] = 0.5 + 1e-6  # float round-off is tolerated
    TrajectoryDataset(**fields)


@pytest.mark.parametrize("starts", [(1, 4), (0, 4, 4), (0, 6), (0, 5, 3)])
def test_bad_episode_starts_are_rejected(starts):
    with pytest.raises(DatasetError, match="episode_starts"):
        TrajectoryDataset(**flat(starts=starts))


def test_final_observations_shape_is_checked():
    with pytest.raises(DatasetError, match=r"final_observations has shape \(3, 3\), expected \(2, 3\)"):
        TrajectoryDataset(**flat(), final_observations=np.zeros((3, 3)))


def test_observations_must_be_2d():
    with pytest.raises(DatasetError, match="must be 2-D"):
        TrajectoryDataset(**flat(observations=np.zeros((6, 2, 2))))
