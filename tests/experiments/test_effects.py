"""Effects with bootstrap intervals: a difference is stated only where its interval excludes zero."""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.experiments.effects import bootstrap_difference, bootstrap_paired_difference
from seqrl.experiments.report import write_report
from tests.helpers.runs import fake_run


def test_a_clear_difference_is_resolved_and_a_noisy_one_is_not():
    clear = bootstrap_difference([10.0, 11.0, 9.0, 10.5, 9.5], [20.0, 21.0, 19.0, 20.5, 19.5])
    assert clear.difference == pytest.approx(10.0) and clear.resolved and clear.verdict == "higher"
    assert clear.low > 8.0 and clear.high < 12.0
    noisy = bootstrap_difference([10.0, 30.0, -5.0], [16.0, 2.0, 35.0])  # DT 16.0 ± 14.1 against 2.3-like spreads
    assert noisy.low < 0.0 < noisy.high and noisy.verdict == "not resolved"
    lower = bootstrap_difference([5.0, 5.1, 4.9], [1.0, 1.1, 0.9])
    assert lower.verdict == "lower"
    assert bootstrap_difference([1.0, 2.0], [3.0, 4.0], seed=3) == bootstrap_difference([1.0, 2.0], [3.0, 4.0], seed=3)
    with pytest.raises(ValueError, match="at least one seed"):
        bootstrap_difference([], [1.0])


def test_the_interval_covers_the_true_difference_about_as_often_as_it_says():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        a, b = rng.normal(0.0, 1.0, 8), rng.normal(0.5, 1.0, 8)
        effect = bootstrap_difference(a, b, resamples=2000, seed=trial)
        covered += effect.low <= 0.5 <= effect.high
    assert 0.85 <= covered / 200 <= 0.99  # percentile bootstrap with 8 seeds: a little under 95%


def test_pairing_removes_the_spread_between_seeds():
    # Each seed's runs differ a lot from each other, but each run scores exactly 2 more at the
    # higher target: unpaired, that is lost in the seeds' spread; paired, it is resolved.
    low = [10.0, 40.0, 25.0, 60.0, 5.0]
    high = [x + 2.0 for x in low]
    assert not bootstrap_difference(low, high).resolved
    paired = bootstrap_paired_difference(low, high)
    assert paired.difference == pytest.approx(2.0) and paired.low == pytest.approx(2.0) and paired.high == pytest.approx(2.0)
    assert paired.verdict == "higher"
    mixed = bootstrap_paired_difference([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0])
    assert mixed.difference == pytest.approx(0.0) and mixed.verdict == "not resolved"
    with pytest.raises(ValueError, match="equally long"):
        bootstrap_paired_difference([1.0, 2.0], [1.0])


def test_the_report_writes_effects_against_a_baseline(tmp_path):
    for seed, (c, t) in enumerate([(40.0, 60.0), (42.0, 61.0), (41.0, 59.0)]):
        fake_run(tmp_path / "runs", "main", "hopper-medium", "continuous", seed, {100.0: c})
        fake_run(tmp_path / "runs", "main", "hopper-medium", "tokenized", seed, {100.0: t})
    report = write_report(tmp_path / "runs", tmp_path / "report", plots=False, effects_baseline="continuous")
    table = (tmp_path / "report" / "effects.md").read_text()
    assert "| main | hopper-medium | – | tokenized − continuous | 100 | +19.0 [" in table and "| 3, 3 | higher |" in table
    assert tmp_path / "report" / "effects.md" in report["files"]
    none = write_report(tmp_path / "runs", tmp_path / "other", plots=False, effects_baseline="tt")
    assert any("--effects tt" in note for note in none["notes"])
