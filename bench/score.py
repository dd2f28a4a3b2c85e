"""Final *score* of seqrl's Decision Transformer against Hugging Face's and d3rlpy's, trained and
evaluated at one matched configuration on a real dataset.

    . .venv-bench/bin/activate          # the peers live in their own venv (docs/benchmarks.md)
    python bench/score.py                                   # 1 seed, the defaults below
    python bench/score.py --seeds 0 1 2 --json docs/bench-results/score.json

`bench/train_step.py --loss-steps` shows a faster step learns as fast per step; this script asks
the question that matters in the end: after the same training, does the policy score as well?

For every seed, three models are trained on `--dataset` (default `seqrl/hopper-medium-v0`):

- **seqrl** `continuous` (the baseline DT) through `seqrl.train.train`, seqrl's own loop;
- **HF** `transformers.DecisionTransformerModel`, in a plain loop written here (HF ships no DT
  trainer in the library; this is the loop of its DT example: MSE on the tanh-squashed actions
  over real steps);
- **d3rlpy** `DecisionTransformer`, stepped through d3rlpy's own `impl.update` (its own loss,
  optimizer wrapper, grad clipping and LR scheduler) in a loop written here rather than `fit`,
  because `fit` samples its own windows from its own replay buffer: the loop gives it the very
  batches seqrl trains on.

Matched: seed (torch.manual_seed(seed) before building each model, seed + 1 for the dropout
stream, as `seqrl train` does), the batch sequence (seqrl's `ContextSampler` with
np.random.default_rng(seed), exactly the windows `seqrl train` draws), steps, batch, AdamW
(lr, betas, weight decay on Linear weight matrices only, never on norms, biases or embeddings),
linear warm-up from lr/warmup to lr over `--warmup` steps, grad-norm clip, context, width, layers,
heads, MLP 4x width, exact GELU, dropout on embeddings/attention/residuals, returns-to-go scale and
state normalisation (the dataset preset's, e.g. 0.001 for hopper; the dataset's mean/std), fp32,
`--threads` torch threads. What still differs is listed in docs/benchmarks.md.

Every trained model is then evaluated by ONE loop, seqrl's reference `evaluate_sequential` (one
gymnasium env, one episode at a time, batch of one): each peer is wrapped in an adapter with
seqrl's `act(returns_to_go, states, actions, timesteps)` signature that returns its prediction
at the last step of the (unpadded, at most K-step) window. Same env (the dataset's), episodes,
env seeds (`--eval-seed` + i), targets (the preset's) and deterministic actions for all.

Reported per implementation and target: normalized score (mean ± std over seeds of each seed's
mean, and over all episodes pooled), return; per implementation: final training loss (mean over
the last `--log-every` steps, in each library's own definition and in seqrl's common one: mean
squared error per action feature over real steps), eval-mode action MSE on fixed windows, and
wall time (training, evaluation). Times taken on a shared machine are not speed benchmarks; see
bench/train_step.py for those.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from _common import dump_json, machine, print_header, print_table
from seqrl.families.dt.config import TrainConfig, resolve_presets
from seqrl.data.sampler import Batch, ContextSampler
from seqrl.data.sources import load_dataset
from seqrl.evaluation.evaluate import evaluate_sequential
from seqrl.models.spec import DataSpec

IMPLS = ("seqrl", "hf", "d3rlpy", "hf-frozen-pos", "seqrl-hf-init")
NAMES = {"seqrl": "seqrl continuous", "hf": "HF DecisionTransformerModel", "d3rlpy": "d3rlpy DecisionTransformer",
         "hf-frozen-pos": "HF, position row frozen at 0", "seqrl-hf-init": "seqrl from HF's initial weights"}


@dataclasses.dataclass
class Trained:
    """A trained model, ready for the common evaluation loop."""

    policy: nn.Module  # has .act(returns_to_go, states, actions, timesteps, generator=None) -> (B, act_dim)
    predict: Callable[[Batch], torch.Tensor]  # eval-mode actions at every step of a batch, (B, T, act_dim)
    losses: list[float]  # own loss of every step
    common_losses: list[float]  # seqrl's definition (MSE per feature, mean over real steps) of every step
    train_s: float
    parameters: int
    note: str = ""


# --------------------------------------------------------------------------- adapters
class LastStepPolicy(nn.Module):
    """seqrl's `act` signature over any model that predicts actions at every step of a window.

    `forward_all(rtg, states, actions, timesteps)` returns (B, T, act_dim); the action is its last
    step (windows in `evaluate_sequential` are unpadded, batch of one). Wrapping the model as a
    submodule makes `evaluate_sequential`'s `.eval()` / `.train(was)` reach it.
    """

    def __init__(self, model: nn.Module, forward_all: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.forward_all = forward_all

    @torch.no_grad()
    def act(self, returns_to_go, states, actions, timesteps, lengths=None, generator=None) -> torch.Tensor:
        assert lengths is None, "unpadded windows only"
        return self.forward_all(returns_to_go, states, actions, timesteps)[:, -1].float()


def hf_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """seqrl's grouping (DecisionTransformer.param_groups) for HF's modules: decay the weights of
    Linear and GPT-2's Conv1D, nothing else (LayerNorm, biases, embeddings)."""
    from transformers.pytorch_utils import Conv1D

    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            (decay if name == "weight" and isinstance(module, (nn.Linear, Conv1D)) else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup(warmup_steps: int) -> Callable[[int], float]:
    return lambda step: min(1.0, (step + 1) / max(1, warmup_steps))  # seqrl's and d3rlpy's schedule


def masked_mse(pred: torch.Tensor, batch: Batch) -> torch.Tensor:
    """seqrl's regression loss: squared error averaged over action features, then over real steps."""
    per_step = ((pred.float() - batch.actions) ** 2).mean(-1)
    return (per_step * batch.mask).sum() / batch.mask.sum().clamp(min=1)


# --------------------------------------------------------------------------- weight mapping
def seqrl_hf_pairs(n_layers: int) -> dict[str, tuple[str, bool]]:
    """seqrl continuous DT parameter -> (HF DecisionTransformerModel parameter, transposed?).

    The two are the same network (bench/peer_equivalence.py): GPT-2's Conv1D stores the transpose
    of a Linear weight. HF's extra parameters (position table, unused state/return heads) have no
    counterpart.
    """
    pairs = {"embed_return": "embed_return", "embed_state": "embed_state", "embed_timestep": "embed_timestep",
             "codec.embedding.linear": "embed_action", "embed_ln": "embed_ln", "codec.head": "predict_action.0",
             "trunk.ln_f": "encoder.ln_f"}
    for i in range(n_layers):
        for ours, theirs in {"ln_1": "ln_1", "ln_2": "ln_2", "attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj",
                             "mlp.fc": "mlp.c_fc", "mlp.proj": "mlp.c_proj"}.items():
            pairs[f"trunk.blocks.{i}.{ours}"] = f"encoder.h.{i}.{theirs}"
    out = {}
    for ours, theirs in pairs.items():
        for kind in ("weight", "bias"):
            if ours == "embed_timestep" and kind == "bias":
                continue
            conv1d = theirs.startswith("encoder.h.") and kind == "weight" and not theirs.endswith(("ln_1", "ln_2"))
            out[f"{ours}.{kind}"] = (f"{theirs}.{kind}", conv1d)
    return out


@torch.no_grad()
def copy_weights(seqrl: nn.Module, hf: nn.Module, into: str) -> None:
    """Copy every mapped parameter from one model into the other (`into`: "hf" or "seqrl")."""
    s, h = dict(seqrl.named_parameters()), dict(hf.named_parameters())
    pairs = seqrl_hf_pairs(len(seqrl.trunk.blocks))
    missing = set(s) - set(pairs)
    assert not missing, f"no HF counterpart for {missing}"
    for ours, (theirs, transposed) in pairs.items():
        if into == "hf":
            h[theirs].copy_(s[ours].t() if transposed else s[ours])
        else:
            s[ours].copy_(h[theirs].t() if transposed else h[theirs])


# --------------------------------------------------------------------------- training
def train_seqrl(cfg: TrainConfig, dataset, spec: DataSpec, batches: list[Batch], hf_init: bool = False) -> Trained:
    """`seqrl.train.train` itself, in a throw-away run directory; losses read from its metrics log.

    `hf_init`: start from the initial weights HF's model gets for this seed (built and copied in
    through train's `prepare_model` hook), to tell a different initial draw from a different network.
    """
    from seqrl.runs import METRICS_FILE
    from seqrl.train import train

    def from_hf_init(model: nn.Module) -> None:
        torch.manual_seed(cfg.seed)  # exactly as train_hf builds it
        copy_weights(model, build_hf(cfg, spec), into="seqrl")

    with tempfile.TemporaryDirectory() as tmp:
        run_cfg = dataclasses.replace(cfg, run_dir=str(Path(tmp) / "run"), checkpoint_every=cfg.steps, progress=False, eval_every=0)
        start = time.perf_counter()
        result = train(run_cfg, dataset=dataset, prepare_model=from_hf_init if hf_init else None)
        call_s = time.perf_counter() - start
        records = [json.loads(line) for line in (Path(run_cfg.run_dir) / METRICS_FILE).read_text().splitlines() if line.strip()]
    if result.spec != spec:
        raise RuntimeError("seqrl's training spec differs from the one the peers were given")
    model = result.model.eval()
    # The metrics log holds the mean loss of each log window; expand to per-step values for the
    # same "mean of the last window" the peers report (exact for the last window).
    losses: list[float] = []
    last, train_s = 0, 0.0
    for r in records:
        if "loss" in r:
            losses += [r["loss"]] * (r["step"] - last)
            train_s += (r["step"] - last) / r["steps_per_sec"]  # the loop's own time, as for the peers
            last = r["step"]

    @torch.no_grad()
    def predict(batch: Batch) -> torch.Tensor:
        model.eval()
        hidden, _ = model(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
        return model.codec.head.decode(model.codec.head(hidden), mode="argmax")

    return Trained(model, predict, losses, losses, train_s, sum(p.numel() for p in model.parameters()),
                   note=f"losses from metrics.jsonl ({cfg.log_every}-step windows); "
                        f"train() call incl. setup and checkpoint {call_s:.1f} s")


def build_hf(cfg: TrainConfig, spec: DataSpec) -> nn.Module:
    """HF's DecisionTransformerModel at the configuration of `cfg` (initialised from torch's global RNG)."""
    from _peers import hf_decision_transformer

    return hf_decision_transformer(obs_dim=spec.obs_dim, act_dim=spec.act_dim, embed=cfg.embed_dim, layers=cfg.n_layers,
                                   heads=cfg.n_heads, dropout=cfg.dropout, max_ep_len=spec.max_timestep + 1)


def train_hf(cfg: TrainConfig, spec: DataSpec, batches: list[Batch], frozen_position: bool = False) -> Trained:
    """HF's model in a plain loop. HF adds row 0 of GPT-2's position table to every token, a trainable
    vector that duplicates embed_ln's bias; `frozen_position` zeroes and freezes it, which leaves
    exactly seqrl's network (bench/peer_equivalence.py: identical outputs, identical updates)."""
    torch.manual_seed(cfg.seed)
    model = build_hf(cfg, spec)
    if frozen_position:
        with torch.no_grad():
            model.encoder.wpe.weight.zero_()
        model.encoder.wpe.weight.requires_grad_(False)
    optimizer = torch.optim.AdamW(hf_param_groups(model, cfg.weight_decay), lr=cfg.learning_rate, betas=cfg.betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup(cfg.warmup_steps))
    torch.manual_seed(cfg.seed + 1)  # dropout stream, as seqrl train

    def forward_all(rtg, states, actions, timesteps, mask=None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones(timesteps.shape, dtype=torch.long)
        out = model(states=states, actions=actions, rewards=None, returns_to_go=rtg, timesteps=timesteps,
                    attention_mask=mask.long(), return_dict=True)
        return out.action_preds

    losses = []
    model.train()
    start = time.perf_counter()
    for batch in batches:
        loss = masked_mse(forward_all(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, batch.mask), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    train_s = time.perf_counter() - start
    model.eval()

    @torch.no_grad()
    def predict(batch: Batch) -> torch.Tensor:
        model.eval()
        return forward_all(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, batch.mask)

    attn = getattr(model.config, "_attn_implementation", "?")
    return Trained(LastStepPolicy(model, forward_all), predict, losses, losses, train_s,
                   sum(p.numel() for p in model.parameters()), note=f"attention={attn}")


def train_d3rlpy(cfg: TrainConfig, spec: DataSpec, batches: list[Batch]) -> Trained:
    import d3rlpy
    from _peers import to_d3rlpy_batch

    config = d3rlpy.algos.DecisionTransformerConfig(
        batch_size=cfg.batch_size, context_size=cfg.context_len, learning_rate=cfg.learning_rate,
        max_timestep=spec.max_timestep + 1,  # its table has max_timestep rows; seqrl's has max_timestep + 1
        encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=[cfg.embed_dim], exclude_last_activation=True),
        # GPTAdamWFactory: decay on Linear weights only (seqrl's grouping); AdamWFactory decays everything.
        optim_factory=d3rlpy.optimizers.GPTAdamWFactory(
            betas=cfg.betas, weight_decay=cfg.weight_decay, clip_grad_norm=cfg.grad_clip,
            lr_scheduler_factory=d3rlpy.optimizers.WarmupSchedulerFactory(warmup_steps=cfg.warmup_steps),
        ),
        num_heads=cfg.n_heads, num_layers=cfg.n_layers, attn_dropout=cfg.dropout, resid_dropout=cfg.dropout,
        embed_dropout=cfg.dropout, activation_type="gelu",
    )
    torch.manual_seed(cfg.seed)
    algo = config.create(device="cpu:0")
    algo.create_impl((spec.obs_dim,), spec.act_dim)
    impl = algo.impl
    transformer = impl.modules.transformer
    torch.manual_seed(cfg.seed + 1)

    losses, common = [], []
    start = time.perf_counter()
    for step, batch in enumerate(batches):
        loss = impl.update(to_d3rlpy_batch(batch), step)["loss"]
        losses.append(loss)
        # d3rlpy's loss: squared error summed over features, mean over all B*T positions with
        # padding zeroed. In seqrl's definition (mean over features, then over real steps):
        B, T = batch.mask.shape
        common.append(loss * B * T / (spec.act_dim * float(batch.mask.sum())))
    train_s = time.perf_counter() - start
    transformer.eval()

    def forward_all(rtg, states, actions, timesteps, mask=None) -> torch.Tensor:
        # d3rlpy takes 1 for *padding*. In eval mode it drops the last action token (never read
        # by a state position) and still returns a prediction at every step.
        pad = torch.zeros(timesteps.shape) if mask is None else 1.0 - mask.float()
        return transformer(states, actions, rtg, timesteps, pad)

    @torch.no_grad()
    def predict(batch: Batch) -> torch.Tensor:
        transformer.eval()
        return forward_all(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, batch.mask)

    return Trained(LastStepPolicy(transformer, forward_all), predict, losses, common, train_s,
                   sum(p.numel() for p in transformer.parameters()),
                   note="own loss = squared error summed over features, mean over all B*T")


# --------------------------------------------------------------------------- evaluation
def eval_mse(trained: Trained, batches: list[Batch]) -> float:
    total, count = 0.0, 0
    for b in batches:
        err = ((trained.predict(b).float() - b.actions) ** 2).mean(-1)[b.mask]
        total, count = total + float(err.sum()), count + int(b.mask.sum())
    return total / count


def mean_std(xs: list[float]) -> tuple[float, float]:
    return (float(np.mean(xs)), float(np.std(xs))) if xs else (float("nan"), float("nan"))


def pm(mean: float, std: float, digits: int = 1) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="seqrl/hopper-medium-v0")
    parser.add_argument("--impls", default=",".join(IMPLS[:3]), help="comma-separated subset of " + ",".join(IMPLS) + " (default: the first three)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (each trains every implementation)")
    parser.add_argument("--seed", type=int, dest="seeds", nargs=1, help="one training seed (same as --seeds N)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--grad-clip", type=float, default=0.25)
    parser.add_argument("--context", type=int, default=10)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per target")
    parser.add_argument("--targets", type=float, nargs="+", default=None, help="target returns (default: the dataset preset's)")
    parser.add_argument("--eval-seed", type=int, default=10_000, help="episode i of every target uses env seed eval_seed + i")
    parser.add_argument("--log-every", type=int, default=100, help="final loss = mean over this many last steps")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this path ('-' for stdout)")
    parser.add_argument("--combine", nargs="+", metavar="JSON", default=None,
                        help="train nothing: reprint the tables over the runs of these --json outputs (same configuration, "
                             "different seeds), e.g. two invocations with --seeds 0 1 2 and --seeds 3 4 5")
    args = parser.parse_args()
    if args.combine:
        return combine(args.combine, args.json)
    torch.set_num_threads(args.threads)
    impls = [i for i in args.impls.split(",") if i]
    unknown = set(impls) - set(IMPLS)
    if unknown:
        parser.error(f"unknown --impls {', '.join(sorted(unknown))}")

    info = machine()
    source = seqrl_source()
    started = time.perf_counter()
    dataset = load_dataset(args.dataset)
    base = resolve_presets(TrainConfig(
        dataset=args.dataset, model="continuous", embed_dim=args.embed, n_layers=args.layers, n_heads=args.heads,
        context_len=args.context, dropout=args.dropout, steps=args.steps, batch_size=args.batch,
        learning_rate=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup, grad_clip=args.grad_clip,
        targets=tuple(args.targets) if args.targets else None, eval_episodes=args.episodes, eval_seed=args.eval_seed,
        log_every=args.log_every, device="cpu", precision="fp32",
    ))
    spec = DataSpec.from_dataset(dataset, rtg_scale=base.rtg_scale, targets=base.targets)
    sampler = ContextSampler(dataset, args.context, rtg_scale=spec.rtg_scale, discount=base.discount,
                             state_mean=np.asarray(spec.state_mean, np.float32), state_std=np.asarray(spec.state_std, np.float32))
    fixed = [sampler.sample(args.batch, np.random.default_rng(10_000 + i)).to_torch() for i in range(16)]
    builders = {"seqrl": lambda cfg, b: train_seqrl(cfg, dataset, spec, b), "hf": lambda cfg, b: train_hf(cfg, spec, b),
                "hf-frozen-pos": lambda cfg, b: train_hf(cfg, spec, b, frozen_position=True),
                "seqrl-hf-init": lambda cfg, b: train_seqrl(cfg, dataset, spec, b, hf_init=True),
                "d3rlpy": lambda cfg, b: train_d3rlpy(cfg, spec, b)}

    runs: list[dict[str, Any]] = []
    notes: list[str] = []
    for seed in args.seeds:
        cfg = dataclasses.replace(base, seed=seed)
        rng = np.random.default_rng(seed)  # the batch sequence `seqrl train` draws for this seed
        batches = [sampler.sample(args.batch, rng).to_torch() for _ in range(args.steps)]
        for impl in impls:
            try:
                trained = builders[impl](cfg, batches)
            except ImportError as exc:
                note = f"{impl} skipped: {exc} (run from .venv-bench; see docs/benchmarks.md)"
                if note not in notes:
                    notes.append(note)
                continue
            start = time.perf_counter()
            results = evaluate_sequential(trained.policy, spec, context_len=args.context, targets=spec.targets,
                                          episodes=args.episodes, seed=args.eval_seed, device="cpu")
            eval_s = time.perf_counter() - start
            window = args.log_every
            run = {
                "impl": impl, "name": NAMES[impl], "seed": seed, "parameters": trained.parameters, "note": trained.note,
                "final_loss_own": float(np.mean(trained.losses[-window:])),
                "final_loss_common": float(np.mean(trained.common_losses[-window:])),
                "loss_curve_common": [float(np.mean(trained.common_losses[i:i + window])) for i in range(0, len(trained.common_losses), window)],
                "eval_mse": eval_mse(trained, fixed),
                "train_s": trained.train_s, "ms_per_step": 1e3 * trained.train_s / args.steps, "eval_s": eval_s,
                "eval_env_steps": int(sum(sum(r["lengths"]) for r in results)),
                "results": results,
            }
            runs.append(run)
            scores = ", ".join(f"{r['target']:g}: {r['score_mean']:.1f}" for r in results)
            print(f"[{time.perf_counter() - started:6.0f} s] seed {seed} {NAMES[impl]}: loss {run['final_loss_common']:.4f}, "
                  f"score {scores} (train {trained.train_s:.0f} s, eval {eval_s:.0f} s)", file=sys.stderr, flush=True)

    print_report(args, info, spec, runs, notes, impls, source)
    dump_json(args.json, {
        "benchmark": "score", "command": "python " + " ".join(sys.argv), "machine": info, "seqrl_source": source,
        "config": vars(args),
        "resolved": {"rtg_scale": spec.rtg_scale, "targets": spec.targets, "env_id": spec.env_id, "dataset": spec.dataset,
                     "ref_min_score": spec.ref_min_score, "ref_max_score": spec.ref_max_score,
                     "transitions": dataset.num_transitions, "episodes": len(dataset.episode_lengths)},
        "summary": summarize(runs, impls, spec), "runs": runs, "notes": notes,
        "total_wall_s": time.perf_counter() - started,
    })


def combine(paths: list[str], json_out: str | None) -> None:
    """Tables over the runs of several --json outputs of this script at one configuration."""
    from types import SimpleNamespace

    files = [json.loads(Path(p).read_text()) for p in paths]
    ignore = {"seeds", "json", "combine"}
    config = {k: v for k, v in files[0]["config"].items() if k not in ignore}
    for path, f in zip(paths, files):
        other = {k: v for k, v in f["config"].items() if k not in ignore}
        same_seqrl = all(f["seqrl_source"].get(k) == files[0]["seqrl_source"].get(k) for k in ("seqrl_path", "seqrl_sources_sha256"))
        if other != config or f["resolved"] != files[0]["resolved"] or not same_seqrl:
            raise SystemExit(f"{path}: another configuration, dataset or seqrl source than {paths[0]}; not combining")
    runs = [r for f in files for r in f["runs"]]
    seeds = [r["seed"] for r in runs if r["impl"] == runs[0]["impl"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"seed repeated across files: {sorted(seeds)}")
    args = SimpleNamespace(**config, seeds=sorted(set(seeds)))
    resolved = files[0]["resolved"]
    spec = SimpleNamespace(**{k: resolved[k] for k in ("dataset", "env_id", "rtg_scale", "targets", "ref_min_score", "ref_max_score")})
    impls = [i for i in IMPLS if any(r["impl"] == i for r in runs)]
    print(f"(combined from {', '.join(paths)}: the commands were " + "; ".join(f"`{f['command']}`" for f in files) +
          "; machine load at their starts: " + ", ".join(str(f["machine"]["load_avg_1m_at_start"]) for f in files) + ")\n")
    print_report(args, files[0]["machine"], spec, runs, sorted({n for f in files for n in f["notes"]}), impls, files[0]["seqrl_source"])
    dump_json(json_out, {
        "benchmark": "score", "command": "python " + " ".join(sys.argv), "combined_from": paths,
        "commands": [f["command"] for f in files], "machines": [f["machine"] for f in files],
        "seqrl_source": files[0]["seqrl_source"], "config": {**config, "seeds": args.seeds}, "resolved": resolved,
        "summary": summarize(runs, impls, spec), "runs": runs, "notes": sorted({n for f in files for n in f["notes"]}),
        "total_wall_s": sum(f["total_wall_s"] for f in files),
    })


def seqrl_source() -> dict[str, Any]:
    """Which seqrl code ran: its path, this repository's commit, and whether the imported src/ has
    uncommitted changes (others edit src/ while benchmarks run; pin with PYTHONPATH=<export>/src)."""
    import subprocess

    import seqrl

    path = Path(seqrl.__file__).resolve().parent
    repo = Path(__file__).resolve().parent.parent

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(repo), *cmd], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    in_repo = path.is_relative_to(repo / "src")
    digest = hashlib.sha256()
    for f in sorted(path.rglob("*.py")):
        digest.update(str(f.relative_to(path)).encode() + b"\0" + f.read_bytes())
    return {"seqrl_path": str(path), "seqrl_sources_sha256": digest.hexdigest()[:16], "repo_commit": git("rev-parse", "--short", "HEAD"),
            "imported_from_repo_src": in_repo, "src_uncommitted_changes": bool(git("status", "--porcelain", "src")) if in_repo else None}


def summarize(runs: list[dict[str, Any]], impls: list[str], spec: DataSpec) -> list[dict[str, Any]]:
    out = []
    for impl in impls:
        mine = [r for r in runs if r["impl"] == impl]
        if not mine:
            continue
        for k, target in enumerate(spec.targets):
            per_seed = [r["results"][k]["score_mean"] for r in mine]
            episodes = [s for r in mine for s in np.asarray(r["results"][k]["returns"])]
            from seqrl.data.scores import normalized_score

            pooled = normalized_score(np.asarray(episodes), spec.ref_min_score, spec.ref_max_score)
            out.append({
                "impl": impl, "name": NAMES[impl], "target": target, "seeds": len(mine),
                "score_seed_mean": mean_std(per_seed)[0], "score_seed_std": mean_std(per_seed)[1],
                "score_episode_mean": float(pooled.mean()), "score_episode_std": float(pooled.std()),
                "return_mean": float(np.mean(episodes)), "return_std": float(np.std(episodes)),
                "length_mean": float(np.mean([l for r in mine for l in r["results"][k]["lengths"]])),
                "per_seed": per_seed,
            })
    return out


def print_report(args, info, spec: DataSpec, runs: list[dict[str, Any]], notes: list[str], impls: list[str],
                 source: dict[str, Any]) -> None:
    print_header("Final score after matched training", info)
    where = "this repository's src/" if source["imported_from_repo_src"] else source["seqrl_path"]
    dirty = {True: " (with uncommitted changes)", False: " (clean)", None: ""}[source["src_uncommitted_changes"]]
    print(f"seqrl: imported from {where}{dirty}, sources sha256 {source.get('seqrl_sources_sha256', '?')}; "
          f"this repository's HEAD: {source['repo_commit']}")
    print(f"dataset {spec.dataset} ({spec.env_id}), rtg scale {spec.rtg_scale:g}, targets {', '.join(f'{t:g}' for t in spec.targets)}; "
          f"{args.steps} steps, batch {args.batch}, lr {args.lr:g}, warm-up {args.warmup}, weight decay {args.weight_decay:g}, "
          f"clip {args.grad_clip:g}, context {args.context}, width {args.embed}, layers {args.layers}, heads {args.heads}, "
          f"dropout {args.dropout:g}, fp32, {args.threads} torch thread(s); seeds {' '.join(map(str, args.seeds))}; "
          f"{args.episodes} episodes per target, env seeds {args.eval_seed}..{args.eval_seed + args.episodes - 1}, "
          f"one common loop (evaluate_sequential)\n")
    summary = summarize(runs, impls, spec)
    print("Normalized score (D4RL reference returns): mean ± std over seeds of each seed's mean, and over all episodes pooled\n")
    print_table(["implementation", "target", "seeds", "score (seeds)", "score (episodes)", "return", "length", "per seed"],
                [[s["name"], f"{s['target']:g}", s["seeds"], pm(s["score_seed_mean"], s["score_seed_std"]),
                  pm(s["score_episode_mean"], s["score_episode_std"]), pm(s["return_mean"], s["return_std"], 0),
                  f"{s['length_mean']:.0f}", " / ".join(f"{x:.1f}" for x in s["per_seed"])] for s in summary])
    print(f"\nTraining (mean ± std over seeds). Final loss = mean over the last {args.log_every} steps; 'common' is seqrl's "
          "definition (squared error averaged over action features and real steps), exact for every row; eval-mode MSE on "
          "16 fixed batches of training windows. Times are wall-clock on this machine (see the header's load).\n")
    rows = []
    for impl in impls:
        mine = [r for r in runs if r["impl"] == impl]
        if not mine:
            continue
        col = lambda key, d=4: pm(*mean_std([r[key] for r in mine]), d)  # noqa: E731
        rows.append([NAMES[impl], mine[0]["parameters"], col("final_loss_own"), col("final_loss_common"), col("eval_mse"),
                     col("train_s", 0), col("ms_per_step", 1), col("eval_s", 0), int(np.mean([r["eval_env_steps"] for r in mine]))])
    print_table(["implementation", "params", "final loss (own)", "final loss (common)", "eval-mode MSE", "train s", "ms/step",
                 "eval s", "env steps"], rows)
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
