"""Milliseconds per planning step per environment, and peak memory, of the TT's beam search.

Compares, at the authors' default settings (H 15, beam 128, expansion 2, context 5) and at the
CPU-scale settings (H 5, beam 16, expansion 2):
- (a) the reference planner, which re-encodes the window for every token as the authors' does
  (`use_cache=False`, the same function), for 1 environment;
- (b) seqrl's planner (key/value cache) for 1, 8 and 25 environments planned in one batch;
- (c) faster-trajectory-transformer's planner (Howuhh's re-implementation with a cache,
  ../shared/peers, imported at run time: bench/_peers.py) on the same weights and settings:
  its `beam_plan` for 1 environment, its `batch_beam_plan` for 8.
Every case runs in a fresh subprocess so its peak RSS is its own (CPU; on CUDA the peak
allocated memory). On the CPU each case runs on one torch thread (`--threads`) and the table
reports its process CPU time, which other processes sharing the machine inflate far less than
wall-clock time (the wall-clock time is in the JSON too). Plans are checked equal: (a) against (b) for one environment, and the first
environment of each batch against planning it alone.

The model is the authors' default size (width 128, 4 layers, 4 heads, 100 bins) with random
weights, on Hopper's dimensions (11 + 3 + 2 = 16 tokens per transition): planning cost does not
depend on what the weights learned. Its head bias is zero (faster-TT's head has none); seqrl
masks value tokens from attention, as the authors' model does.

faster-TT's rows. Its GPT is built with seqrl's weights through an explicit key map that checks
every shape (`_peers.faster_tt_gpt`): the token table is re-laid from seqrl's per-dimension
offsets (`discretizer.offsets`) to faster-TT's `dim * 100 + bin`, plan tokens are converted both
ways, its fused attention projection takes seqrl's `qkv` (same q, k, v order), its per-position
head seqrl's `head_weight`, its position table seqrl's 159 positions (its `seq_len`), and its
planner scores candidates with seqrl's bin values. It samples actions from the whole
distribution (its `k_act=None`, the default of its configs; it has no `cdf` filter, seqrl's rows
drop the least likely 60% of the mass as the authors' do); its planner's cost does not depend on
that. Its cache differs from seqrl's in what it computes, not only in cost (quantified below the
tables, greedy plans on the same weights):
- it caches each layer's normalised inputs and re-projects every cached key and value for
  every new token;
- its one-token steps attend without the value mask (its full forward keeps it), so from the
  second generated token on its logits are neither seqrl's masked ones nor the unmasked ones;
- its window is not cropped to the planner's context (5 transitions, 79 tokens): the cache grows
  to the model's 159 positions, then drops 16 entries at a time, keeping their stale positions.
Where neither masks values (seqrl's `mask_values=False`; a copy of faster-TT with the mask taken
out of its full forward too) and both see the same window (10 transitions, no crop within H 5),
the greedy plans agree token for token: the map is exact, the faults above are the difference.

    python bench/plan.py --repeats 1           # both settings, the tables of docs/benchmarks.md (17 min on 2 cores)
    python bench/plan.py --faster-tt-envs      # without faster-TT (no rows, no agreement checks)
    python bench/plan.py --settings cpu --envs 1 8 25 --json out.json
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _common import dump_json, machine, print_header, print_table  # noqa: E402

SETTINGS = {
    "default": dict(horizon=15, beam_width=128, expansion=2, context_transitions=5),
    "cpu": dict(horizon=5, beam_width=16, expansion=2, context_transitions=5),
}
LABELS = {"reference": "reference (re-encode)", "seqrl": "seqrl (cached)", "faster-tt": "faster-TT (its cache)"}
GREEDY = dict(action_cdf=None, action_top_k=1)  # deterministic actions: seqrl's top-1, faster-TT's k_act=1


def build(obs_dim: int, act_dim: int, seed: int = 0):
    import numpy as np

    from seqrl.data.tokenizer import TorchActionTokenizer
    from seqrl.families.tt.config import TTConfig
    from seqrl.families.tt.data import fit_discretizer
    from seqrl.families.tt.model import TrajectoryTransformer
    from seqrl.models.spec import DataSpec

    rng = np.random.default_rng(seed)
    T = obs_dim + act_dim + 2
    joined = rng.normal(size=(20_000, T)).astype(np.float32)
    discretizer = fit_discretizer(joined, 100, "quantile")
    spec = DataSpec(dataset="bench", env_id=None, obs_dim=obs_dim, act_dim=act_dim, max_timestep=1000,
                    state_mean=(0.0,) * obs_dim, state_std=(1.0,) * obs_dim, action_low=(-1.0,) * act_dim,
                    action_high=(1.0,) * act_dim, rtg_scale=1.0, targets=(), ref_min_score=None, ref_max_score=None)
    torch.manual_seed(seed)
    model = TrajectoryTransformer(TTConfig(dataset="bench"), spec, TorchActionTokenizer(discretizer)).eval()
    with torch.no_grad():
        model.head_bias.zero_()  # faster-TT's head has no bias (seqrl's starts at zero anyway)
    # A prefix as the policy builds it: 5 context transitions, then the current observation.
    dims = torch.arange(5 * T + obs_dim) % T
    local = torch.randint(0, 10_000, (25, len(dims)), generator=torch.Generator().manual_seed(seed))
    prefix = local % discretizer.bins_per_feature[dims] + torch.from_numpy(discretizer.offsets.copy())[dims]
    return model, prefix


def faster_plan(model, peer, discretizer, prefix: torch.Tensor, settings: dict, k_act: int | None) -> torch.Tensor:
    """faster-TT's plan of every row of `prefix` (seqrl ids) as seqrl's `beam_plan` returns it:
    (n, horizon, T) seqrl ids, the current observation first. Its `beam_plan` for one row, its
    `batch_beam_plan` for several; observation, reward and value tokens greedy (k 1) as seqrl's."""
    from _peers import faster_tt, faster_tt_tokens, seqrl_tokens

    beam = faster_tt().beam
    plan = beam.beam_plan if len(prefix) == 1 else beam.batch_beam_plan
    local = plan(peer, discretizer, faster_tt_tokens(model, prefix), steps=settings["horizon"],
                 beam_width=settings["beam_width"], sample_expand=settings["expansion"],
                 discount=settings.get("discount", 0.99), context_size=settings["context_transitions"],
                 k_obs=1, k_reward=1, k_act=k_act)
    planned = seqrl_tokens(model, local.view(len(prefix), -1), first_dim=model.observation_dim)
    planned = torch.cat([prefix[:, -model.observation_dim :], planned], dim=1)
    return planned.view(len(prefix), settings["horizon"], model.transition_dim)


def case(args: tuple) -> dict:
    """One measurement, in its own process: seconds per plan, peak memory, the plan of env 0."""
    settings_name, n_envs, planner, repeats, obs_dim, act_dim, device, threads = args
    from seqrl.families.tt.planner import PlannerSettings, beam_plan

    if threads:
        torch.set_num_threads(threads)
    model, prefix = build(obs_dim, act_dim)
    model.to(device)
    prefix = prefix[:n_envs].to(device)
    if planner == "faster-tt":
        from _peers import faster_tt_discretizer, faster_tt_gpt

        peer, discretizer = faster_tt_gpt(model).to(device), faster_tt_discretizer(model)
        discretizer.to(device)

        def plan_all(generators):
            return faster_plan(model, peer, discretizer, prefix, SETTINGS[settings_name], k_act=None)
    else:
        settings = PlannerSettings(**SETTINGS[settings_name], use_cache=planner == "seqrl")

        def plan_all(generators):
            return beam_plan(model, prefix, settings, generators)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times, plan, crops = [], [], None, 0
    for _ in range(repeats):
        generators = [torch.Generator(device=device).manual_seed(i) for i in range(n_envs)]
        torch.manual_seed(0)  # faster-TT samples from torch's global generator
        start, cpu_start = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(record=True) as caught:  # faster-TT warns at every crop of its cache
            warnings.simplefilter("always")
            plan = plan_all(generators)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        crops = sum("cache exceeded" in str(w.message) for w in caught)
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
               else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024)
    return {"settings": settings_name, "envs": n_envs, "planner": LABELS[planner],
            "wall_seconds": min(times), "cpu_seconds": min(cpu_times),
            "seconds": min(times) if device.startswith("cuda") else min(cpu_times),
            "peak_mb": peak_mb, "plan0": plan[0].cpu().tolist(), "cache_crops_per_plan": crops}


# --------------------------------------------------------------------------- faster-TT against seqrl
def cached_logits(peer, tokens: torch.Tensor, context: int) -> torch.Tensor:
    """faster-TT's logits as its planner computes them: one forward over the first `context`
    tokens, then its cache one token at a time. (B, L - context + 1, bins): at positions context-1 .. L-1."""
    logits, state = peer(tokens[:, :context])
    out = [logits[:, -1]]
    for position in range(context, tokens.shape[1]):
        logits, state = peer(tokens[:, position : position + 1], state=state)
        out.append(logits[:, -1])
    return torch.stack(out, dim=1)


def without_value_mask(peer):
    """A copy of faster-TT's GPT whose full forward attends to value tokens too (causal mask only),
    as its one-token cached steps already do: a model that never masks values, like seqrl's
    with `mask_values=False`."""
    import copy

    peer = copy.deepcopy(peer)
    for block in peer.blocks:
        n = block.attn_mask.shape[0]
        block.attn_mask.copy_(~torch.tril(torch.ones(n, n, dtype=torch.bool)))
    return peer


@torch.no_grad()
def logit_checks(model, peer, context: int, rows: int = 4) -> dict:
    """Max |logit difference| on one full window (the model's 159 positions), both ways."""
    from _peers import faster_tt_tokens

    L, T = model.block_size, model.transition_dim
    dims = torch.arange(L) % T
    bins = torch.randint(0, 10_000, (rows, L), generator=torch.Generator().manual_seed(1))
    tokens = bins % model.discretizer.bins_per_feature[dims] + model.discretizer.offsets[dims]
    local = faster_tt_tokens(model, tokens)
    ours = {}
    for masked in (True, False):
        model.mask_values = masked
        ours[masked] = model(tokens)
    model.mask_values = True
    full, cached = peer(local)[0], cached_logits(peer, local, context)
    open_cached = cached_logits(without_value_mask(peer), local, context)

    def gap(a, b):
        return (a - b).abs().max().item()
    return {
        "window": L, "context": context, "rows": rows,
        "full_vs_masked": gap(full, ours[True]), "full_vs_unmasked": gap(full, ours[False]),
        "cached_vs_masked": gap(cached, ours[True][:, context - 1 :]),
        "cached_vs_unmasked": gap(cached, ours[False][:, context - 1 :]),
        "cached_no_value_mask_vs_unmasked": gap(open_cached, ours[False][:, context - 1 :]),
    }


def token_name(model, k: int) -> str:
    """The k-th planned token after the current observation, as 't<transition> <dimension>'."""
    obs, act = model.observation_dim, model.action_dim
    t, dim = divmod(obs + k, model.transition_dim)
    name = f"s{dim}" if dim < obs else f"a{dim - obs}" if dim < obs + act else "r" if dim == obs + act else "V"
    return f"t{t} {name}"


def compare_plans(model, ours: torch.Tensor, theirs: torch.Tensor) -> dict:
    """Agreement of (n, H, T) plans, over the tokens planned after the current observation."""
    obs, act = model.observation_dim, model.action_dim
    same = ours.flatten(1)[:, obs:] == theirs.flatten(1)[:, obs:]  # (n, H*T - obs)
    first = [None if row.all() else int((~row).nonzero()[0]) for row in same]
    return {
        "tokens": same.shape[1], "agreement": same.float().mean().item(),
        "first_action_agrees": int((ours[:, 0, obs : obs + act] == theirs[:, 0, obs : obs + act]).all(-1).sum()),
        "first_divergence": [None if k is None else token_name(model, k) for k in first],
        "first_divergence_index": first,
    }


# (seqrl masks values, faster-TT as published (else: value mask taken out), window in transitions)
# The first pair is how each is meant to plan; the others take its faults out one at a time.
VARIANTS = [(True, True, 5), (False, False, 10), (False, False, 5), (True, True, 10)]


def agreement(args: tuple) -> dict:
    """Greedy plans (top-1 actions) of seqrl and faster-TT on the same weights, in its own process.

    With top-1 actions every beam holds copies of one trajectory, so the plans differ only where
    the planners' logits lead to another argmax. Pairs (VARIANTS): as each plans (seqrl as the
    authors: values masked, 5-transition window; faster-TT as published, given the same context;
    seqrl's reference, which equals its cached plans, checked, at CPU scale); then with nothing
    to differ on (seqrl unmasked, faster-TT with the value mask taken out of its full forward
    too, both on the model's whole 10-transition window: its cache is exact until it is full,
    at 159 positions); then only the window differing (values unmasked, window 5: seqrl crops to
    79 tokens, faster-TT's cache grows); then only the value mask (faster-TT as published,
    window 10). At CPU scale `n_prefixes` environments; at the authors' settings one, the first
    two pairs only, seqrl cached (faster-TT needs about a minute per plan there).
    """
    names, n_prefixes, obs_dim, act_dim, threads = args
    from _peers import faster_tt_discretizer, faster_tt_gpt
    from seqrl.families.tt.planner import PlannerSettings, beam_plan

    if threads:
        torch.set_num_threads(threads)
    model, prefix = build(obs_dim, act_dim)
    peers = {True: faster_tt_gpt(model)}
    peers[False] = without_value_mask(peers[True])
    discretizer = faster_tt_discretizer(model)
    context = (SETTINGS["cpu"]["context_transitions"] - 1) * model.transition_dim + model.observation_dim
    out = {"logits": logit_checks(model, peers[True], context), "plans": []}
    for name in names:
        cpu = name == "cpu"
        n = n_prefixes if cpu else 1
        for i, (masked, published, window) in enumerate(VARIANTS if cpu else VARIANTS[:2]):
            settings = {**SETTINGS[name], "context_transitions": window}
            generators = [torch.Generator().manual_seed(k) for k in range(n)]
            model.mask_values = masked
            ours = beam_plan(model, prefix[:n], PlannerSettings(**settings, **GREEDY), generators)
            row = {"settings": name, "envs": n, "window": window,
                   "seqrl": "values masked" if masked else "values unmasked",
                   "faster_tt": "as published" if published else "value mask taken out"}
            if cpu and i == 0:
                reference = beam_plan(model, prefix[:n], PlannerSettings(**settings, **GREEDY, use_cache=False), generators)
                row["seqrl_cached_equals_reference"] = bool(torch.equal(ours, reference))
                ours = reference
            model.mask_values = True
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its cache-crop warning
                theirs = faster_plan(model, peers[published], discretizer, prefix[:n], settings, k_act=1)
            out["plans"].append({**row, **compare_plans(model, ours, theirs)})
    return out


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=["cpu", "default"], choices=sorted(SETTINGS))
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 8, 25])
    parser.add_argument("--faster-tt-envs", nargs="*", type=int, default=[1, 8],
                        help="faster-TT's rows (none: leave faster-TT out)")
    parser.add_argument("--max-envs-default", type=int, default=8,
                        help="largest batch at the default settings (25 x beam 128 x expansion 2 needs minutes per step on 2 cores)")
    parser.add_argument("--agree-envs", type=int, default=8,
                        help="prefixes whose greedy plans are compared with faster-TT's at CPU scale (1 at the default settings)")
    parser.add_argument("--repeats", type=int, default=2, help="plans per case (the fastest counts)")
    parser.add_argument("--obs-dim", type=int, default=11)
    parser.add_argument("--act-dim", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per case (0: torch's default)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    info = machine()
    cases = []
    for name in args.settings:
        common = (args.obs_dim, args.act_dim, args.device, args.threads)
        cases.append((name, 1, "reference", 1, *common))
        for planner, envs in (("seqrl", args.envs), ("faster-tt", args.faster_tt_envs)):
            for n in envs:
                if name == "default" and n > args.max_envs_default:
                    continue
                cases.append((name, n, planner, args.repeats if n == 1 else 1, *common))
    ctx = mp.get_context("spawn")
    results = []
    for c in cases:
        with ctx.Pool(1) as pool:
            results.append(pool.apply(case, (c,)))
        r = results[-1]
        print(f"  {r['settings']:>7} {r['planner']:<22} envs={r['envs']:<3} {r['seconds']:.2f} s/plan "
              f"(wall {r['wall_seconds']:.2f} s)", file=sys.stderr)
    agree = None
    if args.faster_tt_envs:
        with ctx.Pool(1) as pool:
            agree = pool.apply(agreement, ((args.settings, args.agree_envs, args.obs_dim, args.act_dim, args.threads),))
    rows, summary, checks = [], [], []
    for name in args.settings:
        mine = [r for r in results if r["settings"] == name]
        reference = next(r for r in mine if r["planner"] == LABELS["reference"])
        ref_ms = reference["seconds"] * 1000
        for r in mine:
            per_env = r["seconds"] * 1000 / r["envs"]
            rows.append([name, r["planner"], r["envs"], round(r["seconds"] * 1000, 1), round(per_env, 1),
                         round(ref_ms / per_env, 1), round(r["peak_mb"], 1)])
            if r["planner"] == LABELS["seqrl"]:
                checks.append((name, r["envs"], r["plan0"] == reference["plan0"]))
        for n in sorted({r["envs"] for r in mine}):
            ms = {key: next((r["seconds"] * 1000 / n for r in mine if r["planner"] == label and r["envs"] == n), None)
                  for key, label in LABELS.items()}
            ours, theirs = ms["seqrl"], ms["faster-tt"]
            summary.append([name, n, ours, ref_ms, theirs, None if ours is None else ref_ms / ours,
                            None if ours is None or theirs is None else theirs / ours])
    s = SETTINGS
    print_header("TT beam-search planning: ms per planning step", info)
    print("settings: " + "; ".join(f"{k}: H {v['horizon']}, beam {v['beam_width']}, expansion {v['expansion']}, "
                                     f"context {v['context_transitions']}" for k, v in s.items() if k in args.settings))
    print(f"model: width 128, 4 layers, 4 heads, 100 bins, obs {args.obs_dim} + act {args.act_dim} (T = "
          f"{args.obs_dim + args.act_dim + 2}), random weights, head bias zero, value tokens masked from attention\n")
    clock = "wall-clock" if args.device.startswith("cuda") else f"CPU time, {args.threads or 'default'} thread(s)"
    print(f"times: {clock}; peak MB: the case's own peak resident memory above the model's")
    if args.faster_tt_envs:
        print("faster-TT: its beam_plan (1 env) / batch_beam_plan (several) on seqrl's weights; actions sampled from the\n"
              "whole distribution (its k_act=None; seqrl's rows drop the least likely 60% of the mass); its one-token\n"
              "steps attend to value tokens (its full forward does not): see 'faster-TT against seqrl' below")
    print()
    print_table(["settings", "planner", "envs", "ms per step", "ms per step per env", "x reference per env",
                 "peak MB"], rows)
    print()
    print("per environment (the reference: its 1-environment time); x: how many times faster seqrl's cached planner is\n")
    print_table(["settings", "envs", "seqrl cached ms/env", "reference ms/env", "faster-TT ms/env", "seqrl x reference",
                 "seqrl x faster-TT"], summary)
    print()
    for name, n, equal in checks:
        print(f"plan of env 0 ({name}, {n} envs) equals the reference's: {equal}")
    for r in results:
        if r["cache_crops_per_plan"]:
            print(f"faster-TT ({r['settings']}, {r['envs']} envs): its cache outgrew the model's positions and was "
                  f"cropped {r['cache_crops_per_plan']} times in the plan")
    if agree is not None:
        report_agreement(agree)
    dump_json(args.json, {"machine": info, "args": vars(args), "results": results, "checks": checks,
                          "faster_tt_agreement": agree})
    if not all(equal for _, _, equal in checks):
        raise SystemExit("plans differ")
    if agree is not None and not all(p.get("seqrl_cached_equals_reference", True) for p in agree["plans"]):
        raise SystemExit("greedy plans differ between seqrl's cached planner and its reference")


def report_agreement(agree: dict) -> None:
    g = agree["logits"]
    print(f"\n### faster-TT against seqrl, same weights\n\n"
          f"logits, max |difference| over {g['rows']} windows of {g['window']} tokens:\n"
          f"- faster-TT's full forward vs seqrl with values masked: {g['full_vs_masked']:.1e}; "
          f"vs seqrl with values unmasked: {g['full_vs_unmasked']:.1e}\n"
          f"- faster-TT's cache (a forward over the first {g['context']} tokens, then one token at a time) vs seqrl "
          f"masked: {g['cached_vs_masked']:.1e}; vs unmasked: {g['cached_vs_unmasked']:.1e}\n"
          f"- the same with the value mask taken out of faster-TT's full forward too, vs seqrl unmasked: "
          f"{g['cached_no_value_mask_vs_unmasked']:.1e}\n\n"
          "greedy plans (top-1 actions: seqrl action_cdf=None, action_top_k=1; faster-TT k_act=1), the tokens after\n"
          "the current observation. seqrl: its reference (use_cache=False) at CPU scale for the first pair, its cached\n"
          "planner otherwise; faster-TT 'as published', or with the value mask taken out of its full forward (its\n"
          "one-token steps have none); window: the context both are given, in transitions (5: seqrl's window is 79\n"
          "tokens, faster-TT's cache grows past it; 10: the model's whole 159 positions for both). First divergence\n"
          "per env: t<planned transition> <s: state dim, a: action dim, r, V>; '-': the plans agree throughout.\n")
    rows = []
    for p in agree["plans"]:
        rows.append([p["settings"], p["seqrl"], p["faster_tt"], p["window"], p["envs"],
                     f"{p['agreement']:.1%} of {p['tokens']}", f"{p['first_action_agrees']}/{p['envs']}",
                     ", ".join(d or "-" for d in p["first_divergence"])])
    print_table(["settings", "seqrl", "faster-TT", "window", "envs", "tokens agree", "first action agrees",
                 "first divergence"], rows)
    for p in agree["plans"]:
        if "seqrl_cached_equals_reference" in p:
            print(f"\nseqrl's cached greedy plans ({p['settings']}, {p['envs']} envs) equal its reference's: "
                  f"{p['seqrl_cached_equals_reference']}")


if __name__ == "__main__":
    main()
