"""Train sweep runs at another commit and at this checkout, on this machine, and say whether the
two are the same to the bit: is a difference between two sessions' numbers the code's, or the
processor's and the seed's? And does a refactor keep every run's numbers?

    # one run, the other commit's own copy of the spec (the original use)
    python experiments/repeat_at_commit.py 0a8f2d8 experiments/paper.yaml 'main/halfcheetah-medium/continuous/s0' \\
        --output /work/repro

    # a whole spec, this checkout's copy of it at both commits, with a report to commit
    python experiments/repeat_at_commit.py 63c8450 experiments/identity.yaml --all --spec-from-here \\
        --output /work/identity-runs/63c8450 --report docs/results/identity/63c8450.md

RUN arguments are shell-style patterns over the run names `seqrl sweep --dry-run` lists (each
selects its matches and the runs they depend on, as `seqrl sweep --only` does); `--all` takes the
whole spec. The other commit is checked out with `git worktree` into OUTPUT/checkout (removed
after) and the spec is swept there with that commit's own `src/` first on the path; this
checkout's package then sweeps it beside it (one worker, one thread each, one after the other).
The spec at the other commit is its own copy at the same path, or with --spec-from-here this
checkout's file (copied to OUTPUT/, and both sides read that copy): a spec written after the
other commit does not exist there.

Then every run both sides wrote is compared exactly: each metrics.jsonl record in order (the
training records' losses, loss terms, learning rate and grad norm; the in-training evaluations'
scores; only steps_per_sec and wall times are left out) and eval.json (every field of every
result, and the evaluation's settings, less its paths and wall times). A run one side has and the
other lacks, or that failed on either side, counts as a difference. The script drives the
package through its command line only and reads plain JSON, so it works across commits that move
the package's modules. Run directories are OUTPUT/other and OUTPUT/this. With --report FILE.md,
the per-run verdicts and differences go to FILE.md and FILE.json. Exit status 0 when every run
is identical, 1 when not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
METRICS_FILE = "metrics.jsonl"
EVAL_FILE = "eval.json"
RUN_STATE_FILE = "sweep.json"  # the sweep's per-run state: marks a run directory
# Not results: how fast the machine was, and where the run lay.
VOLATILE_KEYS = ("steps_per_sec", "run_dir")
SHOWN = 20  # differences listed per run on the console and in the report


# ------------------------------------------------------------------------------- comparison
def _records(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _volatile(key: str) -> bool:
    return key in VOLATILE_KEYS or "wall_time" in key or key.endswith("seconds")


def _label(record: dict) -> str:
    kind = record.get("kind")
    return f"step {record.get('step')}" + (f" {kind}" if kind else "")


def _metrics_differences(a: Path, b: Path) -> list[str]:
    out = []
    records_a, records_b = _records(a), _records(b)
    if [_label(r) for r in records_a] != [_label(r) for r in records_b]:
        # Different records (steps logged, evaluations): say where they part, then compare the common ones.
        labels_a, labels_b = [_label(r) for r in records_a], [_label(r) for r in records_b]
        first = next((i for i, (x, y) in enumerate(zip(labels_a, labels_b)) if x != y), min(len(labels_a), len(labels_b)))
        out.append(f"metrics.jsonl records differ from record {first + 1}: {labels_a[first:first + 3]} against "
                   f"{labels_b[first:first + 3]} ({len(labels_a)} against {len(labels_b)} records)")
    by_label_b: dict[str, dict] = {}
    for record in records_b:
        by_label_b.setdefault(_label(record), record)
    seen = set()
    for record_a in records_a:
        label = _label(record_a)
        if label in seen or label not in by_label_b:
            continue
        seen.add(label)
        record_b = by_label_b[label]
        for key in sorted(set(record_a) | set(record_b), key=lambda k: (k != "loss", k)):
            if key in ("step", "kind") or _volatile(key):
                continue
            x, y = record_a.get(key, "(missing)"), record_b.get(key, "(missing)")
            if not _same(x, y):
                out.append(f"{label} {key}: {x!r} against {y!r}")
    return out


def _same(x: Any, y: Any) -> bool:
    """Equal to the bit, as JSON holds them: floats by their exact text (so NaN is NaN, and 0.0 is
    not -0.0), 1 not 1.0, at any depth."""
    return json.dumps(x, sort_keys=True) == json.dumps(y, sort_keys=True)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b[0].c': leaf}, less volatile keys (paths, wall times) at any depth."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not _volatile(str(key)):
                out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        out[f"{prefix}.length"] = len(value)
        return out
    return {prefix: value}


def _eval_differences(a: Path, b: Path) -> list[str]:
    present = [(Path(d) / EVAL_FILE).exists() for d in (a, b)]
    if present == [False, False]:
        return []
    if present[0] != present[1]:
        return [f"eval.json: {'present' if present[0] else 'absent'} against {'present' if present[1] else 'absent'}"]
    flat_a, flat_b = (_flatten(json.loads((Path(d) / EVAL_FILE).read_text())) for d in (a, b))
    out = []
    for key in sorted(set(flat_a) | set(flat_b)):
        x, y = flat_a.get(key, "(missing)"), flat_b.get(key, "(missing)")
        if not _same(x, y):
            out.append(f"eval.json {key}: {x!r} against {y!r}")
    return out


def differences(a: Path, b: Path) -> list[str]:
    """Every way two run directories' results differ: each metrics.jsonl record (logged losses,
    loss terms, learning rate and grad norm step by step; in-training evaluations) and eval.json
    (every result's fields, the evaluation's settings). Empty when they are identical."""
    return _metrics_differences(Path(a), Path(b)) + _eval_differences(Path(a), Path(b))


# ------------------------------------------------------------------------------- sweeping
def _run(command: list[str], **kwargs) -> None:
    try:
        subprocess.run(command, check=True, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"repeat_at_commit.py: `{' '.join(command[-12:])}` failed (exit {exc.returncode})") from None


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def sweep(checkout: Path, spec: str, patterns: list[str], output: Path) -> dict[str, Any]:
    """`seqrl sweep SPEC --only PATTERNS` with `checkout`'s package, one worker and one thread;
    its exit status and wall time. A failed run is not fatal: the comparison reports it."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    code = "import sys; from seqrl.cli import main; sys.exit(main())"
    only = ["--only", *patterns] if patterns else []
    command = [sys.executable, "-c", code, "sweep", spec, *only, "--workers", "1", "--threads", "1", "--output", str(output)]
    start = time.perf_counter()
    exit_code = subprocess.run(command, cwd=checkout, env=env).returncode
    return {"exit": exit_code, "seconds": round(time.perf_counter() - start, 1)}


def run_names(output: Path) -> list[str]:
    """The run directories a sweep wrote under `output` (those with a sweep.json), as run names."""
    if not output.is_dir():
        return []
    return sorted(p.parent.relative_to(output).as_posix() for p in output.rglob(RUN_STATE_FILE))


def _state(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / RUN_STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def compare(other: Path, this: Path) -> list[dict[str, Any]]:
    """One entry per run either side wrote: its verdict (identical, differs, missing, failed),
    its differences, and what was compared."""
    rows = []
    for name in sorted(set(run_names(other)) | set(run_names(this))):
        a, b = other / name, this / name
        run_states = {"other": _state(a), "this": _state(b)}  # {} where the side wrote no such run
        states = {side: state.get("status", "absent") for side, state in run_states.items()}
        errors = {side: state["error"] for side, state in run_states.items() if state.get("error")}
        records = _records(b) or _records(a)
        losses = [r["loss"] for r in records if "loss" in r and "kind" not in r]
        row: dict[str, Any] = {
            "run": name,
            "status": states,
            "logged_steps": len(losses),
            "last_step": max((r["step"] for r in records if "loss" in r and "kind" not in r), default=0),
            "evaluations": sum(1 for r in records if r.get("kind") == "eval"),
            "eval_results": _eval_result_count(b if (b / EVAL_FILE).exists() else a),
            "final_loss": losses[-1] if losses else None,
        }
        if "absent" in states.values():
            row.update(verdict="missing", differences=[f"run directory absent on the {side} side"
                                                       for side, s in states.items() if s == "absent"])
        else:
            found = differences(a, b)
            failed = [f"{side}: {states[side]}" + (f" ({errors[side]})" if side in errors else "")
                      for side in states if states[side] != "done"]
            verdict = "failed" if failed else ("differs" if found else "identical")
            row.update(verdict=verdict, differences=failed + found)
        rows.append(row)
    return rows


def _eval_result_count(run_dir: Path) -> int:
    try:
        return len(json.loads((run_dir / EVAL_FILE).read_text()).get("results", []))
    except (OSError, json.JSONDecodeError):
        return 0


# ------------------------------------------------------------------------------- the report
def _machine(this: Path, names: list[str]) -> dict[str, Any]:
    for name in names:
        try:
            meta = json.loads((this / name / "metadata.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        return {key: meta.get(key) for key in ("versions", "python", "platform", "processor", "cpu_count")}
    return {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count()}


def _revisions(side: Path, names: list[str]) -> list[str]:
    """The git revisions the side's runs recorded (the code that trained them)."""
    found = set()
    for name in names:
        try:
            found.add(json.loads((side / name / "metadata.json").read_text()).get("git_revision"))
        except (OSError, json.JSONDecodeError):
            pass
    return sorted(str(r) for r in found)


def markdown(summary: dict[str, Any]) -> str:
    machine = summary["machine"]
    versions = machine.get("versions") or {}
    identical = sum(r["verdict"] == "identical" for r in summary["runs"])
    lines = [
        f"# Identity check: {summary['other']['revision'][:12]} against {summary['this']['revision'][:12]}",
        "",
        f"`{summary['command']}`",
        "",
        f"- other: `{summary['other']['commit']}` = {summary['other']['revision']} "
        f"(its runs recorded {', '.join(summary['other']['recorded']) or 'no revision'}); "
        f"sweep {summary['other']['seconds']} s, exit {summary['other']['exit']}",
        f"- this: {summary['this']['revision']} (its runs recorded {', '.join(summary['this']['recorded']) or 'no revision'}); "
        f"sweep {summary['this']['seconds']} s, exit {summary['this']['exit']}",
        f"- spec: `{summary['spec']}`" + (" (this checkout's copy, at both commits)" if summary["spec_from_here"]
                                           else " (each commit's own copy)")
        + (f"; runs `{'`, `'.join(summary['patterns'])}` and what they depend on" if summary["patterns"] else "; every run"),
        f"- machine: {machine.get('platform')}, {machine.get('processor')}, {machine.get('cpu_count')} CPUs, "
        f"Python {machine.get('python')}, torch {versions.get('torch')}, numpy {versions.get('numpy')}, "
        f"gymnasium {versions.get('gymnasium')}; one worker and one thread a side",
        "",
        f"**{'Identical' if summary['identical'] else 'Not identical'}: {identical} of {len(summary['runs'])} runs "
        "identical to the bit** (every metrics.jsonl record less steps_per_sec; eval.json less paths and wall times).",
        "",
        "| run | verdict | logged steps (to step) | evaluations in training | eval.json results | final loss |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["runs"]:
        lines.append(f"| {r['run']} | {r['verdict']} | {r['logged_steps']} ({r['last_step']}) | {r['evaluations']} | "
                     f"{r['eval_results']} | {r['final_loss']!r} |")
    differing = [r for r in summary["runs"] if r["differences"]]
    if differing:
        lines += ["", "## Differences (other against this)", ""]
        for r in differing:
            lines.append(f"### {r['run']}")
            lines += [f"- {d}" for d in r["differences"][:SHOWN]]
            if len(r["differences"]) > SHOWN:
                lines.append(f"- ... and {len(r['differences']) - SHOWN} more (the JSON has them all)")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_report(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".md").write_text(markdown(summary))
    path.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")


# ------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commit", help="the other commit (any git revision)")
    parser.add_argument("spec", help="sweep spec, a path relative to the repository root (at both commits, "
                                     "unless --spec-from-here)")
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help="runs of it, as `seqrl sweep --dry-run` names them; shell-style patterns allowed")
    parser.add_argument("--all", action="store_true", help="every run of the spec (instead of RUN patterns)")
    parser.add_argument("--spec-from-here", action="store_true",
                        help="sweep this checkout's spec at the other commit too (one the other commit lacks)")
    parser.add_argument("--output", type=Path, required=True, help="an empty folder for both sides' run directories")
    parser.add_argument("--report", type=Path, help="write the verdicts to this .md file and a .json beside it")
    args = parser.parse_args()
    if bool(args.runs) == args.all:
        raise SystemExit("repeat_at_commit.py: name RUN patterns or give --all, not both or neither")
    output = args.output.resolve()
    for side in ("other", "this"):  # a sweep skips a finished run: an old one would be compared instead
        if (output / side).exists() and any((output / side).iterdir()):
            raise SystemExit(f"repeat_at_commit.py: {output / side} holds runs; give an empty --output")
    spec_here = (ROOT / args.spec).resolve()
    if args.spec_from_here and not spec_here.is_file():
        raise SystemExit(f"repeat_at_commit.py: no spec {spec_here} in this checkout")
    revision = _git("rev-parse", "--verify", f"{args.commit}^{{commit}}")
    output.mkdir(parents=True, exist_ok=True)
    if args.spec_from_here:  # both sides read one copy, kept beside the runs
        shutil.copyfile(spec_here, output / spec_here.name)
        spec_other = spec_this = str(output / spec_here.name)
    else:
        spec_other, spec_this = args.spec, args.spec

    checkout = output / "checkout"
    _run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(checkout), revision])
    try:
        if not args.spec_from_here and not (checkout / args.spec).is_file():
            raise SystemExit(f"repeat_at_commit.py: {args.spec} does not exist at {args.commit}; "
                             "give --spec-from-here to sweep this checkout's copy there")
        other_sweep = sweep(checkout, spec_other, args.runs, output / "other")
    finally:
        _run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checkout)])
    this_sweep = sweep(ROOT, spec_this, args.runs, output / "this")

    rows = compare(output / "other", output / "this")
    names = [r["run"] for r in rows]
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    summary = {
        "command": "python experiments/repeat_at_commit.py " + shlex.join(sys.argv[1:]),
        "identical": bool(rows) and all(r["verdict"] == "identical" for r in rows),
        "other": {"commit": args.commit, "revision": revision, "recorded": _revisions(output / "other", names),
                  **other_sweep},
        "this": {"revision": _git("rev-parse", "HEAD") + ("-dirty" if dirty else ""),
                 "recorded": _revisions(output / "this", names), **this_sweep},
        "spec": args.spec,
        "spec_from_here": args.spec_from_here,
        "patterns": args.runs,
        "machine": _machine(output / "this", names),
        "runs": rows,
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.report:
        write_report(args.report, summary)

    if not rows:
        print(f"repeat_at_commit.py: neither sweep wrote a run (exits {other_sweep['exit']} and {this_sweep['exit']})")
        sys.exit(1)
    for r in rows:
        if r["verdict"] == "identical":
            print(f"{r['run']}: identical at {args.commit} and this checkout on this machine "
                  f"({r['logged_steps']} logged steps to {r['last_step']}, {r['evaluations']} evaluations in training, "
                  f"{r['eval_results']} eval.json results)")
        else:
            print(f"{r['run']}: {r['verdict']} between {args.commit} and this checkout on this machine:")
            print("\n".join(f"  {line}" for line in r["differences"][:SHOWN]))
    identical = sum(r["verdict"] == "identical" for r in rows)
    print(f"{identical} of {len(rows)} runs identical; sweeps took {other_sweep['seconds']} s (other) and "
          f"{this_sweep['seconds']} s (this)" + (f"; report in {args.report.with_suffix('.md')}" if args.report else ""))
    sys.exit(0 if summary["identical"] else 1)


if __name__ == "__main__":
    main()
