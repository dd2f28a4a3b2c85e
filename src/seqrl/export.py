"""Export a trained run's policy so that it runs without seqrl (`seqrl export`).

    seqrl export RUN_DIR --format onnx|torchscript --out DIR

The run's family gives its policy as one stateless step (`Family.export_policy`: a module, its
inputs, a standalone runner and its README section); this module writes it to DIR:

    policy.onnx | policy.pt   the step: ONNX (onnxruntime), or TorchScript (torch.jit.load)
    runner.py                 the bookkeeping the step leaves out (context windows, returns-to-go),
                              numpy + onnxruntime or torch only
    manifest.json             sizes, targets, rtg scale, normalisation, the run it came from,
                              and the check below
    README.md                 how to use it

Every input and the output have the batch as their first axis, the one axis left free. After
writing, the exported file is run on the example inputs with noise added and compared with the
module it came from (the largest difference goes into manifest.json). A family that cannot be
exported (the TT's planner is a search; LM, dynamics and multi-task runs are not single
policies) is refused by name. See docs/export.md.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from seqrl.errors import ConfigError

FORMATS = ("onnx", "torchscript")
FILES = {"onnx": "policy.onnx", "torchscript": "policy.pt"}
OPSET = 17


def export_run(
    run_dir: str | Path,
    out: str | Path,
    format: str = "onnx",
    decode: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export `run_dir`'s policy into the directory `out` (see the module docstring); returns
    the manifest written. `decode` overrides a categorical DT head's decoding (a run that samples
    must name argmax or expectation). `out` must be empty or absent unless `overwrite`."""
    import torch

    from seqrl import __version__
    from seqrl.families import get_family
    from seqrl.loading import load_run
    from seqrl.runs import write_json_atomic

    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose {' or '.join(FORMATS)}")
    if format == "onnx" and importlib.util.find_spec("onnx") is None:
        raise ConfigError("--format onnx needs the onnx package: pip install 'seqrl[export]' (onnx, onnxruntime)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; name a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"--out {out} is not empty; pass --overwrite to replace what an earlier export wrote there")
    run = load_run(run_dir, "cpu")
    if getattr(run.spec, "image", False):
        raise ConfigError(f"seqrl export: {run_dir} was trained on image observations {run.spec.obs_shape}; the "
                          "exported runners read vector observations (load the run with seqrl.load instead)")
    family = get_family(run.family)
    exported = family.export_policy(run, decode)  # a family that cannot be exported refuses here, by name
    if format not in family.exports:
        raise ConfigError(f"a {family.tag} run exports to {', '.join(family.exports)}, not {format}")

    out.mkdir(parents=True, exist_ok=True)
    for name in (*FILES.values(), "manifest.json", "runner.py", "README.md"):  # an earlier export's (--overwrite)
        (out / name).unlink(missing_ok=True)
    path = out / FILES[format]
    module, example = exported.module.eval(), tuple(exported.example_inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow (static by design)
        if format == "onnx":
            _write_onnx(module, example, exported, path)
        else:
            torch.jit.trace(module, example, check_trace=False).save(str(path))
    check = _check(module, example, exported, path, format)

    manifest = {
        "seqrl_export": 1,
        "format": format,
        "file": path.name,
        "family": family.tag,
        "model": family.describe(run.config),
        "outputs": list(exported.output_names),
        **exported.manifest,
        "run": {
            "dir": str(Path(run_dir).resolve()),
            "step": run.step,
            "dataset": run.spec.dataset,
            "env_id": run.spec.env_id,
            "env_kwargs": run.spec.env_kwargs,
            "ref_min_score": run.spec.ref_min_score,
            "ref_max_score": run.spec.ref_max_score,
        },
        "check": check,
        "notes": list(exported.notes),
        "seqrl_version": __version__,
        "torch_version": torch.__version__,
    }
    write_json_atomic(out / "manifest.json", manifest)
    (out / "runner.py").write_text(exported.runner)
    (out / "README.md").write_text(_readme(manifest, exported.readme))
    return manifest


def _write_onnx(module: Any, example: tuple, exported: Any, path: Path) -> None:
    import torch

    names = tuple(exported.input_names) + tuple(exported.output_names)
    # The TorchScript-based exporter: the step's Python loop (a spread action's features) is
    # unrolled into the graph, and it needs onnx but not onnxscript.
    torch.onnx.export(module, example, str(path), input_names=list(exported.input_names),
                      output_names=list(exported.output_names), dynamic_axes={n: {0: "batch"} for n in names},
                      opset_version=OPSET, dynamo=False)


def _check(module: Any, example: tuple, exported: Any, path: Path, format: str) -> dict[str, Any]:
    """The exported file against the module on the example inputs, floating ones with noise added
    (batch of 2; the runner's tests compare whole episodes)."""
    import numpy as np
    import torch

    generator = torch.Generator().manual_seed(0)
    inputs = tuple(x + torch.randn(x.shape, generator=generator) if x.is_floating_point() else x for x in example)
    with torch.no_grad():
        expected = module(*inputs).numpy()
    if format == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            return {"checked": False, "why": "onnxruntime is not installed"}
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {n: x.numpy() for n, x in zip(exported.input_names, inputs)})[0]
    else:
        with torch.no_grad():
            got = torch.jit.load(str(path))(*inputs).numpy()
    diff = float(np.abs(got - expected).max())
    return {"checked": True, "inputs": "the example inputs with N(0, 1) noise on the float ones, batch 2",
            "max_abs_diff": diff}


def _readme(manifest: dict[str, Any], family_part: str) -> str:
    fmt, run = manifest["format"], manifest["run"]
    needs = "numpy and onnxruntime" if fmt == "onnx" else "numpy and torch"
    loader = ("onnxruntime.InferenceSession(\"policy.onnx\")" if fmt == "onnx" else "torch.jit.load(\"policy.pt\")")
    notes = "".join(f"- {note}\n" for note in manifest["notes"])
    notes = "\n" + notes if notes else ""
    return f"""# Exported policy: {manifest['family']} {manifest['model']}

Exported by `seqrl export` (seqrl {manifest['seqrl_version']}, torch {manifest['torch_version']}) from
`{run['dir']}` at step {run['step']}, trained on {run['dataset']} (environment {run['env_id']}).
It runs without seqrl: it needs {needs}.

| file | what |
|---|---|
| `{manifest['file']}` | the policy's step ({'ONNX opset ' + str(OPSET) if fmt == 'onnx' else 'TorchScript'}), batch first |
| `runner.py` | the bookkeeping around the step, a `Policy` with `reset`, `act`, `observe` |
| `manifest.json` | sizes, targets, normalisation (already inside the step), the run, the export's check |

```python
import sys; sys.path.insert(0, "THIS_DIRECTORY")
from runner import Policy
policy = Policy("THIS_DIRECTORY")   # a DT takes target_return=... (default: the run's first target)
policy.reset(n=1)
action = policy.act(observation[None])[0]       # clip to the env's action bounds, then step
policy.observe(clipped_action[None], [reward])  # after every step
```

From another language, load `{manifest['file']}` ({loader} in Python) and keep the bookkeeping
below yourself.

At export, the file was run against the module it came from: largest difference
{manifest['check'].get('max_abs_diff', 'not checked')}.
{notes}
{family_part}"""


def export_command(
    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")],
    out: str,
    format: Literal["onnx", "torchscript"] = "onnx",
    decode: Literal["argmax", "expectation"] | None = None,
    overwrite: bool = False,
) -> None:
    """Export a trained run's policy to ONNX or TorchScript, with a runner that needs no seqrl.

    DIR gets the policy's step (normalisation, the action codec's decoding, a spread action's
    feature-by-feature decode), runner.py (the context window and the return-to-go), manifest.json
    and a README. Decision Transformer and behaviour-cloning runs export; others are refused.

    Args:
        run_dir: Run directory (or checkpoint file) to export.
        out: Directory to write (created; must be empty unless --overwrite).
        format: onnx (policy.onnx, for onnxruntime) or torchscript (policy.pt, for torch.jit.load).
        decode: A categorical DT head's decoding in the export (default: the run's; a run that
            samples must choose argmax or expectation).
        overwrite: Replace the files of an earlier export in DIR.
    """
    manifest = export_run(run_dir, out, format=format, decode=decode, overwrite=overwrite)
    check = manifest["check"]
    checked = (f"largest difference to seqrl's step on a check batch: {check['max_abs_diff']:.3g}"
               if check.get("checked") else f"not checked: {check.get('why')}")
    print(f"exported {manifest['family']} {manifest['model']} to {Path(out) / manifest['file']} ({checked})")
    for note in manifest["notes"]:
        print(f"  {note}")
    print(f"  use it with {Path(out) / 'runner.py'} (see {Path(out) / 'README.md'})")
