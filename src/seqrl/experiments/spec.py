"""Sweep specs: a YAML (or Python) description that expands to a list of runs.

A spec names experiments; each expands to the cartesian product

    datasets x models x grid values x variants x finetune modes x seeds

of runs, every one a config of the model's family (`TrainConfig` for the DT's action
representations, `TTConfig` for `tt`): spec `defaults`, then the experiment's `options`, grid
values and variant overrides, applied in that order. A default that the run's family has no
field for is left out of that run (so one `defaults: {context_len: 10}` serves DT and TT
rows alike); an experiment's own options must all belong to its models' family. Example:

```yaml
name: demo
defaults: {steps: 2000, embed_dim: 64}      # every run (any TrainConfig field)
eval: {episodes: 5}                          # evaluation after training (and during, if eval_every); 0: none
                                             # a family's own settings (the TT's planner; `planner:` is the same key):
                                             #   eval: {episodes: 5, settings: {horizon: 5, beam_width: 16}}
experiments:
  main:
    datasets: [hopper-medium]
    models: [continuous, tokenized, tt]      # a DT action representation, or tt (Trajectory Transformer)
    seeds: 3                                 # or a list: [0, 1, 2]
    grid: {num_bins: [100, 1000]}            # cartesian product over option values
    variants:                                # labelled alternatives (e.g. ablations)
      - {name: no-offset, token_offsets: false}
  transfer:
    datasets: [walker2d-medium]
    models: [continuous, tokenized]
    seeds: 3
    finetune:                                # fine-tune from another run of the sweep
      from: "main/hopper-medium/{model}/s{seed}"
      train: [embeddings, all]
```

Run names are deterministic paths under the sweep's output root:
`<experiment>/<dataset>/<model>[+<label>]/s<seed>`, the label joining grid values
(`num_bins=100`), the variant's name and the fine-tuning mode (`ft-embeddings`). A finetune
`from` is a template filled with the run's own fields (`{dataset}`, `{model}`, `{seed}`,
`{label}`, any option name), then matched (shell-style wildcards allowed) against the sweep's
run names; it must match exactly one run, which the fine-tuning run then waits for.

A Python spec is a `.py` file defining `SWEEP` (the same mapping), or a function `sweep()` that
returns it, so specs can be computed (loops over budgets, shared lists).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import re
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from seqrl.errors import ConfigError
from seqrl.families import FAMILIES, family_of_model_name, get_family

FINETUNE_MODES = ("embeddings", "all")
# Set by the sweep itself; a spec may not override them.
RESERVED = ("dataset", "model", "seed", "run_dir", "resume")
TOP_LEVEL_KEYS = {"name", "output", "defaults", "eval", "experiments"}
EXPERIMENT_KEYS = {"datasets", "dataset", "models", "seeds", "options", "grid", "variants", "finetune", "eval"}
DEFAULT_EVAL_EPISODES = 10
# What a sweep run changes in TrainConfig's defaults: quiet, always resumable.
SWEEP_FIXED = {"progress": False}


@dataclass(frozen=True)
class Finetune:
    """Fine-tune from `source` (a run name of the same sweep), training `train` parameters."""

    source: str
    train: str  # "embeddings" (only the embedding layers) or "all"
    rebuild: tuple[str, ...] | None = None  # branches built fresh (seqrl.transfer); None: finetune's default


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: what to train, and where it sits in the sweep's tables."""

    name: str  # relative path under the output root; also the run's identity
    experiment: str
    dataset: str
    model: str
    seed: int
    label: str  # the options that tell this group apart from others of its dataset and model
    options: dict[str, Any]  # overrides from the experiment (options, grid, variant), labelled or not
    overrides: dict[str, Any]  # every TrainConfig value the sweep sets (defaults + options)
    eval_episodes: int
    finetune: Finetune | None = None
    eval_settings: dict[str, Any] | None = None  # the family's own evaluation settings (a TT run's planner)
    after: tuple[str, ...] = ()  # runs of the sweep this one needs finished first (an `init: lm:@RUN` source)

    @property
    def group(self) -> str:
        """The run's name without its seed: runs of one group are averaged in reports."""
        return self.name.rsplit("/", 1)[0]

    @property
    def depends_on(self) -> tuple[str, ...]:
        return ((self.finetune.source,) if self.finetune else ()) + tuple(self.after)

    @property
    def steps(self) -> int:
        config_class = family_of_model_name(self.model).config_class
        return int(self.overrides.get("steps", config_class.__dataclass_fields__["steps"].default))

    def config(self, output_root: Path | str) -> Any:
        """The run's config (of its model's family), its run directory under `output_root`, resumable."""
        family = family_of_model_name(self.model)
        overrides = dict(self.overrides)
        init = overrides.get("init")
        if isinstance(init, str) and ":@" in init:  # another run of this sweep: its directory under the output root
            kind, name = init.split(":@", 1)
            overrides["init"] = f"{kind}:{Path(output_root) / name}"
        # from_options, not from_dict: a field the spec leaves out takes today's default, not the
        # value a stored config of an older seqrl implies (a TT's values would be left visible).
        return family.config_class.from_options({
            **overrides, "dataset": self.dataset, "model": self.model, "seed": self.seed,
            "family": family.tag, "run_dir": str(Path(output_root) / self.name), "resume": True,
        })

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "RunSpec":
        values = dict(values)
        if values.get("finetune") is not None:
            ft = dict(values["finetune"])
            if ft.get("rebuild") is not None:
                ft["rebuild"] = tuple(ft["rebuild"])
            values["finetune"] = Finetune(**ft)
        values["after"] = tuple(values.get("after", ()))
        return cls(**values)


@dataclass
class Sweep:
    """An expanded spec: runs in dependency order (every run after the run it fine-tunes from)."""

    name: str
    runs: list[RunSpec]
    output: Path | None = None  # the spec's own output root, if it names one
    source: str | None = None  # the file it came from
    by_name: dict[str, RunSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {run.name: run for run in self.runs}

    def select(self, patterns: Iterable[str]) -> "Sweep":
        """The runs matching any of the shell-style `patterns`, plus the runs they depend on."""
        patterns = list(patterns)
        if not patterns:
            return self
        wanted: set[str] = set()
        stack = [r.name for r in self.runs if any(fnmatch.fnmatchcase(r.name, p) for p in patterns)]
        if not stack:
            raise ConfigError(f"no run of sweep {self.name!r} matches {', '.join(patterns)}")
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.by_name[name].depends_on)
        return Sweep(self.name, [r for r in self.runs if r.name in wanted], self.output, self.source)


# ------------------------------------------------------------------------------- loading
def load_spec(path: Path | str) -> Sweep:
    """Read a `.yaml`/`.yml` or `.py` spec file and expand it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep spec {path} does not exist")
    if path.suffix == ".py":
        namespace = runpy.run_path(str(path))
        if "SWEEP" in namespace:
            data = namespace["SWEEP"]
        elif callable(namespace.get("sweep")):
            data = namespace["sweep"]()
        else:
            raise ConfigError(f"{path}: a Python sweep spec must define SWEEP or a function sweep()")
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    else:
        raise ConfigError(f"{path}: a sweep spec is a .yaml, .yml or .py file")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a sweep spec is a mapping with 'experiments', got {type(data).__name__}")
    data = dict(data)
    data.setdefault("name", path.stem)
    sweep = expand(data)
    sweep.source = str(path)
    return sweep


def expand(spec: Mapping[str, Any]) -> Sweep:
    """Expand a spec mapping (see the module docstring) into a Sweep; every error is a ConfigError."""
    unknown = set(spec) - TOP_LEVEL_KEYS
    if unknown:
        raise ConfigError(f"unknown sweep keys: {', '.join(sorted(unknown))} (known: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    name = str(spec.get("name", "sweep"))
    defaults = _overrides(spec.get("defaults") or {}, "defaults")
    eval_episodes = _eval_episodes(spec.get("eval"), DEFAULT_EVAL_EPISODES, "eval")
    eval_settings = _eval_settings(spec.get("eval"), None, "eval")
    experiments = spec.get("experiments")
    if not isinstance(experiments, Mapping) or not experiments:
        raise ConfigError("a sweep spec needs 'experiments': a mapping of experiment name to settings")

    runs: list[RunSpec] = []
    for exp_name, exp in experiments.items():
        _check_name(str(exp_name), "experiment name")
        runs.extend(_expand_experiment(str(exp_name), exp or {}, defaults, eval_episodes, eval_settings))
    seen: dict[str, RunSpec] = {}
    for run in runs:
        if run.name in seen:
            raise ConfigError(
                f"two runs are both named {run.name!r}; give them different labels (variants' names) "
                "or put them in separate experiments"
            )
        seen[run.name] = run
    runs = _resolve_sources(runs)
    output = Path(spec["output"]) if spec.get("output") else None
    return Sweep(name, _dependency_order(runs), output)


def _expand_experiment(
    name: str, exp: Mapping[str, Any], defaults: dict[str, Any], eval_episodes: int,
    eval_settings: dict[str, Any] | None = None,
) -> list[RunSpec]:
    where = f"experiment {name!r}"
    if not isinstance(exp, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(exp).__name__}")
    unknown = set(exp) - EXPERIMENT_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(EXPERIMENT_KEYS))})")
    datasets = _as_list(exp.get("datasets", exp.get("dataset")), f"{where}: datasets")
    if not datasets:
        raise ConfigError(f"{where}: needs 'datasets'")
    models = _as_list(exp.get("models", ["continuous"]), f"{where}: models")
    for model in models:
        try:
            family_of_model_name(str(model))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    seeds = _seeds(exp.get("seeds", [0]), where)
    options = _overrides(exp.get("options") or {}, f"{where}: options")
    grid = _grid(exp.get("grid") or {}, where)
    variants = _variants(exp.get("variants"), where)
    own_settings = _eval_settings(exp.get("eval"), None, f"{where}: eval")  # this experiment's, checked per family below
    settings = {**(eval_settings or {}), **(own_settings or {})} or None
    episodes = _eval_episodes(exp.get("eval"), eval_episodes, f"{where}: eval")
    finetune = exp.get("finetune")
    modes: list[str | None] = [None]
    source_template = None
    rebuild: tuple[str, ...] | None = None
    if finetune is not None:
        if not isinstance(finetune, Mapping) or "from" not in finetune:
            raise ConfigError(f"{where}: finetune needs 'from' (a run name template) and 'train' (embeddings|all)")
        source_template = str(finetune["from"])
        modes = _as_list(finetune.get("train", "all"), f"{where}: finetune.train")
        for mode in modes:
            if mode not in FINETUNE_MODES:
                raise ConfigError(f"{where}: finetune.train must be one of {', '.join(FINETUNE_MODES)}, got {mode!r}")
        unknown_ft = set(finetune) - {"from", "train", "rebuild"}
        if unknown_ft:
            raise ConfigError(f"{where}: unknown finetune keys {', '.join(sorted(unknown_ft))} (known: from, train, rebuild)")
        if finetune.get("rebuild") is not None:
            from seqrl.families.dt.transfer import check_rebuild

            try:
                rebuild = check_rebuild(_as_list(finetune["rebuild"], f"{where}: finetune.rebuild"))
            except ConfigError as exc:
                raise ConfigError(f"{where}: finetune.{str(exc).lstrip('-')}") from None

    runs = []
    grid_keys = list(grid)
    for dataset, model, values, (variant_name, variant), mode, seed in itertools.product(
        datasets, models, itertools.product(*grid.values()), variants, modes, seeds
    ):
        point = dict(zip(grid_keys, values))
        run_options = {**options, **point, **variant}
        label_parts = [f"{k}={format_value(v)}" for k, v in point.items()]
        if variant_name:
            label_parts.append(variant_name)
        base_label = _safe(",".join(label_parts))  # what `{label}` in a finetune template means
        ft_parts = ([f"ft-{mode}"] if mode else []) + ([f"rebuild={'-'.join(rebuild)}"] if mode and rebuild else [])
        label = _safe(",".join(label_parts + ft_parts))
        family_fields = {f.name for f in dataclasses.fields(family_of_model_name(str(model)).config_class)}
        overrides = {**SWEEP_FIXED, **{k: v for k, v in defaults.items() if k in family_fields}, **run_options}
        if episodes and "eval_episodes" not in overrides:
            overrides["eval_episodes"] = episodes  # one knob for the final and the in-training evaluations
        run_name = f"{name}/{_safe(str(dataset))}/{model}" + (f"+{label}" if label else "") + f"/s{seed}"
        fields = {"experiment": name, "dataset": dataset, "model": model, "seed": seed, "label": base_label, **run_options}
        run = RunSpec(
            name=run_name, experiment=name, dataset=str(dataset), model=str(model), seed=seed, label=label,
            options=run_options, overrides=overrides, eval_episodes=episodes,
            eval_settings=_run_settings(family_of_model_name(str(model)), settings, own_settings, where),
            finetune=Finetune(_fill(source_template, fields, where), mode, rebuild) if mode else None,
        )
        try:
            run.config("runs")  # every value checked now, not hours into the sweep
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{where}: run {run_name}: {exc}") from None
        runs.append(run)
    return runs


def _resolve_sources(runs: list[RunSpec]) -> list[RunSpec]:
    """Replace each finetune's `from` pattern with the one run name it matches."""
    names = [r.name for r in runs]
    resolved = []
    for run in runs:
        if run.finetune is not None:
            matches = [n for n in names if fnmatch.fnmatchcase(n, run.finetune.source)]
            if len(matches) != 1:
                found = f"matches {len(matches)}: {', '.join(matches[:5])}" if matches else "matches no run"
                raise ConfigError(f"run {run.name}: finetune.from {run.finetune.source!r} {found}; it must match exactly one run")
            if matches[0] == run.name:
                raise ConfigError(f"run {run.name}: finetune.from matches the run itself")
            run = dataclasses.replace(run, finetune=dataclasses.replace(run.finetune, source=matches[0]))
        init = run.overrides.get("init")
        if isinstance(init, str) and ":@" in init:  # `init: lm:@pretrain/markov/lm/s0`: a run of this sweep
            kind, pattern = init.split(":@", 1)
            matches = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if len(matches) != 1:
                found = f"matches {len(matches)}: {', '.join(matches[:5])}" if matches else "matches no run"
                raise ConfigError(f"run {run.name}: init {init!r} {found}; it must match exactly one run of the sweep")
            overrides = {**run.overrides, "init": f"{kind}:@{matches[0]}"}
            options = {**run.options, "init": f"{kind}:@{matches[0]}"} if "init" in run.options else run.options
            run = dataclasses.replace(run, overrides=overrides, options=options, after=(matches[0],))
        resolved.append(run)
    return resolved


def _dependency_order(runs: list[RunSpec]) -> list[RunSpec]:
    """Runs in spec order, except that a run never comes before the run it depends on."""
    by_name = {r.name: r for r in runs}
    ordered: list[RunSpec] = []
    state: dict[str, str] = {}

    def visit(run: RunSpec, chain: tuple[str, ...]) -> None:
        if state.get(run.name) == "done":
            return
        if state.get(run.name) == "visiting":
            raise ConfigError(f"finetune dependencies form a cycle: {' -> '.join(chain + (run.name,))}")
        state[run.name] = "visiting"
        for dep in run.depends_on:
            visit(by_name[dep], chain + (run.name,))
        state[run.name] = "done"
        ordered.append(run)

    for run in runs:
        visit(run, ())
    return ordered


# ------------------------------------------------------------------------------- helpers
def _all_fields() -> set[str]:
    get_family(None)  # loads the built-in families
    return {f.name for family in FAMILIES.values() for f in dataclasses.fields(family.config_class)}


def _overrides(values: Any, where: str) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of TrainConfig fields, got {type(values).__name__}")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    reserved = set(values) & set(RESERVED)
    if reserved:
        raise ConfigError(f"{where}: {', '.join(sorted(reserved))} are set by the sweep (use datasets/models/seeds)")
    unknown = set(values) - _all_fields()
    if unknown:
        raise ConfigError(f"{where}: unknown config fields {', '.join(sorted(unknown))}")
    return values


def _grid(grid: Any, where: str) -> dict[str, list[Any]]:
    grid = _overrides(grid, f"{where}: grid")
    return {k: _as_list(v, f"{where}: grid.{k}") for k, v in grid.items()}


def _variants(variants: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if variants is None:
        return [("", {})]
    if not isinstance(variants, list) or not variants:
        raise ConfigError(f"{where}: variants must be a non-empty list of mappings with a 'name'")
    out = []
    for item in variants:
        if not isinstance(item, Mapping) or "name" not in item:
            raise ConfigError(f"{where}: each variant needs a 'name' (and TrainConfig overrides), got {item!r}")
        item = dict(item)
        label = str(item.pop("name"))
        if label:
            _check_name(label, f"{where}: variant name")
        out.append((label, _overrides(item, f"{where}: variant {label!r}")))
    return out


def _seeds(seeds: Any, where: str) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"{where}: seeds must be >= 1 (a count) or a list, got {seeds}")
        return list(range(seeds))
    values = _as_list(seeds, f"{where}: seeds")
    if not values or not all(isinstance(s, int) and not isinstance(s, bool) for s in values):
        raise ConfigError(f"{where}: seeds must be a count or a list of integers, got {seeds!r}")
    return values


def _eval_episodes(value: Any, default: int, where: str) -> int:
    if value is None:
        return default
    if value is False:
        return 0
    if isinstance(value, Mapping):
        unknown = set(value) - {"episodes", *SETTINGS_KEYS}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))} (eval takes 'episodes' and a "
                              "family's 'settings', e.g. a TT's planner; eval_seed and targets are config fields)")
        value = value.get("episodes", default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where}: episodes must be an integer >= 0, got {value!r}")
    return value


SETTINGS_KEYS = ("settings", "planner")  # `planner:` is what the TT's settings were first called


def _eval_settings(value: Any, default: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    """`eval: {settings: {...}}`: a family's own evaluation settings, as given (each run's family
    checks them: `_run_settings`)."""
    if not isinstance(value, Mapping):
        return default
    given = [k for k in SETTINGS_KEYS if value.get(k) is not None]
    if not given:
        return default
    if len(given) > 1:
        raise ConfigError(f"{where}: give the settings once, under 'settings' ('planner' is the same key)")
    settings = value[given[0]]
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where}: {given[0]} must be a mapping of settings, got {settings!r}")
    return {**(default or {}), **{str(k).replace("-", "_"): v for k, v in settings.items()}}


def _run_settings(family: Any, settings: dict[str, Any] | None, own: dict[str, Any] | None, where: str) -> Any:
    """A run's evaluation settings, checked by its family now. Settings given for the whole sweep
    apply to the families that have settings; an experiment's own must fit its models' family."""
    if family.eval_flags is None and not own:
        return None
    try:
        return family.eval_settings(settings)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{where}: eval: {exc}") from None


def _as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, int, float, bool)):
        return [value]
    raise ConfigError(f"{where}: expected a value or a list, got {type(value).__name__}")


def _fill(template: str, fields: dict[str, Any], where: str) -> str:
    try:
        return template.format(**{k: format_value(v) if not isinstance(v, int) or isinstance(v, bool) else v for k, v in fields.items()})
    except (KeyError, IndexError) as exc:
        raise ConfigError(f"{where}: finetune.from {template!r} names {exc}, which is not a field of the run "
                          f"(available: {', '.join(sorted(fields))})") from None


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value)
    return str(value)


_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def _safe(text: str) -> str:
    """A dataset name as one path component (`d4rl:hopper-medium-v2` -> `d4rl_hopper-medium-v2`)."""
    return _UNSAFE.sub("_", text)


def _check_name(text: str, what: str) -> None:
    if not text or _UNSAFE.search(text) or text.startswith("."):
        raise ConfigError(f"{what} {text!r} may hold only letters, digits and . _ = , + -")
