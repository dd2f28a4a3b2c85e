"""Run one bench/ script alternately in this checkout and in another commit's, to show that a
change did not slow something down (medians of the two sides' ms/step, same machine, same run).

    python bench/against_commit.py 7b0b35b --rounds 3 -- bench/train_loop.py --steps 200

The other commit is checked out with `git worktree` into a temporary folder (removed after).
Both sides run THIS checkout's bench script with this venv's Python; only the `seqrl` package
differs (the other side's `src/` first on the path, checked before timing). The script's
`--json` output of both sides is read back; rows are matched by their `name` and `precision`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(checkout: Path, script: list[str], out: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    where = subprocess.run([sys.executable, "-c", "import seqrl; print(seqrl.__file__)"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    if not where.startswith(str(checkout / "src")):
        raise SystemExit(f"seqrl imports from {where}, not from {checkout / 'src'}")
    subprocess.run([sys.executable, str(ROOT / script[0]), *script[1:], "--json", str(out)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     usage="%(prog)s COMMIT [--rounds N] -- bench/SCRIPT.py [its flags]")
    parser.add_argument("commit")
    parser.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:]
    if "--" not in argv:
        parser.error("name the bench script after --")
    split = argv.index("--")
    args, script = parser.parse_args(argv[:split]), argv[split + 1 :]
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "worktree", "add", "--detach", str(other), args.commit], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            times: dict[tuple, dict[str, list[float]]] = {}
            for _ in range(args.rounds):
                for side, checkout in (("base", other), ("head", ROOT)):
                    for row in run(checkout, script, Path(tmp) / f"{side}.json"):
                        key = (row.get("name"), row.get("precision"))
                        times.setdefault(key, {"base": [], "head": []})[side].append(float(row["ms_per_step"]))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"command: python {' '.join(sys.argv)}")
    print(f"base {args.commit} against head {head}, {args.rounds} alternating rounds, median ms/step\n")
    print("| row | precision | base ms | head ms | head / base |")
    print("|---|---|---|---|---|")
    for (name, precision), sides in times.items():
        b, h = statistics.median(sides["base"]), statistics.median(sides["head"])
        print(f"| {name} | {precision} | {b:.1f} | {h:.1f} | {h / b:.3f} |")


if __name__ == "__main__":
    main()
