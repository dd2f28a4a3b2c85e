"""Train one sweep run at another commit and at this checkout, on this machine, and say whether
the two are the same to the bit: is a difference between two sessions' numbers the code's, or
the processor's and the seed's?

    python experiments/repeat_at_commit.py 0a8f2d8 experiments/paper.yaml 'main/halfcheetah-medium/continuous/s0' \\
        --output /work/repro

The other commit is checked out with `git worktree` into OUTPUT/checkout (removed after) and its
own copy of the spec is swept there with its own `src/` first on the path; this checkout's spec
and package run beside it (one worker, one thread each, one after the other). Then every logged
training step's loss and grad norm, and every evaluation score, are compared exactly. Run
directories are OUTPUT/other and OUTPUT/this. Exit status 0 when identical, 1 when not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("loss", "grad_norm")  # per logged step; steps_per_sec and lr are not results


def sweep(checkout: Path, spec: str, run: str, output: Path) -> Path:
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    code = "import sys; from seqrl.cli import main; sys.exit(main())"
    _run([sys.executable, "-c", code, "sweep", spec, "--only", run, "--workers", "1", "--threads", "1",
          "--output", str(output)], cwd=checkout, env=env)
    run_dir = output / run
    if not (run_dir / "metrics.jsonl").exists():
        raise SystemExit(f"repeat_at_commit.py: the sweep at {checkout} wrote no {run_dir / 'metrics.jsonl'}")
    return run_dir


def _run(command: list[str], **kwargs) -> None:
    try:
        subprocess.run(command, check=True, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"repeat_at_commit.py: `{' '.join(command[-12:])}` failed (exit {exc.returncode})") from None


def _records(run_dir: Path) -> list[dict]:
    from seqrl.runs import METRICS_FILE, read_jsonl

    return read_jsonl(run_dir / METRICS_FILE)


def differences(a: Path, b: Path) -> list[str]:
    """Every way two run directories' results differ: logged losses and grad norms step by step,
    in-training evaluations, and eval.json's scores per target. Empty when they are identical."""
    out = []
    train_a = {r["step"]: r for r in _records(a) if "loss" in r}
    train_b = {r["step"]: r for r in _records(b) if "loss" in r}
    if train_a.keys() != train_b.keys():
        out.append(f"logged steps differ: {sorted(train_a)[-3:]} against {sorted(train_b)[-3:]}")
    for step in sorted(train_a.keys() & train_b.keys()):
        for key in COMPARED:
            if train_a[step].get(key) != train_b[step].get(key):
                out.append(f"step {step} {key}: {train_a[step].get(key)!r} against {train_b[step].get(key)!r}")
    evals_a = [{k: v for k, v in r.items() if k.startswith("eval/")} for r in _records(a) if r.get("kind") == "eval"]
    evals_b = [{k: v for k, v in r.items() if k.startswith("eval/")} for r in _records(b) if r.get("kind") == "eval"]
    if evals_a != evals_b:
        out.append("in-training evaluations differ")
    scores = []
    for run_dir in (a, b):
        path = run_dir / "eval.json"
        results = json.loads(path.read_text())["results"] if path.exists() else []
        scores.append({r["target"]: (r["return_mean"], r.get("score_mean")) for r in results})
    if scores[0] != scores[1]:
        out.append(f"eval.json differs: {scores[0]} against {scores[1]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commit", help="the other commit (any git revision)")
    parser.add_argument("spec", help="sweep spec, a path relative to the repository root (at both commits)")
    parser.add_argument("run", help="one run of it, as `seqrl sweep --dry-run` names it")
    parser.add_argument("--output", type=Path, required=True, help="folder for both run directories")
    args = parser.parse_args()
    for side in ("other", "this"):  # a sweep skips a finished run: an old one would be compared instead
        if (args.output / side / args.run).exists():
            raise SystemExit(f"repeat_at_commit.py: {args.output / side / args.run} exists; give an empty --output")
    args.output.mkdir(parents=True, exist_ok=True)
    checkout = args.output / "checkout"
    _run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(checkout), args.commit])
    try:
        other = sweep(checkout, args.spec, args.run, args.output / "other")
    finally:
        _run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)])
    this = sweep(ROOT, args.spec, args.run, args.output / "this")
    found = differences(other, this)
    steps = sorted(r["step"] for r in _records(this) if "loss" in r)
    if found:
        print(f"{args.run}: {args.commit} and this checkout differ on this machine:")
        print("\n".join(f"  {line}" for line in found[:20]))
        sys.exit(1)
    print(f"{args.run}: identical at {args.commit} and this checkout on this machine "
          f"({len(steps)} logged steps to {steps[-1] if steps else 0}, every evaluation)")


if __name__ == "__main__":
    main()
