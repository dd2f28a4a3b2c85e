"""Print the discrete LunarLander table of docs/RESULTS.md from the eval.json files beside this
script (copied from /work/runs-discrete/ll-<model>-s<seed>/) and random_baseline.json."""
import json
from pathlib import Path

import numpy as np

here = Path(__file__).parent
random = json.loads((here / "random_baseline.json").read_text())
print("| model | seed | score at the higher target | score at the lower target |")
print("|---|---:|---:|---:|")
means = {}
for model in ("tokenized", "continuous"):
    for run in sorted(here.glob(f"ll-{model}-s*")):
        results = json.loads((run / "eval.json").read_text())["results"]
        hi, lo = sorted(results, key=lambda r: -r["target"])
        means.setdefault(model, []).append(hi["score_mean"])
        print(f"| {model} | {run.name[-1]} | {hi['score_mean']:.1f} ± {hi['score_std']:.1f} "
              f"(target {hi['target']:.0f}, return {hi['return_mean']:.1f}) | {lo['score_mean']:.1f} ± {lo['score_std']:.1f} "
              f"(target {lo['target']:.0f}, return {lo['return_mean']:.1f}) |")
for model, scores in means.items():
    print(f"{model}: mean over {len(scores)} seeds {np.mean(scores):.1f} ± {np.std(scores):.1f} (higher target)")
print(f"uniform random, same 50 seeds: {random['score_mean']:.1f} ± {random['score_std']:.1f} "
      f"(return {random['return_mean']:.1f} ± {random['return_std']:.1f})")
