"""The command line the per-run table scripts share (claims_tables.py, discrete_tables.py,
keydoor_tables.py): read a sweep's run files under ROOT, write OUT/results.json and OUT/table.md
atomically, print the table."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(description: str, default_out: str, collect_results: Callable[[Path], dict], table: Callable[[dict], str],
         argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS / default_out)
    args = parser.parse_args(argv)
    results = collect_results(args.root)
    if not results:
        raise SystemExit(f"no eval.json under {args.root}/EXPERIMENT/DATASET/ARM/sSEED")
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "results.json", json.dumps(results, indent=1) + "\n")
    text = table(results)
    _write(args.out / "table.md", text)
    print(text, end="")
