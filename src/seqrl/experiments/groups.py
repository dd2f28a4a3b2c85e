"""Run directories gathered into groups: one group per experiment x dataset x model x options,
its runs one per seed (what `seqrl report`'s tables and plots are drawn from).

For sweep runs the group comes from the run's sweep.json (its experiment and label); for runs
trained by hand, from the config: the options are the fields that differ from the defaults
(training-only fields such as logging and devices aside).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqrl.config import RunConfig
from seqrl.data.minari_io import dataset_display_name
from seqrl.errors import ConfigError
from seqrl.experiments.runner import RUN_STATE_FILE
from seqrl.experiments.spec import format_value
from seqrl.families import config_from_dict, family_of
from seqrl.runs import CONFIG_FILE, METRICS_FILE, iter_run_dirs, read_jsonl


EVAL_FILE = "eval.json"
# Fields that say how a run was executed, not what was trained: never part of a group's options.
NOT_OPTIONS = {"dataset", "model", "seed", "run_dir", "resume", "progress", "device", "log_every", "checkpoint_every",
               "checkpoint_minutes",
               "tensorboard", "compile", "eval_every", "eval_episodes", "eval_seed", "eval_targets"}
CSV_COLUMNS = ("experiment", "dataset", "model", "options", "finetune_from", "target", "seeds", "score_mean",
               "score_std", "return_mean", "return_std", "step", "final_loss_mean", "final_loss_std", "seconds_mean")


@dataclass
class RunRecord:
    """What the report needs from one run directory."""

    run_dir: Path
    experiment: str
    dataset: str
    model: str
    label: str
    seed: int
    config: RunConfig  # of the run's family (TrainConfig for a DT, TTConfig for a TT)
    finetune: dict[str, str] | None  # {"source": run name or dir, "train": embeddings|all}
    eval: dict[str, Any] | None  # eval.json, or None if the run was not evaluated
    metrics: list[dict[str, Any]] = field(repr=False, default_factory=list)
    status: str = "done"  # a sweep run's sweep.json status; a hand-trained run's from its metrics
    seconds: float | None = None  # a finished sweep run's time to train and evaluate (its last invocation)

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.experiment, self.dataset, self.model, self.label)


@dataclass
class Group:
    """The seeds of one experiment x dataset x model x options."""

    experiment: str
    dataset: str
    model: str
    label: str
    runs: list[RunRecord]

    @property
    def name(self) -> str:
        return f"{self.model}+{self.label}" if self.label else self.model

    @property
    def config(self) -> RunConfig:
        return self.runs[0].config

    @property
    def finetune(self) -> dict[str, str] | None:
        return self.runs[0].finetune

    def targets(self) -> list[float]:
        seen: list[float] = []
        for run in self.runs:
            for result in (run.eval or {}).get("results", []):
                if result["target"] not in seen:
                    seen.append(result["target"])
        return seen

    def final_losses(self) -> np.ndarray:
        """Per-seed training loss at each run's last logged step (seeds without metrics left out).

        A run trained with the language-model objectives logs its action loss apart
        (`loss/action`) from the weighted alignment and co-training terms, whose sum with it (the
        alignment term is negative) is not comparable with other runs' losses: its action loss is
        taken instead."""
        values = []
        for run in self.runs:
            records = [m for m in run.metrics if m.get("kind") != "eval" and m.get("loss") is not None]
            if records:
                last = records[-1]
                auxiliary = "loss/align" in last or "loss/cotrain" in last
                values.append(float(last["loss/action"] if auxiliary and "loss/action" in last else last["loss"]))
        return np.asarray(values, np.float64)

    def scores(self, target: float, key: str = "score_mean") -> np.ndarray:
        """Per-seed values of `key` at `target` (seeds without it left out)."""
        values = []
        for run in self.runs:
            for result in (run.eval or {}).get("results", []):
                if result["target"] == target and result.get(key) is not None:
                    values.append(float(result[key]))
        return np.asarray(values, np.float64)


# ----------------------------------------------------------------------------- collecting
def load_record(run_dir: Path) -> RunRecord:
    config = config_from_dict(json.loads((run_dir / CONFIG_FILE).read_text()))
    state = _read_json(run_dir / RUN_STATE_FILE)
    evaluation, corrupt = None, None
    if (run_dir / EVAL_FILE).exists():
        evaluation = _read_json(run_dir / EVAL_FILE)
        if not isinstance(evaluation, dict):  # unreadable or not a report: said, never silently dropped
            evaluation, corrupt = None, "its eval.json is corrupt (seqrl eval RUN_DIR writes it again)"
    metrics = read_jsonl(run_dir / METRICS_FILE) if (run_dir / METRICS_FILE).exists() else []
    if state and "run" in state:  # a sweep run: its place in the sweep is recorded
        run = state["run"]
        return RunRecord(run_dir, run["experiment"], dataset_display_name(run["dataset"]), run["model"], run["label"],
                         int(run["seed"]),
                         config, run.get("finetune"), evaluation, metrics,
                         status=corrupt or str(state.get("status")), seconds=state.get("seconds"))
    return RunRecord(run_dir, "", dataset_display_name(config.dataset), config.model, _options_label(config), config.seed,
                     config,
                     None, evaluation, metrics, status=corrupt or _hand_trained_status(config, metrics))


def _hand_trained_status(config: RunConfig, metrics: list[dict[str, Any]]) -> str:
    """A run trained outside a sweep is done when its metrics reach its config's steps; a run
    killed before that (a stopped `seqrl train`) says where it stopped."""
    logged = [int(m["step"]) for m in metrics if isinstance(m.get("step"), (int, float))]
    last = max(logged, default=0)
    return "done" if last >= config.steps else f"stopped at step {last} of {config.steps}"


def collect(root: Path | str, include_unfinished: bool = False,
            left_out: list[RunRecord] | None = None) -> list[Group]:
    """Every finished run under `root`, grouped; groups sorted by experiment, dataset, model, options.

    Sweep runs whose sweep.json does not say `done` are left out (appended to `left_out` when
    given) unless `include_unfinished`.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory")
    groups: dict[tuple, list[RunRecord]] = {}
    for run_dir in iter_run_dirs(root):
        try:
            record = load_record(run_dir)
        except (OSError, json.JSONDecodeError, ConfigError, TypeError) as exc:
            print(f"seqrl report: skipping {run_dir}: {exc}")
            continue
        if not include_unfinished and not record.finished:
            if left_out is not None:
                left_out.append(record)
            continue
        for one in _per_task(record):
            groups.setdefault(one.key, []).append(one)
    return [Group(*key, _one_run_per_seed(runs)) for key, runs in sorted(groups.items())]


def _one_run_per_seed(runs: list[RunRecord]) -> list[RunRecord]:
    """A group's runs by seed, one per seed: two copies of a seed's run (a run directory copied,
    or trained twice) would count as two seeds. The one trained furthest (then evaluated, then
    the first by path) is kept, and the others are named."""
    by_seed: dict[int, list[RunRecord]] = {}
    for run in runs:
        by_seed.setdefault(run.seed, []).append(run)
    kept = []
    for seed, copies in sorted(by_seed.items()):
        copies.sort(key=lambda r: (-_last_step(r), r.eval is None, str(r.run_dir)))
        kept.append(copies[0])
        if len(copies) > 1:
            others = ", ".join(str(r.run_dir) for r in copies[1:])
            print(f"seqrl report: seed {seed} of {copies[0].key} has {len(copies)} runs; counting {copies[0].run_dir} "
                  f"once and leaving out {others}")
    return kept


def _last_step(run: RunRecord) -> int:
    steps = [int(m["step"]) for m in run.metrics if isinstance(m.get("step"), (int, float))]
    return max(steps, default=int((run.eval or {}).get("step") or 0))


def _per_task(record: RunRecord) -> list[RunRecord]:
    """A multi-task run (its eval.json has "tasks") as one record per task: its rows are that
    task's, under the dataset `task@all-tasks` (the shared metrics and config kept)."""
    tasks = (record.eval or {}).get("tasks")
    if not tasks:
        return [record]
    return [dataclasses.replace(record, dataset=f"{name}@{record.dataset}", eval=report)
            for name, report in tasks.items()]


def _options_label(config: RunConfig) -> str:
    """The options of a hand-trained run: fields that differ from a default config of its family."""
    family = family_of(config)
    identity = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name in ("dataset", "model")}
    default = family.resolve(type(config)(**identity))
    # Fields a family derives from --steps (the alignment anneal) are options only when they
    # differ from what the run's own steps give them.
    same_steps = family.resolve(type(config)(**identity, steps=config.steps))
    config = family.resolve(config)  # a config.json written by train has them resolved already
    parts = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        derived = f.name != "steps" and value == getattr(same_steps, f.name)
        if f.name not in NOT_OPTIONS and value != getattr(default, f.name) and not derived:
            parts.append(f"{f.name}={format_value(value)}")
    return ",".join(sorted(parts))  # by name: labels do not depend on the order of the config's fields


def format_target(target: float | None) -> str:
    """A result's condition in tables: the target return, or `-` for a model that plans without one (TT)."""
    return "-" if target is None else f"{target:g}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# ----------------------------------------------------------------------------- tables
def finetune_sources(group: Group) -> str:
    """Where a group's runs were fine-tuned from: one source, or seed-wise ones as `.../s{seed}`."""
    sources = sorted({(r.finetune or {}).get("source", "") for r in group.runs} - {""})
    if len(sources) <= 1:
        return sources[0] if sources else ""
    generic = {re.sub(r"/s\d+$", "/s{seed}", source) for source in sources}
    return generic.pop() if len(generic) == 1 else ", ".join(sources)
