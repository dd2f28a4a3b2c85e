"""Evaluate a run directory (`seqrl eval`): load its checkpoint, roll it out under each of its
family's conditions (seqrl.evaluation.rollout), and write RUN_DIR/eval.json, with a video or a
plot if asked for. Family-specific settings (the TT's planner) are the family's: `seqrl eval`
takes a family's own flags (`Family.eval_flags`), and this module passes them through.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Sequence

import tyro

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


def results_table(report: dict[str, Any], title: str | None = None) -> Any:
    """A rich Table of an `evaluate_run` report: one row per target."""
    from rich.table import Table

    table = Table(title=title or f"{report['run_dir']} ({report.get('model', '?')}, step {report['step']}, "
                                 f"{report['episodes']} episodes, {report['env_id']})")
    goals = any("success_rate" in r for r in report["results"])
    for column in ("target", "return", "score", "length") + (("success", "steps to goal") if goals else ()):
        table.add_column(column, justify="right")
    for r in report["results"]:
        score = "-" if r["score_mean"] is None else f"{r['score_mean']:.1f} ± {r['score_std']:.1f}"
        row = ["-" if r["target"] is None else f"{r['target']:g}", f"{r['return_mean']:.1f} ± {r['return_std']:.1f}",
               score, f"{r['length_mean']:.0f} ± {r['length_std']:.0f}"]
        if goals:
            steps = r.get("steps_to_goal_mean")
            row += [f"{100 * r['success_rate']:.0f}%" if "success_rate" in r else "-",
                    "-" if steps is None else f"{steps:.0f} ± {r['steps_to_goal_std']:.0f}"]
        table.add_row(*row)
    return table


def eval_command(
    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")],
    episodes: int = 100,
    targets: tuple[float, ...] | None = None,
    json: bool = False,
    seed: int | None = None,
    device: str = "auto",
    env: str | None = None,
    vectorization: Literal["sync", "async"] = "sync",
    video: str | None = None,
    threads: int | None = None,
    progress: bool = True,
    plot: str | None = None,
    task: str | None = None,
) -> None:
    """Evaluate a trained run (any family) in its environment; writes RUN_DIR/eval.json.

    A Decision Transformer is evaluated for each target return; a Trajectory Transformer plans
    with beam search (slow: it shows progress). A family with settings of its own takes them as
    flags after the run directory: `seqrl eval TT_RUN_DIR --help` lists the TT's planner flags.

    Args:
        run_dir: Run directory (or checkpoint file) to evaluate.
        episodes: Episodes per target, run together in a vector env.
        targets: Target returns (default: the run's, e.g. CORL's 3600 1800 for hopper).
        json: Print the report as JSON instead of a table.
        seed: Seed of the evaluation episodes (episode i uses seed + i; default: the run's eval_seed).
        device: cpu, cuda, cuda:N, or auto.
        env: Gymnasium environment id (default: the one recorded in the dataset).
        vectorization: Step the environments in this process (sync) or in subprocesses (async).
        video: Also record one episode (first target, first seed) to this .gif or .mp4 file.
        threads: CPU threads for torch (default: torch's, one per core; see seqrl.threads).
        progress: Report env steps while evaluating.
        plot: Also draw the achieved against the target return to this PNG (a DT run; pass 6 or
            more --targets to see "one model, a distribution of policies"), or, for a run that
            plans or acts without a target in a maze, the episodes' paths (the TT paper's Figure 5).
        task: A multi-task run's task to evaluate (default: every task, each under its targets).
    """
    _run_eval(run_dir, episodes=episodes, targets=targets, json=json, seed=seed, device=device, env=env,
              vectorization=vectorization, video=video, threads=threads, progress=progress, plot=plot, task=task)


def _run_eval(run_dir: str, *, episodes: int, targets: tuple[float, ...] | None, json: bool, seed: int | None,
              device: str, env: str | None, vectorization: str, video: str | None, threads: int | None,
              progress: bool, plot: str | None, task: str | None, settings: dict[str, Any] | None = None) -> None:
    import json as json_module

    from seqrl.threads import torch_threads

    with torch_threads(threads):
        report = evaluate_run(
            run_dir, episodes=episodes, targets=targets, seed=seed, device=device, env_id=env,
            vectorization=vectorization, video=video, settings=settings, progress=progress and not json,
            plot=plot, task=task,
        )
    if json:
        print(json_module.dumps(report, indent=2))
        return
    from seqrl.console import make_console

    console = make_console()
    for one in (report["tasks"].values() if "tasks" in report else [report]):
        console.print(results_table(one))
    console.print(f"wrote {Path(run_dir) / EVAL_FILE}" + (f" and {video}" if video else "")
                  + (f" and {plot}" if plot else ""))


def family_eval_command(flags_class: type) -> Callable[..., None]:
    """`eval_command` with a family's own flags (`Family.eval_flags`, e.g. the TT's planner) added:
    what `seqrl eval RUN_DIR ...` runs for a run of that family."""
    generic = inspect.signature(eval_command)
    hints = typing.get_type_hints(eval_command, include_extras=True)
    params = [p.replace(annotation=hints[p.name]) for p in generic.parameters.values()]
    params.append(inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY, default=flags_class(),
                                    annotation=tyro.conf.OmitArgPrefixes[flags_class]))
    signature = generic.replace(parameters=params)

    def command(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        flags = values.pop("settings")
        _run_eval(**values, settings=flags.overrides())

    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    command.__doc__ = (eval_command.__doc__ or "").rstrip() + (
        f"\n        settings: {(flags_class.__doc__ or '').strip().splitlines()[0]}\n")
    return command
