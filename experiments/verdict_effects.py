"""The effects behind docs/RESULTS.md's verdict table, computed from committed files only:

    python experiments/verdict_effects.py > docs/results/verdicts.md

Each row is one comparison, B − A, in normalized score points (success-rate points for the
Key-to-Door, maze and graph rows), with a 95% interval and the rule of issue 30: an effect is
stated only where the interval excludes zero, otherwise "not resolved".

Two kinds of interval, named in the `interval` column:
- `bootstrap`: where the per-seed scores are committed (Key-to-Door's, the graph's and discrete
  LunarLander's run files, the per-run rows of tt_goal_tables.md), the percentile bootstrap of
  the difference of means of `seqrl.experiments.effects` (10,000 resamples, seed 0). With 3
  seeds a side it is narrow: each side has only 10 distinct resampled means.
- `Welch t`: where only each group's mean ± std over seeds is committed (`seqrl report`'s
  results.csv: paper.yaml, agnostic.yaml, lm_init.yaml, tt.yaml; their per-seed scores were in
  run directories that did not survive), Welch's t interval from those summaries (the CSV's std is
  numpy's population std; it is turned into the sample std first). It is wider than the
  bootstrap on the same data, as a t interval with 2-4 degrees of freedom should be.

Scores are at each dataset's highest target (the paper's convention) unless a row names one.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import claims_tables  # experiments/, beside this script: the claims.yaml comparisons are defined once, there
from seqrl.experiments.report import read_results_csv

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
CSV = {
    "paper": RESULTS / "results.csv",
    "agnostic": RESULTS / "agnostic" / "results.csv",
    "rerun": RESULTS / "agnostic" / "halfcheetah-rerun" / "results.csv",
    "lm": RESULTS / "lm_init" / "results.csv",
    "tt": RESULTS / "tt" / "results.csv",
    "tti": RESULTS / "tt_imitation" / "results.csv",
}
_rows: dict[str, list[dict[str, Any]]] = {}


def summary(source: str, experiment: str, dataset: str, model: str, options: str = "",
            target: str = "highest") -> tuple[float, float, int, str]:
    """(mean, sample std, seeds, label) of one results.csv group at a target ("highest", "lowest"
    or a number)."""
    rows = _rows.setdefault(source, read_results_csv(CSV[source]))
    found = [r for r in rows if (r["experiment"], r["dataset"], r["model"], r["options"]) ==
             (experiment, dataset, model, options)]
    if not found:
        raise SystemExit(f"verdict_effects.py: no row {experiment}/{dataset}/{model}/{options!r} in {CSV[source]}")
    if target in ("highest", "lowest") and any(r["target"] for r in found):
        found.sort(key=lambda r: float(r["target"]))
        row = found[-1] if target == "highest" else found[0]
    elif target not in ("highest", "lowest"):
        row = next(r for r in found if r["target"] and float(r["target"]) == float(target))
    else:
        row = found[0]
    n, std = int(row["seeds"]), float(row["score_std"])
    sample_std = std * math.sqrt(n / (n - 1)) if n > 1 else float("nan")
    return float(row["score_mean"]), sample_std, n, f"{float(row['score_mean']):.1f} ± {std:.1f}"


def welch(a: tuple[float, float, int, str], b: tuple[float, float, int, str]) -> dict[str, Any]:
    from scipy import stats

    (ma, sa, na, la), (mb, sb, nb, lb) = a, b
    va, vb = sa * sa / na, sb * sb / nb
    se = math.sqrt(va + vb)
    diff = mb - ma
    if se == 0.0:
        low = high = diff
    else:
        df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
        half = float(stats.t.ppf(0.975, df)) * se
        low, high = diff - half, diff + half
    return {"a": la, "b": lb, "diff": diff, "low": low, "high": high, "seeds": f"{na}, {nb}", "interval": "Welch t"}


def boot(a: list[float], b: list[float], scale: float = 1.0, paired: bool = False) -> dict[str, Any]:
    e = claims_tables.effect(a, b, paired)
    fmt = lambda xs: ", ".join(f"{scale * x:.0f}" if scale != 1.0 else f"{x:.1f}" for x in xs)  # noqa: E731
    return {"a": fmt(a), "b": fmt(b), "diff": scale * e.difference, "low": scale * e.low, "high": scale * e.high,
            "seeds": f"{len(a)}, {len(b)}", "interval": "paired bootstrap" if paired else "bootstrap"}


def keydoor(dataset: str, arm: str) -> list[float]:
    seeds = json.loads((RESULTS / "keydoor" / "results.json").read_text())[dataset][arm]["seeds"]
    return [seeds[s]["success_rate"] for s in sorted(seeds, key=int)]


def graph(policy: str) -> list[float]:
    return json.loads((RESULTS / "graph_stitching" / "results.json").read_text())["summary"][policy]["optimal"]["per_seed"]


def highest_target_score(eval_json: Path) -> float:
    """A run's normalized score at its highest target, from its eval.json."""
    return max(json.loads(eval_json.read_text())["results"], key=lambda r: r["target"])["score_mean"]


def discrete(model: str) -> list[float]:
    return [highest_target_score(run / "eval.json")
            for run in sorted((RESULTS / "discrete_lunarlander").glob(f"ll-{model}-s*"))]


def discrete_sweep(dataset: str, arm: str) -> list[float]:
    """experiments/discrete.yaml's per-seed scores (the DT's at its highest target), from the committed runs."""
    arms = json.loads((RESULTS / "discrete" / "results.json").read_text())[dataset]
    return [arms[arm]["seeds"][s]["score"] for s in sorted(arms[arm]["seeds"], key=int)]


def tt_fixed(pattern: str, key: str = "score_mean") -> list[float]:
    """Per-seed results of the fixed TT's committed runs (docs/results/tt_fixed/runs/PATTERN/s*/eval.json)."""
    paths = sorted((RESULTS / "tt_fixed" / "runs").glob(f"{pattern}/s*/eval.json"))
    if not paths:
        raise SystemExit(f"verdict_effects.py: no runs docs/results/tt_fixed/runs/{pattern}/s*")
    return [json.loads(p.read_text())["results"][0][key] for p in paths]


def from_seeds(values: list[float]) -> tuple[float, float, int, str]:
    """`summary`'s (mean, sample std, seeds, label) of per-seed values, for a Welch interval against a summary."""
    import numpy as np

    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1)), len(v), f"{v.mean():.1f} ± {v.std():.1f}"


def convergence_final(dataset: str) -> list[float]:
    """The paper-size baseline DT's final scores (20,000 updates, highest target) from experiments/convergence.yaml's committed runs."""
    runs = RESULTS / "convergence" / "runs" / "paper-size" / dataset / "continuous"
    return [highest_target_score(path) for path in sorted(runs.glob("s*/eval.json"))]


def claims(claim: str) -> list[tuple[str, dict[str, Any]]]:
    """experiments/claims.yaml's comparisons for one claim (C1, C3 or C4; claims_tables.py defines
    them), from its committed runs (docs/results/claims/runs): (what, effect) rows."""
    results = claims_tables.collect_results(RESULTS / "claims" / "runs")
    return [(f"claims.yaml, 3000 updates: {what}", boot(a, b, paired=paired))
            for name, what, a, b, paired in claims_tables.comparisons(results) if name == claim]


def maze(arm: str) -> list[float]:
    text = (RESULTS / "tt_goal" / "tt_goal_tables.md").read_text()
    return [float(m.group(1)) / 100.0 for m in re.finditer(rf"^\| {re.escape(arm)}/s\d \| \d+ \| (\d+) \|", text, re.M)]


def comparisons() -> list[tuple[str, str, dict[str, Any]]]:
    P, A, R, L = "paper", "agnostic", "rerun", "lm"
    out: list[tuple[str, str, dict[str, Any]]] = []

    def add(claim: str, what: str, effect: dict[str, Any]) -> None:
        out.append((claim, what, effect))

    # The tokenized-action paper: C1, spread, C3.
    for task in ("hopper", "halfcheetah", "walker2d"):
        d = f"{task}-medium"
        add("C1", f"{d}: tokenized − continuous (main)",
            welch(summary(P, "main", d, "continuous"), summary(P, "main", d, "tokenized")))
    for what, effect in claims("C1"):  # claims.yaml: 3000 updates, past the baseline's plateau, 5 seeds
        add("C1", what, effect)
    for task in ("hopper", "halfcheetah", "walker2d"):
        d = f"{task}-medium"
        for m in ("tokenized-spread", "continuous-spread"):
            add("C2", f"{d}: {m} − continuous (main)", welch(summary(P, "main", d, "continuous"), summary(P, "main", d, m)))
    add("C2", "halfcheetah-medium: continuous-spread wide-3x − pooled continuous (rerun machine)",
        welch(summary(R, "dt-bc-halfcheetah", "halfcheetah-medium", "continuous"),
              summary(R, "halfcheetah-spread", "halfcheetah-medium", "continuous-spread", "wide-3x")))
    for m in ("tokenized", "tokenized-spread"):
        for task in ("hopper", "halfcheetah", "walker2d"):
            d = f"{task}-medium"
            add("ablation", f"{d}, {m}: per-feature offsets (main) − shared range (no-offset)",
                welch(summary(P, "ablations", d, m, "no-offset"), summary(P, "main", d, m)))
            add("ablation", f"{d}, {m}: shared range + action-index − shared range",
                welch(summary(P, "ablations", d, m, "no-offset"), summary(P, "ablations", d, m, "action-index")))
    for m in ("tokenized", "tokenized-spread"):
        for bins in (100, 300, 1000, 3000):
            add("bins", f"hopper-medium, {m}, {bins} bins: uniform − quantile edges",
                welch(summary(P, "bins", "hopper-medium", m, f"num_bins={bins},binning=quantile"),
                      summary(P, "bins", "hopper-medium", m, f"num_bins={bins},binning=uniform")))
    for exp, d in (("transfer-hopper-walker2d", "walker2d-medium"), ("transfer-halfcheetah-hopper", "hopper-medium")):
        add("C3", f"{exp}, tokenized-spread, per-feature codec: embeddings − all layers",
            welch(summary(P, exp, d, "tokenized-spread", "ft-all"), summary(P, exp, d, "tokenized-spread", "ft-embeddings")))
        for m in ("tokenized-spread", "continuous-spread"):
            add("C3", f"{exp}, {m}, agnostic codec, action layers kept: embeddings − all layers",
                welch(summary(A, exp, d, m, "ft-all,rebuild=state"), summary(A, exp, d, m, "ft-embeddings,rebuild=state")))
    for m in ("tokenized-spread", "continuous-spread"):
        add("C3", f"hopper-medium, {m}, from scratch: agnostic codec − per-feature codec (two machines)",
            welch(summary(P, "main", "hopper-medium", m), summary(A, "source", "hopper-medium", m)))
    add("C3", "transfer-halfcheetah-hopper, tokenized-spread, all layers: agnostic codec kept − per-feature codec rebuilt",
        welch(summary(P, "transfer-halfcheetah-hopper", "hopper-medium", "tokenized-spread", "ft-all"),
              summary(A, "transfer-halfcheetah-hopper", "hopper-medium", "tokenized-spread", "ft-all,rebuild=state")))
    for task in ("hopper", "walker2d"):
        for m in ("tokenized-spread", "continuous-spread"):
            add("C3", f"{task}-medium, {m}, agnostic codec: multi-task − single-task (3× the trunk updates)",
                welch(summary(A, "source", f"{task}-medium", m),
                      summary(A, "multitask", f"{task}-medium@hopper-medium+halfcheetah-medium+walker2d-medium", f"mt-{m}")))
    for m in ("tokenized-spread", "continuous-spread"):
        for mode in ("ft-embeddings", "ft-all"):
            add("C3", f"lunarlander-medium, {m}, {mode}: from multi-task − from hopper source",
                welch(summary(A, "transfer-hopper-lunarlander", "lunarlander-medium", m, f"{mode},rebuild=state"),
                      summary(A, "transfer-multitask-lunarlander", "lunarlander-medium", m, f"{mode},rebuild=state")))
    add("C3", "transfer-halfcheetah-hopper, tokenized-spread, agnostic codec: all layers − from scratch (2× updates)",
        welch(summary(A, "source", "hopper-medium", "tokenized-spread"),
              summary(A, "transfer-halfcheetah-hopper", "hopper-medium", "tokenized-spread", "ft-all,rebuild=state")))
    add("C3", "transfer-hopper-walker2d, pooled tokenized: embeddings − from scratch (2× updates)",
        welch(summary(P, "main", "walker2d-medium", "tokenized"),
              summary(P, "transfer-hopper-walker2d", "walker2d-medium", "tokenized", "ft-embeddings")))
    for what, effect in claims("C3"):
        add("C3", what, effect)

    # The DT paper: C4, Key-to-Door, the graph, discrete LunarLander.
    for task in ("hopper", "halfcheetah", "walker2d"):
        for data in ("medium", "mixed"):
            d = f"{task}-{data}"
            dt = summary(A, f"dt-bc-{task}", d, "continuous")
            add("C4", f"{d}: DT − BC", welch(summary(A, "bc", d, "bc", "all"), dt))
            add("C4", f"{d}: DT − 10% BC", welch(summary(A, "bc", d, "bc", "top10"), dt))
    for what, effect in claims("C4"):
        add("C4", what, effect)
    for task in ("hopper", "halfcheetah", "walker2d"):
        for data in ("medium", "mixed"):
            d = f"{task}-{data}"
            add("C5", f"{d}: DT at its highest − at its lowest target (same runs; unpaired interval)",
                welch(summary(A, f"dt-bc-{task}", d, "continuous", target="lowest"),
                      summary(A, f"dt-bc-{task}", d, "continuous", target="highest")))
    for what, effect in claims("C5"):
        add("C5", what, effect)
    add("KD", "keydoor-random: DT sampled − BC (success rate, points)",
        boot(keydoor("keydoor-random", "bc+all"), keydoor("keydoor-random", "continuous+sample"), 100.0))
    add("KD", "keydoor-random: DT argmax − BC (success rate, points)",
        boot(keydoor("keydoor-random", "bc+all"), keydoor("keydoor-random", "continuous+argmax"), 100.0))
    add("KD", "keydoor-mixed: DT sampled − 10% BC (success rate, points)",
        boot(keydoor("keydoor-mixed", "bc+top10"), keydoor("keydoor-mixed", "continuous+sample"), 100.0))
    add("KD", "keydoor-mixed: DT sampled − BC (success rate, points)",
        boot(keydoor("keydoor-mixed", "bc+all"), keydoor("keydoor-mixed", "continuous+sample"), 100.0))
    add("GR", "graph: DT − 10% BC (shortest-path episodes, points)", boot(graph("bc10"), graph("dt"), 100.0))
    add("GR", "graph: DT − BC (shortest-path episodes, points)", boot(graph("bc"), graph("dt"), 100.0))
    add("LL", "discrete LunarLander: tokenized − continuous", boot(discrete("continuous"), discrete("tokenized")))
    for name in ("medium", "mixed"):  # experiments/discrete.yaml, 5 seeds
        d = f"lunarlander-discrete-{name}"
        add("LL", f"{d}: DT continuous − BC", boot(discrete_sweep(d, "bc+all"), discrete_sweep(d, "continuous")))
        add("LL", f"{d}: DT continuous − 10% BC", boot(discrete_sweep(d, "bc+top10"), discrete_sweep(d, "continuous")))
        add("LL", f"{d}: DT pooled tokenized − BC", boot(discrete_sweep(d, "bc+all"), discrete_sweep(d, "tokenized")))
        add("LL", f"{d}: pooled tokenized − continuous",
            boot(discrete_sweep(d, "continuous"), discrete_sweep(d, "tokenized")))

    # The Trajectory Transformer.
    for task in ("hopper", "halfcheetah", "walker2d"):
        d = f"{task}-medium"
        add("TT", f"{d}: TT − DT continuous (tt.yaml before the fixes)",
            welch(summary(P, "main", d, "continuous"), summary("tt", "main", d, "tt")))
    for d in ("hopper-expert", "walker2d-expert"):
        add("TT", f"{d}: TT likelihood beam search − BC", welch(summary("tti", "expert", d, "bc"), summary("tti", "expert", d, "tt")))
    add("TT", "four rooms: goal TT (episode end) − goal BC (success rate, points)",
        boot(maze("baseline/pointmaze-fourrooms/bc"), maze("goal/pointmaze-fourrooms/tt+episode-end"), 100.0))
    # The TT after the fixes (docs/results/tt_fixed).
    add("TT", "hopper-medium: fixed TT, 20,000 updates (tt_long.yaml) − DT continuous, 20,000 updates (convergence.yaml)",
        boot(convergence_final("hopper-medium"), tt_fixed("tt_long/reward/hopper-medium/tt")))
    walker_dt = claims_tables._scores(claims_tables.collect_results(RESULTS / "claims" / "runs"),
                                      "c1-walker2d", "walker2d-medium", "continuous")
    add("TT", "walker2d-medium: fixed TT, dropout 0.1, 8000 updates (tt_long.yaml reward-dropout) − DT continuous, "
        "3000 updates (claims.yaml c1-walker2d)",
        boot(walker_dt, tt_fixed("tt_long/reward-dropout/walker2d-medium/tt")))
    for task in ("hopper", "halfcheetah", "walker2d"):
        d = f"{task}-medium"
        add("TT", f"{d}: fixed TT − DT continuous (tt.yaml main, 2000 updates)",
            welch(summary(P, "main", d, "continuous"), from_seeds(tt_fixed(f"tt/main/{d}/tt"))))
    add("TT", "lunarlander-expert: fixed TT likelihood beam search − BC (tt_imitation.yaml, 15,000 updates)",
        boot(tt_fixed("tt_imitation/lunarlander/lunarlander-expert/bc"),
             tt_fixed("tt_imitation/lunarlander/lunarlander-expert/tt")))
    maze_bc = tt_fixed("tt_goal/baseline/pointmaze-fourrooms/bc", "success_rate")
    add("TT", "four rooms: fixed goal TT, goal prefix (episode end) − goal BC (success rate, points)",
        boot(maze_bc, tt_fixed("tt_goal/prefix/pointmaze-fourrooms/tt+episode-end", "success_rate"), 100.0))
    add("TT", "four rooms: fixed TT, goal in every state − goal BC (success rate, points)",
        boot(maze_bc, tt_fixed("tt_goal/state/pointmaze-fourrooms/tt", "success_rate"), 100.0))
    add("TT", "four rooms: fixed TT, goal in every state − goal prefix (success rate, points)",
        boot(tt_fixed("tt_goal/prefix/pointmaze-fourrooms/tt+episode-end", "success_rate"),
             tt_fixed("tt_goal/state/pointmaze-fourrooms/tt", "success_rate"), 100.0))

    # Language-model initialisation: final scores after 1500 updates.
    for task in ("hopper", "halfcheetah", "walker2d"):
        d = f"{task}-medium"
        rnd, text = summary(L, "random", d, "continuous"), summary(L, "text", d, "continuous", "plain")
        add("C6", f"{d}: text − random init", welch(rnd, text))
        add("C6", f"{d}: synthetic − text init", welch(text, summary(L, "synthetic", d, "continuous", "plain")))
        add("C6", f"{d}: text + align + co-train − random init",
            welch(rnd, summary(L, "text", d, "continuous", "align-cotrain")))
        add("C6", f"{d}: text + align + co-train − text init", welch(text, summary(L, "text", d, "continuous", "align-cotrain")))
        add("C6", f"{d}: frozen text trunk − random init", welch(rnd, summary(L, "text", d, "continuous", "frozen")))
    add("C6", "hopper-medium, tokenized-spread: text − random init",
        welch(summary(L, "spread", "hopper-medium", "tokenized-spread", "random"),
              summary(L, "spread", "hopper-medium", "tokenized-spread", "text")))
    return out


def main() -> None:
    print("| claim | comparison (B − A) | A | B | B − A [95% interval] | interval | seeds (A, B) | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for claim, what, e in comparisons():
        resolved = e["low"] > 0 or e["high"] < 0
        verdict = ("B higher" if e["diff"] > 0 else "B lower") if resolved else "not resolved"
        print(f"| {claim} | {what} | {e['a']} | {e['b']} | {e['diff']:+.1f} [{e['low']:+.1f}, {e['high']:+.1f}] | "
              f"{e['interval']} | {e['seeds']} | {verdict} |")


if __name__ == "__main__":
    main()
