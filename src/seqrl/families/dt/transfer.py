"""What `seqrl finetune` does with a Decision Transformer run: which layers travel to the new
task, which are rebuilt, which are frozen (the command itself is seqrl.transfer).

Which layers travel (Annett & Andersen's transfer setting):

- Transferred from the source run: the transformer trunk (`model.trunk`: every causal block and
  the final LayerNorm) and `model.embed_ln`, the LayerNorm every token passes through on its
  way into the trunk. `embed_ln` counts as trunk: it has no task-shaped weights, and its gain
  and bias are part of the input distribution the trunk was trained on.
- Built fresh for the new task by default: the state embedding (its input size is the new
  obs_dim), the whole action codec (action embedding, tokenizer and action head, refitted on
  the new dataset), the return-to-go embedding (returns mean different things across tasks,
  and the new task has its own rtg_scale) and the timestep embedding (its size follows the new
  task's episode length).
- `rebuild` (`--rebuild`) names the modality branches built fresh, as the tokenized-action
  authors' downstream options do; the others are kept from the source too:
    state     `embed_state`
    return    `embed_return`
    timestep  `embed_timestep`
    action    the action codec: its parameters (embedding and head) and the source's action
              tokenizer. Its buffers (action bounds, bin tables) are the new task's, built from
              the kept tokenizer. The paper's setting is `--rebuild state`: with an
              environment-agnostic spread codec (`--spread-head shared --max-action-features M`)
              the action layers' shapes are the same for every task up to M action features.
  A kept branch must fit the new model shape for shape, or the fine-tune stops with an error
  naming the branch and the shapes. The source tokenizer fits a task with the same act_dim, or
  any act_dim when all its features share one set of bin edges (`--binning uniform` over equal
  action bounds): each new feature then gets those edges and values.

`train="embeddings"` freezes everything kept (requires_grad=False: not in the optimizer, so it
stays bit-identical) and trains only the rebuilt branches; `train="all"` trains everything,
starting from the transferred weights.

`finetune_plan` returns the new run's config and the hooks the one training loop calls
(`prepare_model` copies the kept weights in; `make_artefacts` keeps the source's tokenizer).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch

from seqrl.errors import CheckpointError, ConfigError
from seqrl.families.dt.representations import representation
from seqrl.families.dt.config import TrainConfig
from seqrl.families.dt.model import DecisionTransformer
from seqrl.runs import METADATA_FILE

TrainMode = Literal["embeddings", "all"]
Branch = Literal["state", "return", "timestep", "action"]
TRANSFERRED = ("embed_ln", "trunk")  # module names always copied from the source model
BRANCHES: dict[str, str] = {"state": "embed_state", "return": "embed_return", "timestep": "embed_timestep",
                            "action": "codec"}  # --rebuild name -> module
ALL_BRANCHES = tuple(BRANCHES)


def transferred_modules(model: DecisionTransformer) -> list[torch.nn.Module]:
    return [getattr(model, name) for name in TRANSFERRED]


def check_rebuild(rebuild: Any) -> tuple[str, ...]:
    """`--rebuild` as a tuple of branch names in canonical order; a ConfigError names bad ones."""
    names = (rebuild,) if isinstance(rebuild, str) else tuple(rebuild)
    unknown = [n for n in names if n not in BRANCHES]
    if unknown:
        raise ConfigError(f"--rebuild: unknown branch {', '.join(map(repr, unknown))}; choose from {', '.join(BRANCHES)}")
    if "state" not in names:
        raise ConfigError("--rebuild must include state: the state embedding's input is the task's observation")
    return tuple(n for n in BRANCHES if n in names)


def keep_tokenizer(source: Any, act_dim: int, task: str) -> Any:
    """The source's ActionTokenizer for a task with `act_dim` action features, or a CheckpointError.

    Same act_dim: the source tokenizer itself. Another act_dim: only when every source feature has
    the same bin edges and values (one quantizer for every feature; `--binning uniform` over equal
    bounds gives equal edges, and equal values when features are interchangeable), repeated for
    each new feature; otherwise the source's bins are per feature and mean nothing for the new ones.
    """
    from seqrl.data.tokenizer import ActionTokenizer

    if source is None or source.action_dim == act_dim:
        return source
    same_edges = all(np.array_equal(e, source.edges[0]) for e in source.edges)
    if not same_edges:
        raise CheckpointError(
            f"--rebuild: the source's action tokenizer has per-feature bins ({source.strategy} edges of each of "
            f"its {source.action_dim} features) and cannot tokenize {task}'s {act_dim} action features; pretrain "
            f"with --binning uniform (one set of edges for every feature), or add action to --rebuild")
    # Per-bin values differ between features (the mean training action per bin): use their mean.
    values = np.mean(np.stack(source.values), axis=0).astype(np.float32)
    edges = source.edges[0]
    values = np.clip(values, edges[:-1], np.concatenate([np.nextafter(edges[1:-1], -np.inf), edges[-1:]]))
    return ActionTokenizer([edges] * act_dim, [values] * act_dim, num_bins=source.num_bins, strategy=source.strategy,
                           shared_range=source.shared_range)


def _source_state(payload: dict[str, Any], modules: tuple[str, ...] = TRANSFERRED) -> dict[str, dict[str, torch.Tensor]]:
    """The source checkpoint's weights of each transferred module."""
    states: dict[str, dict[str, torch.Tensor]] = {}
    for name in modules:
        prefix = name + "."
        states[name] = {k[len(prefix):]: v for k, v in payload["model"].items() if k.startswith(prefix)}
        if not states[name]:
            raise CheckpointError(f"the source checkpoint has no '{name}' weights; is it a Decision Transformer run?")
    return states


def _load_kept_branch(branch: str, module: torch.nn.Module, state: dict[str, torch.Tensor], task: str) -> None:
    """Copy a kept branch's parameters from the source, shape for shape (buffers stay the new task's)."""
    params = dict(module.named_parameters())
    missing = sorted(set(params) - set(state))
    if missing:
        raise CheckpointError(f"--rebuild: the source's {branch} branch has no {', '.join(missing)}; add {branch} to --rebuild")
    wrong = [f"{BRANCHES[branch]}.{k} is {tuple(state[k].shape)} in the source but {tuple(p.shape)} for {task}"
             for k, p in params.items() if state[k].shape != p.shape]
    if wrong:
        hint = (" (an environment-agnostic spread codec, --spread-head shared --max-action-features M, keeps its "
                "shapes across tasks)" if branch == "action" else "")
        raise CheckpointError(f"--rebuild: the source's {branch} branch does not fit the new task: {'; '.join(wrong)}; "
                              f"add {branch} to --rebuild{hint}")
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(state[k])


@dataclass
class FinetunePlan:
    """A fine-tuning run, ready for the training loop: its config and hooks, and the record
    written to its metadata.json under "finetune"."""

    config: TrainConfig
    prepare_model: Callable[[torch.nn.Module], None]
    make_artefacts: Callable[..., Any] | None
    record: dict[str, Any]


def finetune_plan(payload: dict[str, Any], *, source: Path, dataset: str, train_mode: str, steps: int,
                  run_dir: Path | None, resume: bool, rebuild: Any, overrides: dict[str, Any],
                  default_run_dir: Callable[[int], Path]) -> FinetunePlan:
    """The fine-tune of the DT run whose checkpoint is `payload` (from `source`) on `dataset`:
    the module docstring says what is kept, rebuilt and frozen."""
    rebuild = check_rebuild(rebuild)
    kept = tuple(b for b in BRANCHES if b not in rebuild)
    source_cfg = TrainConfig.from_dict(payload["config"])
    states = _source_state(payload)
    kept_states = _source_state(payload, tuple(BRANCHES[b] for b in kept))
    if "action" in kept:
        for name in ("model", "head", "num_bins", "binning", "token_offsets", "action_index_embedding", "pool",
                     "spread_head", "max_action_features"):
            if name in overrides and overrides[name] != getattr(source_cfg, name):
                raise ConfigError(f"--{name.replace('_', '-')} {overrides[name]} differs from the source's "
                                  f"{getattr(source_cfg, name)}, but the action layers are kept; add action to --rebuild")
    seed = overrides.get("seed", source_cfg.seed)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(seed)
    source_dir = source.parent.parent if source.is_file() else source
    if run_dir.resolve() == source_dir.resolve():
        raise ConfigError(f"--run-dir {run_dir} is the source run itself; choose another directory")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown config fields: {', '.join(sorted(unknown))}")
    named = set(overrides) & {"dataset", "steps", "run_dir", "resume"}
    if named:
        raise ConfigError(f"pass {', '.join(sorted(named))} as finetune's own arguments, not as overrides")
    new_model = overrides.get("model", source_cfg.model)
    if "action" in rebuild and new_model != source_cfg.model:
        # A rebuilt codec of another representation: the source's codec options that the new
        # representation cannot take fall back to their defaults (unless given).
        new_rep = representation(new_model)
        if not new_rep.spread:
            overrides.setdefault("spread_head", "per-feature")
        if not new_rep.feature_tables:
            overrides.setdefault("max_action_features", 0)
        if not new_rep.pooled:
            overrides.setdefault("pool", "mean")
    source_actions = payload["spec"].get("num_actions")  # n of a Discrete(n) source, None for a Box one
    if "action" in rebuild and source_actions is not None:
        # The source's categorical head was its Discrete actions' (train settles it again on a
        # discrete task); a rebuilt codec on continuous actions takes the default unless given.
        overrides.setdefault("head", "regression")
    # The source's warm-up (CORL: 10k steps) can be as long as a whole fine-tune; cap it at a
    # tenth of the fine-tuning steps unless asked for.
    overrides.setdefault("warmup_steps", min(source_cfg.warmup_steps, max(1, steps // 10)))
    # The trunk comes from the source run (prepare_model), not from the LM the source started
    # from; the source's LM objectives are not carried over unless asked for.
    overrides.setdefault("init", "scratch")
    overrides.setdefault("align_weight", 0.0)
    overrides.setdefault("cotrain_weight", 0.0)
    # rtg_scale and targets belong to the source's data: None takes the new dataset's presets.
    cfg = dataclasses.replace(
        source_cfg,
        **{"rtg_scale": None, "targets": None, **overrides},
        dataset=dataset,
        steps=steps,
        run_dir=str(run_dir),
        resume=resume,
    )
    record = {
        "source_run": str(source_dir.resolve()),
        "source_step": int(payload["step"]),
        "source_dataset": payload["spec"]["dataset"],
        "source_env_id": payload["spec"]["env_id"],
        "source_model": source_cfg.model,
        **({"source_tasks": payload["multitask_source"]} if "multitask_source" in payload else {}),
        "train": train_mode,
        "transferred": list(TRANSFERRED) + [BRANCHES[b] for b in kept],
        "rebuilt": list(rebuild),
    }
    if resume:
        _check_same_finetune(run_dir, record)

    def prepare_model(model: DecisionTransformer) -> None:
        for name, module in zip(TRANSFERRED, transferred_modules(model)):
            try:
                module.load_state_dict(states[name])
            except RuntimeError as exc:
                raise CheckpointError(f"the source run's '{name}' weights do not fit the new model: {exc}") from None
            if train_mode == "embeddings":
                module.requires_grad_(False)
        for branch in kept:
            module = getattr(model, BRANCHES[branch])
            _load_kept_branch(branch, module, kept_states[BRANCHES[branch]], dataset)
            if train_mode == "embeddings":
                module.requires_grad_(False)

    make_artefacts = None
    if "action" in kept:
        from seqrl.data.tokenizer import tokenizer_from_payload

        source_tokenizer = tokenizer_from_payload(payload.get("tokenizer"))

        def make_artefacts(cfg: TrainConfig, dataset_: Any, spec: Any) -> Any:
            if spec.num_actions != source_actions:
                theirs = (f"Discrete({source_actions})" if source_actions is not None
                          else f"Box({payload['spec']['act_dim']})")
                raise ConfigError(f"the action layers are kept, but the source run has {theirs} actions and "
                                  f"{dataset} has {spec.action_space}; add action to --rebuild")
            return keep_tokenizer(source_tokenizer, spec.act_dim, dataset)

    return FinetunePlan(cfg, prepare_model, make_artefacts, record)


def _check_same_finetune(run_dir: Path, record: dict[str, Any]) -> None:
    """A resumed fine-tune must continue from the same source run with the same --train."""
    path = run_dir / METADATA_FILE
    if not path.exists():
        return  # nothing to resume yet: train() starts afresh
    saved = json.loads(path.read_text()).get("finetune")
    if saved is None:
        raise ConfigError(f"{run_dir} is not a fine-tuning run; resume it with `seqrl train --resume`")
    if saved.get("rebuilt", list(ALL_BRANCHES)) != record["rebuilt"]:
        raise ConfigError(f"{run_dir} fine-tunes with --rebuild {' '.join(saved.get('rebuilt', ALL_BRANCHES))}; "
                          f"cannot resume it with --rebuild {' '.join(record['rebuilt'])}")
    for key in ("source_run", "train"):
        if saved[key] != record[key]:
            raise ConfigError(
                f"{run_dir} fine-tunes {saved['source_run']} with --train {saved['train']}; "
                f"cannot resume it with {record['source_run']} and --train {record['train']}"
            )
