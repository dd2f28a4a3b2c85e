"""Multi-task pretraining: one spread Decision Transformer trained on several datasets at once.

The tokenized-action paper's stated goal is "a single training schema across tasks". Here:

- `--dataset hopper-medium+halfcheetah-medium+walker2d-medium` names the tasks (joined by `+`);
  `--model mt-tokenized-spread` or `mt-continuous-spread` (the DT's spread representations).
- The action codec must be environment-agnostic (`--spread-head shared --max-action-features
  M`, M >= every task's act_dim), so ONE action embedding and ONE action head serve every task.
- Per task: the state embedding (its input is the task's observation) and the task's buffers
  (action bounds, its tokenizer's tables; with `--binning uniform` over equal bounds the bin
  edges are the same for every task). Shared: the trunk, embed_ln, the return-to-go and
  timestep embeddings, the action embedding and the action head.
- The model is a `DecisionTransformer` per task whose shared modules and parameters are the
  same objects (`MultiTaskDT.tasks[name]`): each task's view is an ordinary DT, so evaluation,
  its policy and `seqrl finetune` use it unchanged.
- Batches: every step holds an equal share of each task's context windows (batch_size //
  n_tasks each, the remainder to the first tasks), and the loss is the mean of the per-task
  losses: each task weighs the same whatever its dataset's size, every step sees every task,
  and the per-task losses are logged as `loss/<task>`. (Windows of different tasks have
  different shapes, so each task's share runs through the trunk as its own sub-batch.)
- Evaluation is per task (`seqrl eval RUN_DIR`: every task, each under its own target returns;
  `--task NAME`: one). `eval_every` during training is not supported (one env per run).
- Transfer: `seqrl finetune --from MT_RUN --dataset UNSEEN --rebuild state` starts from the shared
  layers (the first task's view, identical for every task but its state embedding).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from seqrl.families.dt.config import DEFAULT_CONTEXT_LEN, DEFAULT_RTG_SCALE, TrainConfig, preset_for
from seqrl.errors import CheckpointError, ConfigError
from seqrl.families import Family, register
from seqrl.families.dt.family import DecisionTransformerFamily
from seqrl.families.dt.representations import REPRESENTATIONS

# The multi-task DT takes the DT's spread representations, named with an "mt-" prefix so that a
# sweep's `models` entry names the family too.
MT_MODELS = tuple(f"mt-{name}" for name, rep in REPRESENTATIONS.items() if rep.spread)
SEPARATOR = "+"
SHARED_MODULES = ("trunk", "embed_ln", "embed_return", "embed_timestep")


def task_names(dataset: str) -> list[str]:
    return [t for t in dataset.split(SEPARATOR) if t]


def task_key(name: str) -> str:
    """A task's name as a ModuleDict key (no dots)."""
    return name.replace(".", "_")


@dataclass(frozen=True)
class MultiTaskConfig(TrainConfig):
    """Pretrain one spread Decision Transformer on several datasets at once (`--dataset a+b+c`)."""

    family: str = "mtdt"
    """Model family: mtdt, the multi-task Decision Transformer (these flags)."""
    model: Literal["mt-tokenized-spread", "mt-continuous-spread"] = "mt-tokenized-spread"
    """The shared spread representation: mt-tokenized-spread or mt-continuous-spread."""
    spread_head: Literal["per-feature", "shared"] = "shared"
    """One action head for every task's action tokens (required: the head is shared by the tasks)."""
    max_action_features: int = 6
    """Action vocabulary and feature embeddings for up to this many features (>= every task's act_dim)."""
    binning: Literal["quantile", "uniform"] = "uniform"
    """Uniform bins over the action bounds: the same edges for every feature of every task."""

    def __post_init__(self) -> None:
        if self.family != "mtdt":
            raise ConfigError(f"MultiTaskConfig is the multi-task DT's config (family mtdt), got family {self.family!r}")
        if self.model not in MT_MODELS:
            raise ConfigError(f"unknown model {self.model!r} for the mtdt family; choose from {', '.join(MT_MODELS)}")
        super().__post_init__()
        if len(task_names(self.dataset)) < 2:
            raise ConfigError(f"--dataset {self.dataset!r}: a multi-task run names 2 or more datasets joined by '+'")
        if len(set(task_names(self.dataset))) != len(task_names(self.dataset)):
            raise ConfigError(f"--dataset {self.dataset!r} names a task twice")
        if self.spread_head != "shared" or self.max_action_features < 1:
            raise ConfigError("--spread-head shared and --max-action-features M >= 1 are required: every task "
                              "shares one action embedding and head")
        if self.eval_every:
            raise ConfigError("--eval-every: a multi-task run is evaluated per task after training "
                              "(seqrl eval RUN_DIR), not during it")
        lm_flags = [flag for flag, on in (("--init", self.init != "scratch"), ("--freeze-trunk", self.freeze_trunk),
                                          ("--lora-rank", self.lora_rank), ("--align-weight", self.align_weight),
                                          ("--cotrain-weight", self.cotrain_weight),
                                          ("--trunk-learning-rate", self.trunk_learning_rate is not None)) if on]
        if lm_flags:
            raise ConfigError(f"{', '.join(lm_flags)}: language-model initialisation is not wired into the multi-task "
                              "DT yet; initialise a single-task DT, or fine-tune from one")

    @property
    def variant(self) -> str:
        return self.model.removeprefix("mt-")

    @property
    def tasks(self) -> list[str]:
        return task_names(self.dataset)

    def task_config(self, task: str) -> TrainConfig:
        """The plain DT config of one task's view (what its policy and a fine-tune read)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{**values, "family": "dt", "model": self.variant, "dataset": task})


# --------------------------------------------------------------------------- data and spec
@dataclass
class MultiTaskData:
    names: list[str]
    datasets: list[Any]  # TrajectoryDataset per task


@dataclass(frozen=True)
class MultiTaskSpec:
    """One DataSpec per task (its sizes, normalisation, rtg_scale, targets and references)."""

    tasks: tuple[Any, ...]

    @property
    def dataset(self) -> str:
        return SEPARATOR.join(s.dataset for s in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": [s.to_dict() for s in self.tasks]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "MultiTaskSpec":
        from seqrl.models.spec import DataSpec

        return cls(tuple(DataSpec.from_dict(v) for v in values["tasks"]))

    def check_compatible(self, data: MultiTaskData, what: str = "this checkpoint") -> None:
        if len(data.datasets) != len(self.tasks):
            raise CheckpointError(f"{what} was trained on {len(self.tasks)} tasks, got {len(data.datasets)}")
        for spec, dataset in zip(self.tasks, data.datasets):
            spec.check_compatible(dataset, what)



@dataclass
class MultiTaskBatch:
    tasks: dict[str, Any]  # task name -> that task's Batch

    def shard(self, rank: int, world: int) -> "MultiTaskBatch":
        """Process `rank`'s rows of every task's share (seqrl.distributed)."""
        return MultiTaskBatch({k: b.shard(rank, world) for k, b in self.tasks.items()})

    def to_torch(self, device: torch.device | str = "cpu") -> "MultiTaskBatch":
        return MultiTaskBatch({k: b.to_torch(device) for k, b in self.tasks.items()})


class MultiTaskSampler:
    """An equal share of every task's context windows in each batch (see the module docstring)."""

    def __init__(self, names: list[str], samplers: list[Any]) -> None:
        self.names, self.samplers = names, samplers

    def sample(self, batch_size: int, rng: np.random.Generator) -> MultiTaskBatch:
        n = len(self.samplers)
        sizes = [batch_size // n + (1 if i < batch_size % n else 0) for i in range(n)]
        return MultiTaskBatch({name: s.sample(max(size, 1), rng) for name, s, size in zip(self.names, self.samplers, sizes)})


# --------------------------------------------------------------------------- model
class MultiTaskDT(nn.Module):
    """A DecisionTransformer per task, sharing everything but the state embedding (and buffers)."""


    def __init__(self, cfg: MultiTaskConfig, spec: MultiTaskSpec, tokenizers: dict[str, Any]) -> None:
        super().__init__()
        from seqrl.data.tokenizer import TorchActionTokenizer
        from seqrl.families.dt.model import DecisionTransformer

        self.names = list(cfg.tasks)
        views = {}
        for task, task_spec in zip(cfg.tasks, spec.tasks):
            tok = tokenizers.get(task)
            views[task_key(task)] = DecisionTransformer(
                cfg.task_config(task), task_spec, TorchActionTokenizer(tok) if tok is not None else None)
        self.tasks = nn.ModuleDict(views)
        first = next(iter(self.tasks.values()))
        for view in list(self.tasks.values())[1:]:
            for name in SHARED_MODULES:
                setattr(view, name, getattr(first, name))
            view.codec.embedding = first.codec.embedding
            view.codec.head.weight = first.codec.head.weight
            view.codec.head.bias = first.codec.head.bias

    def task_model(self, name: str) -> Any:
        """One task's view: a plain DecisionTransformer (family dt) sharing this model's layers."""
        return self.tasks[task_key(name)]

    def loss_terms(self, batch: MultiTaskBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = {name: self.tasks[task_key(name)].loss(b) for name, b in batch.tasks.items()}
        return torch.stack(list(terms.values())).mean(), terms

    def param_groups(self, weight_decay: float) -> list[dict]:
        """The DT's decay / no-decay rule, each shared parameter once."""
        seen: set[int] = set()
        decay, no_decay = [], []
        for view in self.tasks.values():
            for group in view.param_groups(weight_decay):
                target = decay if group["weight_decay"] else no_decay
                for p in group["params"]:
                    if id(p) not in seen:
                        seen.add(id(p))
                        target.append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# --------------------------------------------------------------------------- family
class MultiTaskFamily(Family):
    tag = "mtdt"
    config_class = MultiTaskConfig
    model_names = MT_MODELS
    artefacts_key = "tokenizers"

    def resolve(self, cfg: MultiTaskConfig) -> MultiTaskConfig:
        # Return presets are per task (make_spec); the context is one for every task.
        return cfg if cfg.context_len is not None else dataclasses.replace(cfg, context_len=DEFAULT_CONTEXT_LEN)

    def load_data(self, cfg: MultiTaskConfig) -> MultiTaskData:
        from seqrl.data.sources import load_dataset

        return MultiTaskData(cfg.tasks, [load_dataset(t) for t in cfg.tasks])

    def make_spec(self, cfg: MultiTaskConfig, data: MultiTaskData) -> MultiTaskSpec:
        from seqrl.models.spec import DataSpec

        from seqrl.families import refuse_images

        for name, dataset in zip(data.names, data.datasets):
            refuse_images(dataset, "the multi-task DT", "gives each task a linear state embedding of its vector "
                          "observations")
            if dataset.discrete:
                raise ConfigError(f"{name} has Discrete({dataset.num_actions}) actions: the multi-task DT shares one "
                                  "spread codec over continuous action features; train a discrete task with "
                                  "`seqrl train --family dt`")
            if dataset.act_dim > cfg.max_action_features:
                raise ConfigError(f"--max-action-features {cfg.max_action_features} is below {name}'s "
                                  f"{dataset.act_dim} action features")
        # One timestep embedding for every task: sized for the longest episodes of any of them.
        longest = max(max(int(d.episode_lengths.max()), 1000) for d in data.datasets)
        specs = []
        for name, dataset in zip(data.names, data.datasets):
            preset = preset_for(name)
            rtg_scale = cfg.rtg_scale if cfg.rtg_scale is not None else preset.get("rtg_scale", DEFAULT_RTG_SCALE)
            targets = cfg.targets if cfg.targets is not None else preset.get("targets")
            specs.append(DataSpec.from_dataset(dataset, rtg_scale=rtg_scale, targets=targets, max_timestep=longest))
        return MultiTaskSpec(tuple(specs))

    def spec_from_dict(self, values: dict[str, Any]) -> MultiTaskSpec:
        return MultiTaskSpec.from_dict(values)

    def fit_artefacts(self, cfg: MultiTaskConfig, data: MultiTaskData, spec: MultiTaskSpec) -> dict[str, Any]:
        dt = DecisionTransformerFamily()
        return {name: dt.fit_artefacts(cfg.task_config(name), dataset, s)
                for name, dataset, s in zip(data.names, data.datasets, spec.tasks)}

    def artefacts_to_payload(self, artefacts: dict[str, Any]) -> Any:
        from seqrl.data.tokenizer import tokenizer_to_payload

        return {k: tokenizer_to_payload(v) for k, v in artefacts.items()}

    def artefacts_from_payload(self, state: Any) -> dict[str, Any]:
        from seqrl.data.tokenizer import tokenizer_from_payload

        return {k: tokenizer_from_payload(v) for k, v in (state or {}).items()}

    def build_model(self, cfg: MultiTaskConfig, spec: MultiTaskSpec, artefacts: dict[str, Any]) -> MultiTaskDT:
        return MultiTaskDT(cfg, spec, artefacts)

    def build_sampler(self, cfg: MultiTaskConfig, data: MultiTaskData, spec: MultiTaskSpec, artefacts: Any) -> Any:
        dt = DecisionTransformerFamily()
        samplers = [dt.build_sampler(cfg.task_config(name), dataset, s, None)
                    for name, dataset, s in zip(data.names, data.datasets, spec.tasks)]
        return MultiTaskSampler(list(cfg.tasks), samplers)

    def conditions(self, cfg: Any, spec: Any, requested: Sequence[float] | None = None) -> tuple:
        raise ConfigError("a multi-task run is evaluated one task at a time: seqrl eval RUN_DIR [--task NAME]")

    def make_policy(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError("a multi-task run is evaluated one task at a time: seqrl eval RUN_DIR [--task NAME]")

    def task_views(self, run: Any, task: str | None = None) -> list[tuple[str, Any, Any, TrainConfig]]:
        """(task, DT view, its DataSpec, its DT config) for every task of a loaded run, or just `task`."""
        pairs = list(zip(run.config.tasks, run.spec.tasks))
        if task is not None:
            pairs = [(n, s) for n, s in pairs if task in (n, s.dataset)]
            if not pairs:
                raise ConfigError(f"--task {task!r}: the run's tasks are {', '.join(run.config.tasks)}")
        return [(n, run.model.task_model(n), s, run.config.task_config(n)) for n, s in pairs]

    def describe(self, cfg: MultiTaskConfig) -> str:
        return cfg.model

    def finetune_plan(self, payload: dict[str, Any], **kwargs: Any) -> Any:
        """Fine-tuning starts from the shared layers: the first task's view, a plain DT run."""
        return DecisionTransformerFamily().finetune_plan(source_view_payload(payload), **kwargs)


register(MultiTaskFamily())


def source_view_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A multi-task checkpoint as the checkpoint of its first task's view (a plain DT run), for
    `seqrl finetune`: the shared layers are the same in every view; the state embedding is that task's."""
    cfg = MultiTaskConfig.from_dict(payload["config"])
    spec = MultiTaskSpec.from_dict(payload["spec"])
    first, name = spec.tasks[0], cfg.tasks[0]
    prefix = f"tasks.{task_key(name)}."
    model = {k[len(prefix):]: v for k, v in payload["model"].items() if k.startswith(prefix)}
    return {**payload, "family": "dt", "config": cfg.task_config(name).to_dict(), "spec": first.to_dict(),
            "model": model, "tokenizer": (payload.get("tokenizers") or {}).get(name),
            "multitask_source": cfg.dataset}
