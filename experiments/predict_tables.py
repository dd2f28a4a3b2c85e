"""The long-horizon prediction table of docs/RESULTS.md, from `seqrl predict`'s committed predict.json:

    python experiments/predict_tables.py docs/results/predict/hopper-medium docs/results/predict/walker2d-medium \
        > docs/results/predict/predict_tables.md

Error: squared error per state dimension in units of the data's std, averaged over dimensions and
start states, at horizons 1, 10, 50 and 100 (`error[h - 1]`); the discrete oracle's error at the
same horizons and its mean over all horizons; each model's error at h = 1 over the oracle's at h = 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HORIZONS = (1, 10, 50, 100)


def _g(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 1 else f"{x:.3g}" if abs(x) < 1000 else f"{x:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    print("| task | model | " + " | ".join(f"error at h = {h}" for h in HORIZONS) +
          " | mean over h = 1–100 | h = 1 error / oracle's | log-density of the truth at h = 1 / 10 / 100 |")
    print("|---|---|" + "---:|" * (len(HORIZONS) + 2) + "---|")
    for folder in args.folders:
        data = json.loads((folder / "predict.json").read_text())
        task = folder.name.removesuffix("-medium")
        oracle = data["oracle"]["error"]
        rows = [(r.get("model") or r["family"], r["error"], r.get("log_density")) for r in data["runs"]]
        rows.append(("discrete oracle", oracle, None))
        for name, error, density in rows:
            cells = [_g(error[h - 1]) for h in HORIZONS] + [_g(sum(error) / len(error)), f"{error[0] / oracle[0]:.3g}"]
            dens = " / ".join(_g(density[h - 1]) for h in (1, 10, 100)) if density else ""
            print(f"| {task} | {name} | " + " | ".join(cells) + f" | {dens} |")


if __name__ == "__main__":
    main()
