"""How long `seqrl --help` and each command's `--help` take: Python's start, the imports, tyro's
parser. Optionally the same commands at another commit, in the same run, for a before/after.

    python bench/cli_startup.py                        # this checkout
    python bench/cli_startup.py --other 63c8450        # and that commit (a git worktree, removed after)

Each command runs `--rounds` times in a fresh `python -c` process (the `seqrl` script's own
import path, with this checkout's or the other commit's `src/` first on the path), alternating
between the checkouts; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import command_line, machine, median, print_header, print_table

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["train", "--help"], ["eval", "--help"], ["collect", "--help"], ["sweep", "--help"],
            ["report", "--help"])


def one(src: Path, argv: list[str]) -> float:
    code = "import sys; from seqrl.cli import main; main(sys.argv[1:])"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *argv], env={**os.environ, "PYTHONPATH": str(src)},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", default=None, help="another commit to time beside this checkout")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print_header("seqrl command start-up (--help)", {**machine(), "command": command_line(), "rounds": args.rounds,
                                                     "load_avg_1m": os.getloadavg()[0]})
    checkouts = {"this checkout": ROOT / "src"}
    tmp = None
    if args.other:
        tmp = Path(tempfile.mkdtemp()) / "other"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tmp), args.other], check=True,
                       capture_output=True)
        checkouts = {args.other: tmp / "src", **checkouts}
    try:
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for argv in COMMANDS:
                for name, src in checkouts.items():
                    times.setdefault((name, " ".join(argv)), []).append(one(src, argv))
        rows = []
        for argv in COMMANDS:
            key = " ".join(argv)
            row = [f"seqrl {key}"] + [f"{median(times[(name, key)]):.2f}" for name in checkouts]
            if args.other:
                row.append(f"{median(times[(args.other, key)]) / median(times[('this checkout', key)]):.1f}x")
            rows.append(row)
        print_table(["command"] + [f"{name} (s)" for name in checkouts] + (["faster"] if args.other else []), rows)
    finally:
        if tmp is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp)], capture_output=True)


if __name__ == "__main__":
    main()
