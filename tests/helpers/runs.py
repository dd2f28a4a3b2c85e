"""Run directories as a sweep (or a hand-trained run) leaves them, for report tests."""

from __future__ import annotations

import json
from pathlib import Path

from seqrl.experiments.spec import Finetune, RunSpec
from seqrl.families.dt.config import TrainConfig
from seqrl.runs import write_json_atomic


def fake_run(root: Path, experiment: str, dataset: str, model: str, seed: int, scores: dict[float, float] | None,
             *, label: str = "", options: dict | None = None, finetune: Finetune | None = None,
             losses: list[float] | None = None, evals: list[tuple[int, float]] = (), sweep: bool = True, status: str = "done") -> Path:
    """A run directory as a sweep leaves it; `scores` maps target -> that seed's mean score."""
    options = options or {}
    name = f"{experiment}/{dataset}/{model}" + (f"+{label}" if label else "") + f"/s{seed}"
    run_dir = root / (name if sweep else f"{dataset}-{model}-s{seed}")
    cfg = TrainConfig(dataset=dataset, model=model, seed=seed, steps=10, run_dir=str(run_dir), **options)
    write_json_atomic(run_dir / "config.json", cfg.to_dict())
    if sweep:
        run = RunSpec(name, experiment, dataset, model, seed, label, options, {"steps": 10, **options}, 2, finetune)
        write_json_atomic(run_dir / "sweep.json", {"run": run.to_dict(), "status": status, "step": 10, "seconds": 60.0})
    if scores is not None:
        results = [{"target": t, "score_mean": s, "score_std": 1.0, "return_mean": 10 * s, "return_std": 5.0}
                   for t, s in scores.items()]
        write_json_atomic(run_dir / "eval.json", {"step": 10, "episodes": 2, "results": results})
    losses = losses or [1.0, 0.5, 0.25]
    # A hand-trained run counts as finished when its metrics reach its steps (10); sweep runs say so in sweep.json.
    shift = 0 if sweep else 10 - 2 * len(losses)
    lines = [{"step": 2 * (i + 1) + shift, "loss": loss, "lr": 1e-4, "grad_norm": 1.0, "steps_per_sec": 5.0}
             for i, loss in enumerate(losses)]
    lines += [{"step": step, "kind": "eval", "eval/target_100/score_mean": score} for step, score in evals]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run_dir
