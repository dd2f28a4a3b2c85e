"""Model families: what the one training loop, checkpoints, evaluation, sweeps and reports
look up by a run's family tag, instead of branching on it.

A family is a small object with these jobs (see `Family`):

1. fit its artefacts from the data (the DT's action tokenizer, the TT's discretizer);
2. build the model (an `nn.Module` with `loss_terms(batch)` and `param_groups(weight_decay)`);
3. build a sampler of training batches;
4. build a policy for evaluation (the DT's return-to-go bookkeeping, the TT's planner);
5. say which conditions to evaluate under (DT: target returns; TT: none).

Families register themselves in `FAMILIES` when `seqrl.families` is imported. A run written
before families existed has no tag and is a Decision Transformer run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from seqrl.errors import ConfigError

DEFAULT_FAMILY = "dt"  # the family of runs written before checkpoints carried a tag


class Policy(Protocol):
    """What the rollout loop drives: one object acting for `n` episodes run side by side.

    Rows are sub-environment indices; the loop passes only the live ones.
    """

    def reset(self, n: int, seed: int) -> None:
        """Start `n` episodes (sampling draws from a generator seeded with `seed`)."""

    def act(self, rows: np.ndarray, observations: np.ndarray, timesteps: np.ndarray) -> np.ndarray:
        """Actions (len(rows), act_dim) for raw observations (len(rows), obs_dim) at `timesteps`
        (for a Discrete space: (len(rows), 1) action indices, integers or whole floats)."""

    def observe(self, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """The actions the environments took (clipped into a Box; for a Discrete space the
        (len(rows), 1) int64 indices) and the rewards they returned."""


@dataclass
class PolicyExport:
    """What a family hands `seqrl export` (seqrl.export): its policy's step as a module to trace,
    and the files that make it usable without seqrl.

    `module(*example_inputs)` returns the action (B, act_dim) for a batch of B episodes; every
    input and the output have the batch as their first axis (the one dynamic axis of the exported
    graph). `runner` is the source of a standalone `runner.py` (numpy and onnxruntime or torch,
    never seqrl) that keeps what the graph does not (context windows, returns-to-go) and reads
    `manifest.json`, which holds `manifest`; `readme` is the family's part of the README.
    """

    module: Any  # torch.nn.Module in eval mode
    example_inputs: tuple  # tensors, batch first
    input_names: tuple[str, ...]
    manifest: dict[str, Any]  # JSON-able: sizes, normalisation, targets... (the runner's settings)
    runner: str  # source of runner.py
    readme: str  # Markdown: how this family's exported policy is driven
    output_names: tuple[str, ...] = ("action",)
    notes: list[str] = field(default_factory=list)  # said on the terminal and in the README (e.g. a decode override)


class Family:
    """The interface every family implements (the methods raise until a family overrides them)."""

    tag: str = ""
    config_class: type = object
    model_names: tuple[str, ...] = ()  # the `model` values of this family's configs (sweep specs' `models`)
    artefacts_key: str = "artefacts"  # where the checkpoint stores the fitted artefacts
    predicts_states: bool = False  # whether `open_loop` is implemented (seqrl predict)
    exports: tuple[str, ...] = ()  # the formats `export_policy` writes (seqrl export): "onnx", "torchscript"

    def resolve(self, cfg: Any) -> Any:
        """`cfg` with the dataset's presets filled in (what the run directory records)."""
        return cfg

    def load_data(self, cfg: Any) -> Any:
        """The training data `cfg` names (one dataset; a multi-task family loads several)."""
        from seqrl.data.sources import load_dataset

        return load_dataset(cfg.dataset)

    def settle(self, cfg: Any, dataset: Any) -> Any:
        """`cfg` as a new run's training data settles it, before anything is built or written (the
        DT's head on Discrete actions); a ConfigError for an option the data gives no meaning, or
        data this family cannot model (e.g. an action space it does not take). Default: unchanged."""
        return cfg

    def make_spec(self, cfg: Any, dataset: Any) -> Any:
        raise NotImplementedError

    def spec_from_dict(self, values: dict[str, Any]) -> Any:
        """The spec a checkpoint stores (`spec.to_dict()`): a DataSpec unless a family says otherwise."""
        from seqrl.models.spec import DataSpec

        return DataSpec.from_dict(values)

    def fit_artefacts(self, cfg: Any, dataset: Any, spec: Any) -> Any:
        raise NotImplementedError

    def artefacts_to_payload(self, artefacts: Any) -> Any:
        raise NotImplementedError

    def artefacts_from_payload(self, state: Any) -> Any:
        raise NotImplementedError

    def build_model(self, cfg: Any, spec: Any, artefacts: Any) -> Any:
        raise NotImplementedError

    def build_sampler(self, cfg: Any, dataset: Any, spec: Any, artefacts: Any) -> Any:
        raise NotImplementedError

    def conditions(self, cfg: Any, spec: Any, requested: Sequence[float] | None = None) -> tuple:
        """What to evaluate under, one result row each (DT: target returns; TT: `(None,)`)."""
        raise NotImplementedError

    def make_policy(self, model: Any, spec: Any, cfg: Any, condition: Any, settings: Any = None,
                    device: Any = None) -> Policy:
        """The policy acting under `condition`; `settings` are this family's evaluation settings,
        as `eval_settings` returns them (None: the defaults)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ evaluation settings
    # A family may have settings of its own for evaluation (the TT's planner): flags of
    # `seqrl eval` (`eval_flags`, a dataclass parsed by tyro), a mapping in a sweep spec's
    # `eval: {settings: ...}`, a keyword of `evaluate(settings=...)`. The generic evaluation
    # passes them through untouched; only the family reads them.
    eval_flags: type | None = None
    """A frozen dataclass of this family's `seqrl eval` flags, with an `overrides()` method
    giving the mapping `eval_settings` takes (None: the family has none)."""

    def eval_settings(self, values: dict[str, Any] | None) -> dict[str, Any] | None:
        """`values` checked (a ConfigError names a bad one) and returned; None when empty."""
        if values:
            raise ConfigError(f"{', '.join(sorted(values))}: a {self.tag} run takes no evaluation settings "
                              "(they are another family's, e.g. the Trajectory Transformer's planner)")
        return None

    def eval_report(self, model: Any, spec: Any, cfg: Any, settings: Any) -> dict[str, Any]:
        """Entries this family adds to an evaluation report (eval.json), e.g. the settings used."""
        return {}

    def task_views(self, run: Any, task: str | None) -> list[tuple[str, Any, Any, Any]] | None:
        """A multi-task run's views, one plain run per task: (name, model, spec, config); None for
        a family whose runs have one task (`task` names one of them, or None for all)."""
        if task is not None:
            raise ConfigError(f"--task applies to multi-task runs; this is a {self.tag} run")
        return None

    # ------------------------------------------------------------------ other hooks with defaults
    def binned(self, cfg: Any) -> bool:
        """Whether the run's actions are quantized into bins (the report's bins plots apply)."""
        return False

    def preset_flags(self, name: str) -> list[str]:
        """`seqrl train --preset NAME`: the flags a named size stands for (none by default)."""
        raise ConfigError(f"--preset names a size of a family that has them (the Trajectory Transformer's); "
                          f"family {self.tag} has none")

    def finetune_plan(self, payload: dict[str, Any], **kwargs: Any) -> Any:
        """How `seqrl finetune` transfers a run of this family (seqrl.transfer); the default refuses."""
        raise ConfigError(f"seqrl finetune transfers Decision Transformer runs; this is a {self.tag} run")

    def export_policy(self, run: Any, decode: str | None = None) -> PolicyExport:
        """The run's policy as one traceable step plus a standalone runner (`seqrl export`);
        `run` is a `seqrl.loading.LoadedRun`, `decode` overrides a categorical head's decoding.
        The default refuses by name."""
        raise ConfigError(f"seqrl export: a {self.tag} run cannot be exported (family {self.tag} has no "
                          f"exported policy); the families that export are: {', '.join(exporting_families())}")

    def open_loop_oracle(self, artefacts: Any, dataset: Any, starts: np.ndarray, horizon: int) -> np.ndarray | None:
        """The error floor of this family's state predictions (the TT's discretization), or None."""
        return None

    def open_loop(self, model: Any, cfg: Any, artefacts: Any, dataset: Any, starts: np.ndarray, horizon: int,
                  actions: str = "dataset", context: int = 1) -> dict[str, np.ndarray]:
        """Open-loop state predictions from dataset indices `starts` (seqrl.analysis.prediction):
        {"states": (n, horizon, obs_dim), "log_density": (n, horizon), ...}."""
        raise ConfigError(f"a {self.tag} model does not predict states; `seqrl predict` takes TT and dynamics runs")

    def holdout_split(self, cfg: Any, data: Any) -> tuple[Any, Any]:
        """(training data, held-out data) for --holdout-fraction: episodes held out with the seed."""
        from seqrl.data.trajectories import TrajectoryDataset

        if not isinstance(data, TrajectoryDataset):
            raise ConfigError(f"--holdout-fraction holds out episodes of one dataset; a {self.tag} run's data "
                              f"({type(data).__name__}) has none to hold out")
        return data.split_episodes(cfg.holdout_fraction, cfg.seed)

    def window_steps(self, cfg: Any) -> int | None:
        """Environment steps one training window spans (None: not a windowed sequence model)."""
        return None

    def window_tokens(self, cfg: Any, model: Any) -> int | None:
        """Tokens the trunk attends over in one training window (None: no attention trunk)."""
        return None

    def describe(self, cfg: Any) -> str:
        """A short label of the model (table rows, run names)."""
        return getattr(cfg, "model", self.tag)


def refuse_images(dataset: Any, family: str, why: str) -> None:
    """A ConfigError naming `family` and `why` when `dataset` has image observations (the families
    that model every observation number, or normalise them, cannot take uint8 frames)."""
    if getattr(dataset, "image", False):
        raise ConfigError(f"{dataset.name} has image observations {dataset.observation_shape}: {family} {why}; "
                          "train on images with `seqrl train --family dt` or `--family bc` (a convolutional encoder)")


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.tag] = family
    return family


def _load_builtin() -> None:
    # Imported lazily (the families import models and data, which import this module's users);
    # importing a module twice is a dictionary lookup.
    from seqrl.families import bc, dynamics, lm, multitask, tt  # noqa: F401 (registers them)
    from seqrl.families.dt import family  # noqa: F401 (the DT's package imports nothing itself)


def get_family(tag: str | None) -> Family:
    """The family registered under `tag` (None: a run from before families, a DT)."""
    _load_builtin()
    tag = DEFAULT_FAMILY if tag is None else tag
    try:
        return FAMILIES[tag]
    except KeyError:
        raise ConfigError(f"unknown model family {tag!r}; known: {', '.join(sorted(FAMILIES))}") from None


def exporting_families() -> list[str]:
    """Tags of the families `seqrl export` takes (those declaring export formats)."""
    _load_builtin()
    return sorted(tag for tag, family in FAMILIES.items() if family.exports)


def family_of(cfg: Any) -> Family:
    """The family of a config: its tag is the one source of a run's family."""
    return get_family(cfg.family)


def family_of_model_name(model: str) -> Family:
    """The family that provides `model` (a DT action representation, or `tt`)."""
    _load_builtin()
    for family in FAMILIES.values():
        if model in family.model_names:
            return family
    names = [name for family in FAMILIES.values() for name in family.model_names]
    raise ConfigError(f"unknown model {model!r}; choose from {', '.join(names)}")


def config_from_dict(values: dict[str, Any]) -> Any:
    """A run's config from its config.json / checkpoint dict, of the family it names."""
    return get_family(values.get("family")).config_class.from_dict(values)
