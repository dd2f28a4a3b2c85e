"""Effects with intervals: the difference of two groups' mean scores over seeds, with a bootstrap
confidence interval, and a verdict that states an effect only where the interval excludes zero
(issue 30's rule for every claim in docs/RESULTS.md).

    seqrl report RUNS --effects BASELINE   (or from Python: effects(groups, baseline="continuous"))

The interval is the percentile bootstrap of the difference of means: each group's per-seed scores
are resampled with replacement, independently, `resamples` times with a seeded generator. With
few seeds it is wide, as it should be: 3 seeds rarely resolve a difference of one standard
deviation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Effect:
    """B minus A: the difference of mean scores, its interval and the verdict."""

    difference: float
    low: float
    high: float
    seeds_a: int
    seeds_b: int

    @property
    def resolved(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    @property
    def verdict(self) -> str:
        if not self.resolved:
            return "not resolved"
        return "higher" if self.difference > 0 else "lower"


def bootstrap_difference(a: Sequence[float], b: Sequence[float], *, confidence: float = CONFIDENCE,
                         resamples: int = RESAMPLES, seed: int = 0) -> Effect:
    """mean(b) - mean(a), with the percentile bootstrap interval at `confidence`."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 1 or len(b) < 1:
        raise ValueError(f"each side needs at least one seed's score, got {len(a)} and {len(b)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means_a = a[rng.integers(0, len(a), (resamples, len(a)))].mean(1)
    means_b = b[rng.integers(0, len(b), (resamples, len(b)))].mean(1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means_b - means_a, [tail, 1.0 - tail])
    return Effect(float(b.mean() - a.mean()), float(low), float(high), len(a), len(b))


def bootstrap_paired_difference(a: Sequence[float], b: Sequence[float], *, confidence: float = CONFIDENCE,
                                resamples: int = RESAMPLES, seed: int = 0) -> Effect:
    """mean(b - a) over pairs measured on the same seed (one run's score at two targets, say), with
    the percentile bootstrap interval of the mean difference. Pairing removes the between-seed
    spread that the unpaired interval of `bootstrap_difference` carries twice."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 1:
        raise ValueError(f"a paired difference needs two equally long lists of scores, got {len(a)} and {len(b)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    differences = b - a
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (resamples, len(differences)))].mean(1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Effect(float(differences.mean()), float(low), float(high), len(a), len(b))


def effects(groups: Sequence[Any], baseline: str, *, key: str = "score_mean", seed: int = 0) -> list[dict[str, Any]]:
    """Every group against the group of model `baseline` with the same experiment, dataset and
    options (the same label), at each target both were evaluated at: one row per comparison."""
    by_key = {(g.experiment, g.dataset, g.label, g.model): g for g in groups}
    rows = []
    for g in groups:
        if g.model == baseline:
            continue
        base = by_key.get((g.experiment, g.dataset, g.label, baseline))
        if base is None:
            continue
        for target in [t for t in base.targets() if t in g.targets()]:
            a, b = base.scores(target, key), g.scores(target, key)
            if len(a) and len(b):
                effect = bootstrap_difference(a, b, seed=seed)
                rows.append({"experiment": g.experiment, "dataset": g.dataset, "options": g.label, "model": g.model,
                             "baseline": baseline, "target": target, "difference": effect.difference,
                             "ci_low": effect.low, "ci_high": effect.high, "seeds": (effect.seeds_a, effect.seeds_b),
                             "verdict": effect.verdict})
    return rows


def effects_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table: effect of each model over the baseline, 95% interval, verdict."""
    lines = ["| experiment | dataset | options | model − baseline | target | effect (95% CI) | seeds | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        target = "-" if r["target"] is None else f"{r['target']:g}"
        lines.append(f"| {r['experiment'] or '–'} | {r['dataset']} | {r['options'] or '–'} | {r['model']} − "
                     f"{r['baseline']} | {target} | {r['difference']:+.1f} [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] | "
                     f"{r['seeds'][0]}, {r['seeds'][1]} | {r['verdict']} |")
    return "\n".join(lines) + "\n"
