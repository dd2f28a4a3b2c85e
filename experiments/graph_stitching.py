"""Shortest-path stitching (the Decision Transformer paper, section 5, "shortest path"): trained on
random walks over a fixed graph (`seqrl/ShortestPathGraph-v0`, recipe `graph-random-walks`), does
the DT conditioned on the highest return generate shortest paths?

Per seed: the random walks are collected with that seed, a small DT is trained on them and
evaluated conditioned on return 0 (the highest return in the data: the goal reached on the first
step), and, as baselines on the same data, behaviour cloning (all walks) and 10% BC (the walks
with the best returns). Measured over the evaluation episodes (start nodes drawn uniformly among
the non-goal nodes):
- `optimal`: the fraction of episodes that reach the goal in exactly the shortest-path distance
  from their start;
- `success`: the fraction that reach the goal within the cap;
- the path lengths (steps to the goal; `cap+` for episodes that never reach it), with the same
  measures for the training walks themselves (the paper's figure: a histogram of the two).

Writes `results.json` and `path_lengths.png` to `--out`.

    python experiments/graph_stitching.py [--seeds 0 1 2] [--transitions 20000] [--steps 2000]
        [--episodes 200] [--no-bc] [--out docs/results/graph_stitching]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RECIPE = "graph-random-walks"
TARGET = 0.0  # the highest return: the goal reached on the first step


def path_measures(lengths: np.ndarray, successes: np.ndarray, starts: np.ndarray, distances: np.ndarray,
                  cap: int) -> dict[str, Any]:
    """Fractions optimal and successful, and the path lengths (cap + 1 standing for 'not reached')."""
    lengths, successes, starts = np.asarray(lengths), np.asarray(successes, bool), np.asarray(starts)
    shortest = distances[starts]
    optimal = successes & (lengths == shortest)
    recorded = np.where(successes, lengths, cap + 1)
    return {
        "episodes": int(len(lengths)),
        "optimal": float(optimal.mean()),
        "success": float(successes.mean()),
        "length_mean_reached": float(lengths[successes].mean()) if successes.any() else None,
        "excess_mean_reached": float((lengths - shortest)[successes].mean()) if successes.any() else None,
        "path_lengths": recorded.astype(int).tolist(),
        "shortest": shortest.astype(int).tolist(),
    }


def walk_measures(data: Any, distances: np.ndarray, cap: int) -> dict[str, Any]:
    """`path_measures` of the dataset's own random walks."""
    from seqrl.collect.graph import nodes_of

    starts = nodes_of(data.observations[data.episode_starts])
    successes = data.terminations[data.episode_ends - 1].astype(bool)
    return path_measures(data.episode_lengths, successes, starts, distances, cap)


def evaluate_policy(result: Any, episodes: int, seed: int, distances: np.ndarray, cap: int,
                    targets: list[float] | None = None) -> dict[str, Any]:
    from seqrl.collect.graph import nodes_of
    from seqrl.evaluation.rollout import evaluate

    records: list[Any] = []
    out = evaluate(result.model, result.spec, config=result.config, targets=targets, episodes=episodes, seed=seed,
                   records=records, progress=False)[0]
    starts = np.array([int(nodes_of(obs[:1])[0]) for obs in records[0].observations])
    return {**path_measures(np.array(out["lengths"]), np.array(out["successes"]), starts, distances, cap),
            "return_mean": out["return_mean"], "score_mean": out["score_mean"]}


def run_seed(seed: int, *, transitions: int, steps: int, episodes: int, bc: bool = True, run_root: Path,
             dt_size: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collect, train the DT (and BC, 10% BC), evaluate: one seed's measures."""
    import gymnasium as gym

    from seqrl.collect.graph import ENV_ID, register_envs
    from seqrl.collect.recipes import build_recipe
    from seqrl.families.bc import BCConfig
    from seqrl.families.dt.config import TrainConfig
    from seqrl.train import train

    data, refs = build_recipe(RECIPE, transitions, seed=seed, n_envs=8, reference_episodes=500)
    register_envs()
    env = gym.make(ENV_ID)
    distances, cap = env.unwrapped.distances, env.spec.max_episode_steps
    env.close()
    out: dict[str, Any] = {"seed": seed, "dataset": {**data.summary(), "ref_min_score": refs["ref_min_score"],
                                                     "ref_max_score": refs["ref_max_score"]},
                           "random_walks": walk_measures(data, distances, cap)}
    common = dict(dataset=RECIPE, steps=steps, batch_size=64, learning_rate=1e-3, warmup_steps=min(100, steps),
                  log_every=max(steps // 4, 1), checkpoint_every=steps, progress=False, precision="fp32",
                  device="cpu", seed=seed)
    size = {**dict(embed_dim=64, n_layers=2, n_heads=2, context_len=cap, dropout=0.1), **(dt_size or {})}
    t0 = time.perf_counter()
    dt = train(TrainConfig(model="tokenized", rtg_scale=0.1, targets=(TARGET,),
                           run_dir=str(run_root / f"dt_seed{seed}"), **size, **common), dataset=data)
    out["dt"] = {**evaluate_policy(dt, episodes, 10_000 + seed, distances, cap, [TARGET]), "target": TARGET,
                 "train_seconds": round(time.perf_counter() - t0, 1)}
    if bc:
        hidden = size["embed_dim"]
        for name, fraction in (("bc", 1.0), ("bc10", 0.1)):
            run = train(BCConfig(hidden_dim=hidden, n_layers=2, top_fraction=fraction,
                                 run_dir=str(run_root / f"{name}_seed{seed}"), **common), dataset=data)
            out[name] = evaluate_policy(run, episodes, 10_000 + seed, distances, cap)
    return out


def summarize(per_seed: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = {m: [s[key][m] for s in per_seed if key in s] for m in ("optimal", "success", "length_mean_reached")}
    return {m: {"mean": float(np.mean([x for x in v if x is not None])) if any(x is not None for x in v) else None,
                "per_seed": v} for m, v in values.items()}


def plot(per_seed: list[dict[str, Any]], cap: int, path: Path) -> Path:
    from seqrl.figures import add_legend, new_figure, save_figure

    fig, ax = new_figure(figsize=(6.5, 3.6))
    bins = np.arange(1, cap + 3) - 0.5
    series = [("random_walks", "random walks (training data)"), ("dt", f"DT, target return {TARGET:g}"),
              ("bc", "BC"), ("shortest", "shortest path")]
    for key, label in series:
        if key == "shortest":
            lengths = np.concatenate([s["dt"]["shortest"] for s in per_seed])
        elif all(key in s for s in per_seed):
            lengths = np.concatenate([s[key]["path_lengths"] for s in per_seed])
        else:
            continue
        style = {"random_walks": dict(histtype="stepfilled", alpha=0.35),
                 "shortest": dict(histtype="step", linestyle="--", color="black", linewidth=1.2)}
        ax.hist(lengths, bins=bins, density=True, label=label,
                **style.get(key, dict(histtype="step", linewidth=2.2 if key == "dt" else 1.6)))
    ax.set_xlabel(f"path length to the goal ({cap + 1}: not reached in {cap} steps)")
    ax.set_ylabel("fraction of episodes")
    ax.set_title(f"Shortest-path stitching, {len(per_seed)} seeds")
    add_legend(ax)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--no-bc", action="store_true")
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--out", default="docs/results/graph_stitching")
    parser.add_argument("--runs", default=None, help="run directories (default: OUT/runs, not committed)")
    args = parser.parse_args(argv)

    from seqrl.collect.graph import MAX_EPISODE_STEPS

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_root = Path(args.runs) if args.runs else out_dir / "runs"
    t0 = time.perf_counter()
    per_seed = []
    for seed in args.seeds:
        per_seed.append(run_seed(seed, transitions=args.transitions, steps=args.steps, episodes=args.episodes,
                                 bc=not args.no_bc, run_root=run_root, dt_size={"embed_dim": args.embed_dim}))
        line = {k: round(per_seed[-1][k]["optimal"], 3) for k in ("random_walks", "dt", "bc", "bc10") if k in per_seed[-1]}
        print(f"seed {seed}: optimal fraction {line}", flush=True)
    results = {
        "command": "python experiments/graph_stitching.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": platform.processor() or platform.machine(),
        "seconds": round(time.perf_counter() - t0, 1),
        "cap": MAX_EPISODE_STEPS,
        "summary": {k: summarize(per_seed, k) for k in ("random_walks", "dt", "bc", "bc10") if k in per_seed[0]},
        "seeds": per_seed,
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    plot(per_seed, MAX_EPISODE_STEPS, out_dir / "path_lengths.png")
    for key, summary in results["summary"].items():
        print(f"{key:13s} optimal {summary['optimal']['mean']:.3f}  success {summary['success']['mean']:.3f}  "
              f"mean length (reached) {summary['length_mean_reached']['mean']}")
    return results


if __name__ == "__main__":
    main()
