"""A run directory's self-contained model: `model.safetensors`, and `README.md`, its model card.

The run's `config.json` holds, beside the training config, an "acting" record: the spaces, the
state normalisation, the target returns and the action tokenizer's edges, as plain JSON
(`acting_record`; fixed before training starts, so it is written once).

`model.safetensors` holds the weights (safetensors: no pickle, nothing executes on load) and, in
the file's own header, everything else needed to act, again, so that the file alone suffices:
- the family tag and the config;
- the DataSpec: observation and action spaces, state normalisation, target returns, return scale;
- the fitted artefacts (the DT's action tokenizer with its bin edges, the TT's discretizer); their
  arrays are tensors in the file, the rest JSON;
- the step, and a SHA-256 of every tensor's bytes.

Everything is in one file, written atomically, so a run stopped mid-write keeps the previous
one whole. The hash makes a weights file changed by hand (or truncated) an error at load, not
a silently different policy. The training loop writes the file with every checkpoint
(`seqrl.train`). `seqrl.loading.load_run` reads it when the run directory has no checkpoint:
a directory shared with only `model.safetensors`, or also its `README.md` and `config.json`,
still acts.

The model card says what the run is: family and model, the dataset, the command that trained
it, the evaluation scores with their seeds, the machine and the seqrl version. Training writes
it at the end, and `seqrl eval` rewrites it with the scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from seqrl.errors import CheckpointError

MODEL_FILE = "model.safetensors"
MODEL_CARD = "README.md"
FORMAT = "seqrl-model"
VERSION = 1
_ARTEFACT_PREFIX = "artefacts/"  # tensor keys of the artefacts' arrays, beside the weights'


def _split_artefacts(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """The artefacts payload as JSON, each tensor replaced by {"$tensor": key} (stored in `tensors`)."""
    if isinstance(value, torch.Tensor):
        key = _ARTEFACT_PREFIX + path
        tensors[key] = value.detach().cpu().contiguous()
        return {"$tensor": key}
    if isinstance(value, dict):
        return {str(k): _split_artefacts(v, f"{path}.{k}" if path else str(k), tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_artefacts(v, f"{path}.{i}", tensors) for i, v in enumerate(value)]
    return value


def _join_artefacts(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$tensor"}:
            return tensors[value["$tensor"]]
        return {k: _join_artefacts(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_artefacts(v, tensors) for v in value]
    return value


ACTING_KEY = "acting"  # config.json's record of what acting needs (beside the config's fields)


def _jsonable(value: Any) -> Any:
    """Artefacts as plain JSON: tensors and arrays as nested lists."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def acting_record(*, family: str, spec: dict[str, Any], artefacts_key: str, artefacts: Any) -> dict[str, Any]:
    """What config.json says acting needs, beside the training config: the family, the DataSpec
    (spaces, state normalisation, target returns, return scale) and the fitted artefacts (the
    action tokenizer's bin edges and values), as plain JSON. Fixed before the first step: a run
    writes it once, and the weights (model.safetensors) are the only thing training changes."""
    return {"family": family, "spec": spec, "artefacts_key": artefacts_key, "artefacts": _jsonable(artefacts)}


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def write_model_file(run_dir: Path | str, *, family: str, config: dict[str, Any], spec: dict[str, Any],
                     artefacts_key: str, artefacts: Any, state_dict: dict[str, torch.Tensor], step: int) -> Path:
    """Write RUN_DIR/model.safetensors atomically (the module docstring says what it holds)."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        # Cloned: modules shared between a multi-task model's views appear under several keys,
        # and safetensors stores no shared memory.
        tensors[key] = value.detach().cpu().clone().contiguous()
    artefacts_json = _split_artefacts(artefacts, "", tensors)
    header = {"format": FORMAT, "version": VERSION, "family": family, "step": int(step), "config": config,
              "spec": spec, "artefacts_key": artefacts_key, "artefacts": artefacts_json,
              "sha256": tensors_digest(tensors)}
    path = Path(run_dir) / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"seqrl": json.dumps(header)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_model_file(run_dir: Path | str) -> dict[str, Any]:
    """RUN_DIR/model.safetensors as a checkpoint-like payload ({"config", "spec", "model", "step",
    the artefacts under their key}), its weights checked against the hash it was written with."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(run_dir)
    path = path / MODEL_FILE if path.is_dir() else path
    if not path.is_file():
        raise CheckpointError(f"no {MODEL_FILE} in {path.parent}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt or not a safetensors file ({exc})") from None
    try:
        header = json.loads(metadata["seqrl"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path} is not a seqrl model file (its header has no seqrl record)") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise CheckpointError(f"{path}: format {header.get('format')} version {header.get('version')}, "
                              f"expected {FORMAT} version {VERSION}")
    if tensors_digest(tensors) != header.get("sha256"):
        raise CheckpointError(f"{path}: its weights do not match the SHA-256 they were written with: the file was "
                              "changed after training wrote it (a run's checkpoint, if any, is intact)")
    weights = {k: v for k, v in tensors.items() if not k.startswith(_ARTEFACT_PREFIX)}
    return {"config": header["config"], "spec": header["spec"], "step": header["step"], "model": weights,
            header["artefacts_key"]: _join_artefacts(header["artefacts"], tensors)}


# --------------------------------------------------------------------------- the model card
def write_model_card(run_dir: Path | str) -> Path:
    """RUN_DIR/README.md from the run's own files (config, metadata, model file, eval.json)."""
    run_dir = Path(run_dir)

    def read(name: str) -> Any:
        try:
            return json.loads((run_dir / name).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    config = read("config.json") or {}
    metadata = read("metadata.json") or {}
    evaluation = read("eval.json")
    versions = metadata.get("versions") or {}
    command = metadata.get("command")
    lines = [f"# {run_dir.name}", "",
             f"A seqrl run: family `{config.get('family', 'dt')}`, model `{config.get('model', '?')}`, trained on "
             f"`{config.get('dataset', '?')}` for {config.get('steps', '?')} steps (seed {config.get('seed', '?')}).", ""]
    lines += ["## Use it", "", "```python", "import seqrl", "",
              f"policy = seqrl.load({str(run_dir)!r})  # needs only {MODEL_FILE}", "policy.reset()",
              "action = policy.act(observation)  # then policy.observe(reward) after each env.step", "```", ""]
    lines += ["## How it was trained", ""]
    if command:
        lines += ["```", " ".join(command if isinstance(command, list) else [str(command)]), "```", ""]
    lines += [f"Every setting is in `config.json`; `{MODEL_FILE}` holds the weights and what acting needs "
              "(normalisation, target returns, action tokenizer, spaces).", ""]
    lines += ["## Scores", ""]
    if evaluation and evaluation.get("results"):
        lines += [f"`seqrl eval` at step {evaluation.get('step')}: {evaluation.get('episodes')} episodes per condition, "
                  f"episode i seeded {evaluation.get('seed', '?')} + i, in `{evaluation.get('env_id')}`.", "",
                  "| target | return | normalized score | length |", "|---|---|---|---|"]
        for r in evaluation["results"]:
            target = "-" if r.get("target") is None else f"{r['target']:g}"
            score = "-" if r.get("score_mean") is None else f"{r['score_mean']:.1f} ± {r['score_std']:.1f}"
            lines.append(f"| {target} | {r['return_mean']:.1f} ± {r['return_std']:.1f} | {score} | "
                         f"{r['length_mean']:.0f} |")
        lines.append("")
    else:
        lines += ["Not evaluated yet: `seqrl eval RUN_DIR` writes eval.json and the scores here.", ""]
    lines += ["## Machine and versions", "",
              f"- machine: {metadata.get('processor', '?')}, {metadata.get('cpu_count', '?')} CPUs, "
              f"{metadata.get('platform', '?')}; device {metadata.get('device', '?')}",
              *([f"- CPU: {cpu.get('model') or '?'}; torch kernels {cpu.get('torch_capability') or '?'}; "
                 f"instruction sets {', '.join(cpu.get('isa') or []) or '?'}"] if (cpu := metadata.get("cpu")) else []),
              f"- seqrl {versions.get('seqrl', '?')} (git {metadata.get('git_revision') or '?'}), "
              f"torch {versions.get('torch', '?')}, Python {metadata.get('python', '?')}", ""]
    path = run_dir / MODEL_CARD
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)
    return path
