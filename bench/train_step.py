"""One Decision Transformer training step: seqrl's four action representations against Hugging
Face's `DecisionTransformerModel` and d3rlpy's `DecisionTransformer` at a matched configuration.

    . .venv-bench/bin/activate          # peers live in their own venv (docs/benchmarks.md)
    python bench/train_step.py          # the table in docs/benchmarks.md
    python bench/train_step.py --precisions fp32 --loss-steps 0 --json out.json

A step is what every implementation's training loop does per batch: forward, loss, backward,
clip the gradient norm to 0.25, AdamW step (lr 1e-4, weight decay 1e-4), on one batch prepared
beforehand (batch sampling is benchmarked in bench/sampler.py). Configuration shared by every
row (CORL's DT): batch 64, context 20, width 128, 3 layers, 1 head, MLP 4x width, GELU, dropout
0.1 on embeddings / attention / residuals, hopper-like obs 11 and act 3. How each peer is
matched, and what still differs, is in `build_hf` and `build_d3rlpy` and docs/benchmarks.md.

Reported per row: ms/step (median of interleaved rounds), its spread (IQR/median), speed-up
over each peer in the same precision, FLOPs per step (forward+backward, counted by
torch.utils.flop_counter.FlopCounterMode), and the achieved GFLOP/s as a fraction of a 2048^2
matmul's measured in the same run. `--loss-steps N` also trains every fp32 model N steps on the
same batches of synthetic hopper-shaped data and reports a common held-out action MSE, so a
faster step is not bought with a worse model.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from contextlib import nullcontext
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from _ablations import all_positions
from _common import dump_json, interleaved, machine, matmul_gflops, median, print_header, print_table, spread
from seqrl.loading import build_model
from seqrl.families.dt.config import VARIANTS, TrainConfig
from seqrl.data.sampler import Batch, ContextSampler
from seqrl.data.tokenizer import ActionTokenizer
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.models.spec import DataSpec

PEERS = ("hf", "d3rlpy")


# --------------------------------------------------------------------------- data
def synthetic_dataset(obs_dim: int, act_dim: int, transitions: int, seed: int = 0) -> TrajectoryDataset:
    """Hopper-shaped episodes with a learnable policy: a = clip(tanh(s W) + noise, -1, 1).

    Episodes of 50..400 steps of a random stable linear system driven by the actions; rewards
    favour one state direction, so returns-to-go carry information. Only shapes and scale
    matter for timing; the structure makes the held-out loss comparison meaningful.
    """
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(obs_dim, act_dim)) / math.sqrt(obs_dim)
    A = np.eye(obs_dim) * 0.95 + rng.normal(size=(obs_dim, obs_dim)) * 0.02
    Bm = rng.normal(size=(act_dim, obs_dim)) * 0.1
    episodes, total = [], 0
    while total < transitions:
        t = int(rng.integers(50, 400))
        obs = np.zeros((t + 1, obs_dim))
        obs[0] = rng.normal(size=obs_dim)
        actions = np.zeros((t, act_dim))
        for i in range(t):
            actions[i] = np.clip(np.tanh(obs[i] @ W) + rng.normal(size=act_dim) * 0.1, -1, 1)
            obs[i + 1] = obs[i] @ A + actions[i] @ Bm + rng.normal(size=obs_dim) * 0.05
        rewards = 1.0 + obs[1:, 0] - 0.1 * (actions**2).sum(1)
        terminated = np.zeros(t, bool)
        terminated[-1] = True
        episodes.append(dict(observations=obs.astype(np.float32), actions=actions.astype(np.float32),
                             rewards=rewards, terminations=terminated, truncations=np.zeros(t, bool)))
        total += t
    meta = {"name": "synthetic-hopper", "env_id": None, "action_low": [-1.0] * act_dim, "action_high": [1.0] * act_dim}
    return TrajectoryDataset.from_episodes(episodes, meta)


# --------------------------------------------------------------------------- implementations
@dataclasses.dataclass
class Impl:
    """One row's model: `step(batch)` is a full training step, `loss(batch)` its loss alone
    (for FLOP counting), `predict(batch)` actions (B, T, act_dim) in eval mode (for the held-out MSE)."""

    name: str
    step: Callable[[Batch], Any]
    loss: Callable[[Batch], torch.Tensor]
    predict: Callable[[Batch], torch.Tensor]
    parameters: int
    note: str = ""


def autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def build_seqrl(variant: str, args, dataset: TrajectoryDataset, spec: DataSpec, precision: str, compile: bool = False,
                before: str | None = None) -> Impl:
    """seqrl as `seqrl train` runs it (train.py's loop minus sampling, logging and checkpoints).

    `before` rebuilds it as it was before one speed change (see --ablations): "all-positions"
    (the last block computes every position) or "loop-adamw" (torch's default AdamW on CPU).
    """
    cfg = TrainConfig(dataset="synthetic-hopper", model=variant, embed_dim=args.embed, n_layers=args.layers,
                      n_heads=args.heads, context_len=args.context, dropout=args.dropout, batch_size=args.batch)
    tokenizer = ActionTokenizer.fit(dataset.actions, cfg.num_bins, low=-np.ones(args.act_dim), high=np.ones(args.act_dim)) if cfg.uses_tokenizer else None
    torch.manual_seed(0)
    model = build_model(cfg, spec, tokenizer)
    if before == "all-positions":
        all_positions(model)
    from seqrl.train import make_optimizer

    if before == "loop-adamw":
        optimizer = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.learning_rate, betas=cfg.betas)
    else:
        optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    params = [p for p in model.parameters() if p.requires_grad]
    loss_fn = torch.compile(model.loss) if compile else model.loss

    def loss(batch: Batch) -> torch.Tensor:
        with autocast(precision):
            return loss_fn(batch)

    def step(batch: Batch) -> torch.Tensor:
        model.train()
        value = loss(batch)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        return value.detach()

    @torch.no_grad()
    def predict(batch: Batch) -> torch.Tensor:
        model.eval()
        hidden, _ = model(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
        prediction = model.codec.head(hidden)
        return model.codec.head.decode(prediction, mode="argmax")

    name = f"seqrl {variant}" + (" (torch.compile)" if compile else "") + (f" (before: {before})" if before else "")
    return Impl(name, step, loss, predict, sum(p.numel() for p in model.parameters()))


def build_hf(args, precision: str) -> Impl:
    """transformers' DecisionTransformerModel with the same width/depth/heads/dropout and GELU.

    Its blocks are GPT-2's (Conv1D layers, pre-LayerNorm, fused qkv); the DT passes position ids
    of zero, so GPT-2's position table only adds one learned constant vector (no per-token
    positions, as in seqrl). It also computes state and return predictions seqrl does not.
    Loss: MSE on the tanh-squashed actions over real steps, as in HF's DT training example.
    """
    from _peers import hf_decision_transformer

    torch.manual_seed(0)
    model = hf_decision_transformer(obs_dim=args.obs_dim, act_dim=args.act_dim, embed=args.embed, layers=args.layers,
                                    heads=args.heads, dropout=args.dropout, max_ep_len=1001)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "ln" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "ln" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4)

    def forward(batch: Batch) -> torch.Tensor:
        out = model(states=batch.states, actions=batch.actions, rewards=None, returns_to_go=batch.returns_to_go,
                    timesteps=batch.timesteps, attention_mask=batch.mask.long(), return_dict=True)
        return out.action_preds  # (B, T, act_dim)

    def loss(batch: Batch) -> torch.Tensor:
        with autocast(precision):
            preds = forward(batch)
        mask = batch.mask
        return torch.nn.functional.mse_loss(preds.float()[mask], batch.actions[mask])

    def step(batch: Batch) -> torch.Tensor:
        model.train()
        value = loss(batch)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        return value.detach()

    @torch.no_grad()
    def predict(batch: Batch) -> torch.Tensor:
        model.eval()
        return forward(batch).float()

    attn = getattr(model.config, "_attn_implementation", "?")
    return Impl("HF DecisionTransformerModel", step, loss, predict, sum(p.numel() for p in model.parameters()), f"attention={attn}")


def build_d3rlpy(args, precision: str) -> Impl:
    """d3rlpy's DecisionTransformer (its own GPT-2-style blocks), matched: state encoder one
    Linear(obs, width) without activation (d3rlpy's default is a 256-256 MLP), GELU instead of
    its default ReLU, AdamW(weight decay 1e-4, clip 0.25). Steps go through d3rlpy's own
    `impl.update` (its loss: squared error summed over action features, mean over all B*T
    positions with padding zeroed). d3rlpy adds a learned timestep table like seqrl's, and
    separate q/k/v Linears plus a hand-written attention instead of a fused one.
    """
    import d3rlpy
    from _peers import to_d3rlpy_batch
    from d3rlpy.torch_utility import TorchTrajectoryMiniBatch

    config = d3rlpy.algos.DecisionTransformerConfig(
        batch_size=args.batch, context_size=args.context, learning_rate=1e-4, max_timestep=1000,
        encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=[args.embed], exclude_last_activation=True),
        optim_factory=d3rlpy.optimizers.AdamWFactory(weight_decay=1e-4, clip_grad_norm=0.25),
        num_heads=args.heads, num_layers=args.layers, attn_dropout=args.dropout, resid_dropout=args.dropout,
        embed_dropout=args.dropout, activation_type="gelu",
    )
    torch.manual_seed(0)
    algo = config.create(device="cpu:0")
    algo.create_impl((args.obs_dim,), args.act_dim)
    impl = algo.impl
    transformer = impl.modules.transformer

    converted: dict[int, TorchTrajectoryMiniBatch] = {}

    def cached(batch: Batch) -> TorchTrajectoryMiniBatch:
        # Convert a batch once (conversion is not part of the step being timed).
        key = id(batch)
        if key not in converted:
            converted.clear()
            converted[key] = to_d3rlpy_batch(batch)
        return converted[key]

    def loss(batch: Batch) -> torch.Tensor:
        with autocast(precision):
            return impl.compute_loss(cached(batch))

    def step(batch: Batch) -> Any:
        with autocast(precision):
            return impl.update(cached(batch), 0)

    return Impl("d3rlpy DecisionTransformer", step, loss, lambda b: _d3rlpy_predict(transformer, cached(b)),
                sum(p.numel() for p in transformer.parameters()))


@torch.no_grad()
def _d3rlpy_predict(transformer: torch.nn.Module, b: Any) -> torch.Tensor:
    """All T action predictions without dropout. In eval mode d3rlpy's forward drops the last
    token (inference of the next action only), so run it in train mode with dropout disabled."""
    dropouts = [m for m in transformer.modules() if isinstance(m, torch.nn.Dropout)]
    saved = [m.p for m in dropouts]
    for m in dropouts:
        m.p = 0.0
    transformer.train()
    try:
        return transformer(b.observations, b.actions, b.returns_to_go, b.timesteps, 1 - b.masks).float()
    finally:
        for m, p in zip(dropouts, saved):
            m.p = p


def count_flops(impl: Impl, batch: Batch) -> int:
    """FLOPs of forward + backward (matmuls, attention; elementwise ops are not counted)."""
    counter = FlopCounterMode(display=False)
    with counter:
        impl.loss(batch).backward()
    return counter.get_total_flops()


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--context", type=int, default=20)
    parser.add_argument("--embed", type=int, default=128)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--obs-dim", type=int, default=11)
    parser.add_argument("--act-dim", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="seqrl action representations (comma-separated)")
    parser.add_argument("--peers", default=",".join(PEERS), help="hf,d3rlpy, or '' for none (skipped with a note if not installed)")
    parser.add_argument("--precisions", default="fp32,bf16", help="fp32 and/or bf16 (CPU autocast)")
    parser.add_argument("--compile", action="store_true", help="also time seqrl continuous under torch.compile")
    parser.add_argument("--ablations", action="store_true",
                        help="also time seqrl continuous as it was before each speed change (all positions in the last block; loop AdamW)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median reported)")
    parser.add_argument("--inner", type=int, default=3, help="fp32 steps per round per row")
    parser.add_argument("--inner-bf16", type=int, default=1, help="bf16 steps per round per row (bf16 is emulated on CPUs without avx512_bf16/AMX)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--loss-steps", type=int, default=300, help="train each fp32 row this many steps and compare held-out MSE (0: skip)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this path ('-' for stdout)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    info = machine()
    precisions = [p for p in args.precisions.split(",") if p]
    dataset = synthetic_dataset(args.obs_dim, args.act_dim, 200_000)
    spec = DataSpec.from_dataset(dataset, rtg_scale=0.001, targets=(1.0,))
    sampler = ContextSampler(dataset, args.context, rtg_scale=spec.rtg_scale,
                             state_mean=np.asarray(spec.state_mean, np.float32), state_std=np.asarray(spec.state_std, np.float32))
    batch = sampler.sample(args.batch, np.random.default_rng(0)).to_torch()

    builders: list[tuple[str, str, Callable[[], Impl]]] = []  # (group, precision, build)
    notes: list[str] = []
    for precision in precisions:
        for variant in [v for v in args.variants.split(",") if v]:
            builders.append(("seqrl", precision, lambda v=variant, p=precision: build_seqrl(v, args, dataset, spec, p)))
        if args.compile:
            builders.append(("seqrl", precision, lambda p=precision: build_seqrl("continuous", args, dataset, spec, p, compile=True)))
        if args.ablations:
            for before in ("all-positions", "loop-adamw"):
                builders.append(("seqrl", precision, lambda p=precision, b=before: build_seqrl("continuous", args, dataset, spec, p, before=b)))
        for peer in [p for p in args.peers.split(",") if p]:
            build = {"hf": build_hf, "d3rlpy": build_d3rlpy}[peer]
            builders.append((peer, precision, lambda b=build, p=precision: b(args, p)))

    impls: dict[str, tuple[Impl, str, str]] = {}
    for group, precision, build in builders:
        try:
            impl = build()
        except ImportError as exc:
            note = f"{group} skipped: {exc} (install the peers: see docs/benchmarks.md)"
            if note not in notes:
                notes.append(note)
            continue
        impl.step(batch)  # warm-up: allocations, thread pools, compilation
        impl.step(batch)
        impls[f"{impl.name} [{precision}]"] = (impl, group, precision)

    peak = {"fp32": matmul_gflops(torch.float32, args.matmul_size)}
    cases = {key: (lambda i=impl: i.step(batch)) for key, (impl, _, _) in impls.items()}
    inner_for = {key: (args.inner_bf16 if precision == "bf16" else args.inner) for key, (_, _, precision) in impls.items()}
    times = interleaved(cases, args.repeats, inner_for=inner_for)
    if "bf16" in precisions:
        peak["bf16"] = matmul_gflops(torch.bfloat16, args.matmul_size, repeats=1)
    peak["fp32"] = max(peak["fp32"], matmul_gflops(torch.float32, args.matmul_size))  # again, after the steps

    rows, results = [], []
    for key, (impl, group, precision) in impls.items():
        ms = median(times[key]) * 1e3
        flops = count_flops(impl, batch)
        gflops = flops / (ms / 1e3) / 1e9
        peer_ms = {p: median(times[k]) * 1e3 for k, (i, g, pr) in impls.items() for p in PEERS if g == p and pr == precision}
        result = {
            "name": impl.name, "precision": precision, "ms_per_step": ms, "spread": spread(times[key]),
            "gflop_per_step": flops / 1e9, "gflops": gflops, "fraction_of_matmul_peak": gflops / peak[precision],
            "parameters": impl.parameters, "note": impl.note,
            **{f"speedup_vs_{p}": peer_ms[p] / ms for p in peer_ms},
        }
        results.append(result)
        rows.append([impl.name, precision, ms, result["spread"], result.get("speedup_vs_hf"), result.get("speedup_vs_d3rlpy"),
                     flops / 1e9, gflops, f"{100 * gflops / peak[precision]:.0f}%", impl.note])

    print_header("Training step (forward + backward + clip + AdamW)", info)
    print(f"config: batch {args.batch}, context {args.context}, width {args.embed}, layers {args.layers}, heads {args.heads}, "
          f"dropout {args.dropout}, obs {args.obs_dim}, act {args.act_dim}; {args.repeats} interleaved rounds, median\n")
    print_table(["implementation", "prec", "ms/step", "IQR/med", "x vs HF", "x vs d3rlpy", "GFLOP/step", "GFLOP/s", "of matmul peak", "note"], rows)
    print("\nmatmul peak (2048^2, best of runs, this process): " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()))
    if "bf16" in peak and any(r["precision"] == "bf16" and r["gflops"] > peak["bf16"] for r in results):
        notes.append("the bf16 2048^2 matmul is slower than the steps' own bf16 matmuls here (bf16 is emulated "
                     "without avx512_bf16/AMX), so the bf16 'of matmul peak' column is not meaningful on this CPU")
    for note in notes:
        print(f"note: {note}")

    losses = []
    if args.loss_steps:
        losses = loss_comparison(args, dataset, spec, sampler)
        print(f"\nHeld-out action MSE after {args.loss_steps} steps (fp32, same batches, lr 1e-4, no warm-up; mean over action features and real steps of 16 held-out batches, eval mode):\n")
        print_table(["implementation", "MSE at step 0", f"MSE at step {args.loss_steps}"], [[r["name"], r["mse_start"], r["mse_end"]] for r in losses])

    dump_json(args.json, {"benchmark": "train_step", "command": " ".join(sys.argv), "machine": info, "config": vars(args),
                          "matmul_peak_gflops": peak, "results": results, "loss_comparison": losses, "notes": notes})


def loss_comparison(args, dataset: TrajectoryDataset, spec: DataSpec, sampler: ContextSampler) -> list[dict[str, Any]]:
    """Train fresh fp32 copies of every row on the same batch sequence; held-out action MSE."""
    held_out = [sampler.sample(args.batch, np.random.default_rng(10_000 + i)).to_torch() for i in range(16)]

    def mse(impl: Impl) -> float:
        total, count = 0.0, 0
        for b in held_out:
            err = ((impl.predict(b) - b.actions) ** 2).mean(-1)[b.mask]
            total, count = total + float(err.sum()), count + int(b.mask.sum())
        return total / count

    builders = [lambda v=v: build_seqrl(v, args, dataset, spec, "fp32") for v in args.variants.split(",") if v]
    builders += [lambda b=b: b(args, "fp32") for p, b in (("hf", build_hf), ("d3rlpy", build_d3rlpy)) if p in args.peers.split(",")]
    out = []
    for build in builders:
        try:
            impl = build()
        except ImportError:
            continue
        torch.manual_seed(1)
        rng = np.random.default_rng(1)
        start = mse(impl)
        for _ in range(args.loss_steps):
            impl.step(sampler.sample(args.batch, rng).to_torch())
        out.append({"name": impl.name, "mse_start": start, "mse_end": mse(impl)})
    return out


if __name__ == "__main__":
    main()
