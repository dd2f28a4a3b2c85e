"""Milliseconds per `DecisionTransformer.act` call for the spread variants: with the key/value
cache (one full pass, then one single-token pass per further action feature) against re-running
the whole context for every feature (`use_cache=False`, the code before the cache).

    . .venv/bin/activate
    python bench/act_cache.py --repeats 5 --json docs/bench-results/act_cache.json

Fresh models (3 layers, 1 head, 256 uniform bins), batch 100 of full random contexts, one torch
thread; hopper-like (11 observation, 3 action features) and halfcheetah-like (17, 6) shapes,
width 64 and 128, context 10 and 20. Rounds alternate cached and uncached calls, so load bursts
hit both alike; the speed-up is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from _common import dump_json, machine, print_header, print_table
from seqrl.loading import build_model
from seqrl.families.dt.config import TrainConfig
from seqrl.data.tokenizer import ActionTokenizer
from seqrl.models.spec import DataSpec

BATCH = 100


def model_for(variant: str, obs: int, act: int, width: int, context: int) -> torch.nn.Module:
    spec = DataSpec(dataset="synthetic", env_id=None, obs_dim=obs, act_dim=act, max_timestep=1000,
                    state_mean=(0.0,) * obs, state_std=(1.0,) * obs, action_low=(-1.0,) * act,
                    action_high=(1.0,) * act, rtg_scale=0.001, targets=(1.0,), ref_min_score=None, ref_max_score=None)
    cfg = TrainConfig(dataset="synthetic", model=variant, embed_dim=width, context_len=context)
    tokenizer = None
    if cfg.uses_tokenizer:
        samples = np.random.default_rng(0).uniform(-1, 1, size=(10_000, act)).astype(np.float32)
        tokenizer = ActionTokenizer.fit(samples, cfg.num_bins, strategy="uniform", low=-np.ones(act), high=np.ones(act))
    torch.manual_seed(0)
    return build_model(cfg, spec, tokenizer).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--inner", type=int, default=5, help="calls per round and loop")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    info = machine()
    rows, results = [], []
    for variant in ("tokenized-spread", "continuous-spread"):
        for obs, act in ((11, 3), (17, 6)):
            for width in (64, 128):
                for context in (10, 20):
                    model = model_for(variant, obs, act, width, context)
                    g = torch.Generator().manual_seed(0)
                    inputs = (torch.randn(BATCH, context, 1, generator=g), torch.randn(BATCH, context, obs, generator=g),
                              torch.rand(BATCH, context, act, generator=g) * 2 - 1,
                              torch.arange(context).repeat(BATCH, 1) + 100)
                    lengths = torch.full((BATCH,), context)
                    with torch.no_grad():
                        cached = model.act(*inputs, lengths=lengths)  # also the warm-up
                        uncached = model.act(*inputs, lengths=lengths, use_cache=False)
                        times: dict[bool, list[float]] = {True: [], False: []}
                        for _ in range(args.repeats):
                            for use_cache in (True, False):
                                start = time.perf_counter()
                                for _ in range(args.inner):
                                    model.act(*inputs, lengths=lengths, use_cache=use_cache)
                                times[use_cache].append((time.perf_counter() - start) / args.inner * 1e3)
                    ratio = statistics.median(u / c for c, u in zip(times[True], times[False]))
                    diff = float((cached - uncached).abs().max())
                    rows.append([variant, f"{obs}/{act}", width, context, f"{statistics.median(times[True]):.1f}",
                                 f"{statistics.median(times[False]):.1f}", f"{ratio:.2f}", f"{diff:.1e}"])
                    results.append(dict(zip(("variant", "obs_act", "width", "context", "cached_ms", "uncached_ms",
                                             "speedup", "max_abs_diff"), rows[-1])))
    print_header("act with and without the key/value cache, batch 100", info)
    print_table(["variant", "obs/act", "width", "context", "cached ms", "uncached ms", "speed-up", "max |Δ action|"], rows)
    dump_json(args.json, {"machine": info, "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
