"""Training-step time with 1 and 2 torch threads, on an idle machine and beside busy processes:
the evidence for seqrl's default of one thread (seqrl.threads).

    python bench/threads.py                     # the table in docs/benchmarks.md
    python bench/threads.py --busy 0 1 2 --steps 30 --json docs/bench-results/threads.json

Each case runs in its own subprocess (torch's thread pool is set before any work, as a command
would), and trains `--steps` steps of a real model through `seqrl.train.train` on a synthetic
hopper-shaped dataset, after 3 warm-up steps; the time per step is the median over `--rounds`
subprocess runs. "Busy" processes spin a pure-Python loop each on the side, the load a second
user or a sweep worker puts on a shared machine.

Models: the demo's DT (width 64, 2 layers, context 10, batch 32), CORL's DT (128 x 3, context 20,
batch 64) and the Trajectory Transformer's `--preset cpu` (width 64, 2 layers, 2 heads, 5
transitions, batch 64) and its authors' size (width 128, 4 layers, 4 heads, 10 transitions,
batch 256).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import command_line, dump_json, machine, median, print_header, print_table

MODELS = {
    "DT demo (64x2, K=10, B=32)": ("dt", dict(embed_dim=64, n_layers=2, n_heads=1, context_len=10, batch_size=32)),
    "DT CORL (128x3, K=20, B=64)": ("dt", dict(embed_dim=128, n_layers=3, n_heads=1, context_len=20, batch_size=64)),
    "TT cpu preset (64x2, 5 tr, B=64)": ("tt", dict(embed_dim=64, n_layers=2, n_heads=2, sequence_length=5,
                                                     batch_size=64)),
    "TT authors (128x4, 10 tr, B=256)": ("tt", dict(embed_dim=128, n_layers=4, n_heads=4, sequence_length=10,
                                                     batch_size=256)),
}

CHILD = r"""
import json, sys, time
import numpy as np
import torch
threads = int(sys.argv[1]); family = sys.argv[2]; sizes = json.loads(sys.argv[3]); steps = int(sys.argv[4])
run_dir = sys.argv[5]
torch.set_num_threads(threads)
from seqrl.threads import torch_threads
from seqrl.train import train
from seqrl.data.trajectories import TrajectoryDataset
sys.path.insert(0, sys.argv[6])
from train_step import synthetic_dataset
data = synthetic_dataset(11, 3, 20_000)
if family == "dt":
    from seqrl.families.dt.config import TrainConfig as Config
    extra = dict(model="continuous")
else:
    from seqrl.families.tt.config import TTConfig as Config
    extra = dict(num_bins=32)
common = dict(dataset="synthetic", run_dir=run_dir, warmup_steps=1, log_every=10**9, checkpoint_every=10**9,
              checkpoint_minutes=0, progress=False, device="cpu", precision="fp32", seed=0)
times = []
class Clock:
    def __init__(self): self.t = None
clock = Clock()
def prepare(model):
    original = model.loss_terms
    def timed(batch):
        now = time.perf_counter()
        if clock.t is not None:
            times.append(now - clock.t)
        clock.t = now
        return original(batch)
    model.loss_terms = timed
with torch_threads(threads):
    train(Config(steps=steps + 4, **common, **extra, **sizes), dataset=data, prepare_model=prepare)
print(json.dumps({"seconds_per_step": float(np.median(times[3:]))}))
"""


def spin(stop: multiprocessing.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def one_case(threads: int, family: str, sizes: dict, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(threads), family, json.dumps(sizes), str(steps), str(Path(tmp) / "run"),
             str(Path(__file__).parent)],
            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        )
    if out.returncode:
        raise SystemExit(f"bench/threads.py: a case failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 1, 2], help="busy processes beside the case")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per case")
    parser.add_argument("--rounds", type=int, default=2, help="subprocess runs per case (median)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    info = {**machine(), "command": command_line(), "steps": args.steps, "rounds": args.rounds,
            "load_before": os.getloadavg()}
    print_header("Training step time against torch threads and machine load", info)
    rows, results = [], []
    for busy in args.busy:
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        time.sleep(1.0 if busy else 0.0)
        try:
            for name in args.models:
                family, sizes = MODELS[name]
                per = {t: median([one_case(t, family, sizes, args.steps) for _ in range(args.rounds)])
                       for t in args.threads}
                base = per[args.threads[0]]
                rows.append([busy, name] + [f"{1000 * per[t]:.1f}" for t in args.threads]
                            + [f"{per[t] / base:.2f}" for t in args.threads[1:]])
                results.append({"busy": busy, "model": name, "ms_per_step": {t: 1000 * per[t] for t in args.threads}})
                print(rows[-1], flush=True)
        finally:
            stop.set()
            for p in spinners:
                p.join()
    print_table(["busy processes", "model"] + [f"{t} thread(s) ms/step" for t in args.threads]
                + [f"{t} threads / {args.threads[0]}" for t in args.threads[1:]], rows)
    dump_json(args.json, {**info, "results": results})


if __name__ == "__main__":
    main()
