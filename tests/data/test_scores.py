"""Normalized scores against D4RL's published reference returns, written out here by hand.

The numbers are D4RL's (d4rl/infos.py: REF_MIN_SCORE is the random policy's return,
REF_MAX_SCORE the expert's), copied independently of seqrl.data.scores: the test never reads
the implementation's table to get the expected values.
"""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.data import scores
from seqrl.data.scores import normalized_score, reference_returns, task_family
from seqrl.errors import DatasetError

# (random, expert), D4RL's infos.py.
PUBLISHED = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}

# Environment ids each family goes by: gymnasium's versions and D4RL's dataset-style names.
IDS = {
    "hopper": ["Hopper-v5", "Hopper-v4", "hopper-medium-v2", "hopper-expert-v2"],
    "halfcheetah": ["HalfCheetah-v5", "halfcheetah-medium-replay-v2"],
    "walker2d": ["Walker2d-v5", "walker2d-medium-expert-v2"],
    "ant": ["Ant-v5", "ant-random-v2"],
}


def test_every_task_in_the_table_is_pinned():
    """A task added to the table needs its published numbers here too."""
    assert set(scores.D4RL_REFERENCE_RETURNS) == set(PUBLISHED)


@pytest.mark.parametrize("family", sorted(PUBLISHED))
def test_reference_returns_are_d4rls(family):
    random, expert = PUBLISHED[family]
    for env_id in IDS[family]:
        assert task_family(env_id) == family
        # Exact: the table must hold D4RL's numbers, not a rounding of them.
        assert reference_returns(env_id) == (random, expert), env_id
        # Metadata never overrides D4RL's numbers for these tasks.
        assert reference_returns(env_id, {"ref_min_score": 0.0, "ref_max_score": 1.0}) == (random, expert)


@pytest.mark.parametrize("family", sorted(PUBLISHED))
def test_random_scores_0_and_expert_100(family):
    random, expert = PUBLISHED[family]
    low, high = reference_returns(IDS[family][0])
    assert normalized_score(random, low, high) == pytest.approx(0.0, abs=1e-12)
    assert normalized_score(expert, low, high) == pytest.approx(100.0)
    midway = (random + expert) / 2
    assert normalized_score(midway, low, high) == pytest.approx(50.0)


def test_normalized_score_by_hand():
    # hopper: 100 * (1000 + 20.272305) / (3234.3 + 20.272305) = 31.3489...
    assert normalized_score(1000.0, *reference_returns("Hopper-v5")) == pytest.approx(31.34889, abs=1e-5)
    # halfcheetah: 100 * (5000 + 280.178953) / (12135 + 280.178953) = 42.5300...
    assert normalized_score(5000.0, *reference_returns("HalfCheetah-v5")) == pytest.approx(42.53003, abs=1e-5)
    # walker2d: 100 * (1000 - 1.629008) / (4592.3 - 1.629008) = 21.7478...
    assert normalized_score(1000.0, *reference_returns("Walker2d-v5")) == pytest.approx(21.74782, abs=1e-5)
    # ant: 100 * (2000 + 325.6) / (3879.7 + 325.6) = 55.3016...
    assert normalized_score(2000.0, *reference_returns("Ant-v5")) == pytest.approx(55.30164, abs=1e-5)
    np.testing.assert_allclose(normalized_score(np.array([0.0, 10.0]), 0.0, 10.0), [0.0, 100.0])


def test_other_tasks_take_the_datasets_metadata_or_fail():
    assert reference_returns("LunarLanderContinuous-v3", {"ref_min_score": -243.5, "ref_max_score": 288.0}) == (-243.5, 288.0)
    with pytest.raises(DatasetError, match="no reference returns"):
        reference_returns("LunarLanderContinuous-v3", {})
    with pytest.raises(DatasetError, match="equal"):
        reference_returns("Pendulum-v1", {"ref_min_score": 1.0, "ref_max_score": 1.0})
    with pytest.raises(DatasetError):
        reference_returns(None)
    # Swimmer and other MuJoCo tasks D4RL does not cover have no built-in numbers.
    with pytest.raises(DatasetError):
        reference_returns("Swimmer-v5")


def test_namespaced_env_ids_and_float64_scores():
    # A namespace before the id ("ns/Hopper-v5") does not hide the task.
    assert task_family("some-namespace/Hopper-v5") == "hopper"
    assert reference_returns("some-namespace/HalfCheetah-v5") == PUBLISHED["halfcheetah"]
    # Scores are float64 whatever the returns' dtype (float32 rounding would move them).
    assert normalized_score(np.array([1000.0], np.float32), *PUBLISHED["hopper"]).dtype == np.float64
