"""TrajectoryDataset.concatenate of more than two datasets, its defaults, and summary() by hand
(mutation testing: offsets from the first dataset only, or the second dataset's metadata,
passed the two-dataset test)."""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.data.trajectories import TrajectoryDataset


def test_concatenate_three_keeps_every_episode_boundary(make_dataset):
    a = make_dataset(lengths=(2, 3), seed=0, metadata={"name": "a"})
    b = make_dataset(lengths=(4,), seed=1, metadata={"name": "b"})
    c = make_dataset(lengths=(1, 2), seed=2, metadata={"name": "c"})
    abc = TrajectoryDataset.concatenate([a, b, c])
    assert abc.episode_starts.tolist() == [0, 2, 5, 9, 10]
    assert abc.episode_lengths.tolist() == [2, 3, 4, 1, 2]
    np.testing.assert_allclose(abc.episode_returns,
                               np.concatenate([a.episode_returns, b.episode_returns, c.episode_returns]))
    np.testing.assert_array_equal(abc.final_observations,
                                  np.concatenate([a.final_observations, b.final_observations, c.final_observations]))
    # Without explicit metadata, the first dataset's (a copy).
    assert abc.name == "a"
    abc.metadata["name"] = "changed"
    assert a.name == "a"


def test_concatenate_without_final_observations_has_none(make_dataset):
    a = make_dataset(lengths=(2,), seed=0)
    b = make_dataset(lengths=(3,), seed=1, with_final_observations=False)
    assert a.final_observations is not None and b.final_observations is None
    assert TrajectoryDataset.concatenate([a, b]).final_observations is None
    assert TrajectoryDataset.concatenate([a, a]).final_observations.shape == (2, a.obs_dim)


def test_summary_by_hand(make_dataset):
    ds = make_dataset(lengths=(2, 3), metadata={"name": "toy", "env_id": "Toy-v0"})
    ds.rewards[:] = [1.0, 2.0, 0.5, 0.5, 5.0]  # returns 3 and 6
    assert ds.summary() == {
        "name": "toy", "env_id": "Toy-v0", "episodes": 2, "transitions": 5,
        "return_mean": 4.5, "return_std": 1.5, "return_min": 3.0, "return_max": 6.0,
    }
    assert make_dataset(lengths=(2,)).summary()["env_id"] is None
    assert ds.summary()["return_mean"] == pytest.approx(ds.episode_returns.mean())


def test_default_targets_stay_at_or_below_the_best_return_on_negative_returns():
    from seqrl.models.spec import DataSpec
    from tests.helpers.dt import make_dataset

    data = make_dataset(episodes=4)
    best = float(data.episode_returns.max())
    positive = DataSpec.from_dataset(data, rtg_scale=1.0, targets=None).targets
    assert positive == pytest.approx((best, best - abs(best) / 2))
    episodes = [{**e, "rewards": -np.abs(e["rewards"]) - 0.1} for e in data.episodes()]  # Acrobot-like returns
    losing = TrajectoryDataset.from_episodes(episodes, metadata=data.metadata)
    best = float(losing.episode_returns.max())
    assert best < 0
    negative = DataSpec.from_dataset(losing, rtg_scale=1.0, targets=None).targets
    assert negative == pytest.approx((best, 1.5 * best))  # the second below the best, not above it
