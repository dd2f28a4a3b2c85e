"""Evaluate a run directory (`seqrl eval`): load its checkpoint, roll it out under each of its
family's conditions (seqrl.evaluation.rollout), and write RUN_DIR/eval.json, with a video or a
plot if asked for. Family-specific settings (the TT's planner) are the family's: `seqrl eval`
takes a family's own flags (`Family.eval_flags`), and this module passes them through.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal, Sequence

from seqrl.errors import ConfigError
from seqrl.evaluation.rollout import (  # noqa: F401 (re-exported: the evaluation API in one place)
    ContextOnly, EpisodeRecord, EpisodeProgress, condition_label, evaluate, make_eval_envs, resolve_env_id, rollout,
    summarize,
)
from seqrl.evaluation.reference import evaluate_sequential, run_episode  # noqa: F401 (re-exported)

EVAL_FILE = "eval.json"


def evaluate_run(
    run_dir: str | Path,
    *,
    episodes: int = 100,
    targets: Sequence[float] | None = None,
    seed: int | None = None,
    device: str = "auto",
    env_id: str | None = None,
    vectorization: Literal["sync", "async"] = "sync",
    video: str | Path | None = None,
    write: bool = True,
    settings: dict[str, Any] | None = None,
    progress: bool = False,
    plot: str | Path | None = None,
    task: str | None = None,
    _loaded: Any = None,
) -> dict[str, Any]:
    """Evaluate a run directory's latest checkpoint (any family); the report is also written to
    RUN_DIR/eval.json (atomically) unless `write=False`. `seed` defaults to the run's eval_seed.
    `settings`: the family's own evaluation settings (a TT run's planner: `Family.eval_settings`
    checks them); `progress` shows env steps as they happen.
    `plot`: also draw achieved against target return to this PNG (return-conditioned runs).
    A multi-task run is evaluated per task (`task`: only that one); its report holds each task's
    report under "tasks" and every task's results, tagged with "task", under "results"."""
    from seqrl.families import get_family
    from seqrl.loading import load_run
    from seqrl.runs import write_json_atomic
    from seqrl.runtime import resolve_device
    from seqrl.validation import require_all_finite, require_int

    # Checked before anything is loaded or eval.json is touched.
    require_int("episodes", episodes, 1)
    if seed is not None:
        require_int("seed", seed, 0)  # gymnasium refuses negative seeds
    require_all_finite("targets", targets)
    run_dir = Path(run_dir)
    if write and _loaded is None and run_dir.is_dir():
        # A trainer or another evaluation writing this run directory: refused before the work.
        from seqrl.runs import RunLock

        with RunLock(run_dir, "evaluating"):
            return evaluate_run(run_dir, episodes=episodes, targets=targets, seed=seed, device=device, env_id=env_id,
                                vectorization=vectorization, video=video, write=write, settings=settings,
                                progress=progress, plot=plot, task=task, _loaded=load_run(run_dir, resolve_device(device)))
    torch_device = resolve_device(device)
    run = _loaded if _loaded is not None else load_run(run_dir, torch_device)
    family = get_family(run.family)
    views = family.task_views(run, task)
    if views is not None:  # a multi-task run: each task's view is a plain run of its own
        if plot is not None:
            raise ConfigError("--plot draws one task; evaluate the task's view with --task and plot that")
        reports = {}
        for name, model, spec, config in views:
            view = dataclasses.replace(run, model=model, spec=spec, config=config, artefacts=None)
            reports[name] = evaluate_run(run_dir, episodes=episodes, targets=targets, seed=seed, device=device,
                                         env_id=env_id, vectorization=vectorization, write=False, progress=progress,
                                         settings=settings, _loaded=view)
        combined = {"run_dir": str(run_dir), "step": run.step, "family": run.family, "model": family.describe(run.config),
                    "dataset": run.spec.dataset, "env_id": None, "episodes": episodes,
                    "ref_min_score": None, "ref_max_score": None, "tasks": reports,
                    "results": [{**r, "task": name} for name, rep in reports.items() for r in rep["results"]]}
        if write:
            write_json_atomic(run_dir / EVAL_FILE, combined)
            _refresh_model_card(run_dir)
        return combined
    settings = family.eval_settings(settings)
    conditions = family.conditions(run.config, run.spec, targets)  # first: a model that does not act says so
    seed = run.config.eval_seed if seed is None else int(seed)
    env_id = resolve_env_id(run.spec, env_id)
    from seqrl.collect.maze import MAZE_MAPS

    maze_plot = plot is not None and None in conditions  # a run not conditioned on a return: its paths in the maze
    if maze_plot and env_id not in MAZE_MAPS:
        raise ConfigError(f"--plot draws achieved against target return, and a {run.family} run is not conditioned "
                          f"on a target return (in a maze it draws the episodes' paths, and {env_id} is not one)")
    records: list[EpisodeRecord] | None = [] if maze_plot else None
    start = time.perf_counter()
    counter = EpisodeProgress(f"eval {run_dir.name}", episodes * len(conditions)) if progress else None
    try:
        results = evaluate(
            run.model, run.spec, config=run.config, targets=targets, episodes=episodes, seed=seed, device=torch_device,
            env_id=env_id, vectorization=vectorization, settings=settings, on_step=counter, records=records,
            progress=False,  # its own counter, named after the run, when asked for
        )
    finally:
        if counter is not None:
            counter.close()
    wall = time.perf_counter() - start
    report: dict[str, Any] = {
        "run_dir": str(run_dir),
        "step": run.step,
        "family": run.family,
        "model": family.describe(run.config),
        "dataset": run.spec.dataset,
        "env_id": env_id,
        "episodes": episodes,
        "seed": seed,
        "device": str(torch_device),
        "vectorization": vectorization,
        "wall_time_s": wall,
        "wall_time_per_episode_s": wall / (episodes * len(results)),
        "ref_min_score": run.spec.ref_min_score,
        "ref_max_score": run.spec.ref_max_score,
        "results": results,
    }
    report.update(family.eval_report(run.model, run.spec, run.config, settings))
    if video is not None:
        from seqrl.evaluation.video import record_episode

        record_episode(run.model, run.spec, video, config=run.config, target=results[0]["target"], seed=seed,
                       device=torch_device, env_id=env_id, settings=settings)
        report["video"] = str(video)
    if maze_plot:
        from seqrl.evaluation.plots import plot_maze_paths

        report["plot"] = str(plot_maze_paths(report, records[0].observations, MAZE_MAPS[env_id], plot))
    elif plot is not None:
        from seqrl.evaluation.plots import plot_eval_targets

        report["plot"] = str(plot_eval_targets(report, plot))
    if write:
        write_json_atomic(run_dir / EVAL_FILE, report)
        _refresh_model_card(run_dir)
    return report


def _refresh_model_card(run_dir: Path) -> None:
    """The run's README.md with the scores just written (a run directory's, not a bare file's)."""
    if (run_dir / "config.json").is_file():
        from seqrl.model_files import write_model_card

        write_model_card(run_dir)
