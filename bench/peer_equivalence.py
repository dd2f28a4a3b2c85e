"""Is seqrl's continuous Decision Transformer the same network as Hugging Face's? Copy one's
weights into the other and compare what they compute, how they train, and how they score.

    . .venv-bench/bin/activate
    python bench/peer_equivalence.py --json docs/bench-results/peer_equivalence.json

`bench/score.py` found seqrl scoring below HF's `DecisionTransformerModel` after the same
training (same batches, loss, optimizer settings; independent random initialisations and
dropout masks). This script separates "a different network or update" from "a different draw":

1. **Forward.** seqrl's initial weights are copied into an HF model (GPT-2's Conv1D weights are
   the transposes of seqrl's Linear weights; HF's position table, which HF adds at position 0
   to every token, is zeroed); both predict actions on fixed batches of real windows, eval mode.
2. **Training.** Both copies then train `--steps` steps on the very same batches with dropout 0
   (so no random masks), the same AdamW (torch's, non-fused, seqrl's parameter groups), warm-up
   and clipping. If the networks and their gradients agree, the two trajectories stay together
   up to float rounding.
3. **Score.** Both trained copies are evaluated by one loop (`evaluate_sequential`) on the
   same episodes: equal networks must score (nearly) the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import numpy as np
import torch
from torch import nn

from _common import dump_json, machine, print_header, print_table
from score import LastStepPolicy, build_hf, copy_weights, hf_param_groups, masked_mse, warmup
from seqrl.loading import build_model
from seqrl.families.dt.config import TrainConfig, resolve_presets
from seqrl.data.sampler import ContextSampler
from seqrl.data.sources import load_dataset
from seqrl.evaluation.evaluate import evaluate_sequential
from seqrl.models.spec import DataSpec
from seqrl.train import train


@torch.no_grad()
def copy_seqrl_into_hf(seqrl: nn.Module, hf: nn.Module) -> None:
    """seqrl's parameters into HF's model; HF's position table zeroed and frozen.

    HF adds row 0 of that table to every token: a second, trainable copy of embed_ln's bias.
    Zeroed and frozen, both models have exactly the same parameters to train.
    """
    copy_weights(seqrl, hf, into="hf")
    hf.encoder.wpe.weight.zero_()
    hf.encoder.wpe.weight.requires_grad_(False)


def hf_forward(model: nn.Module):
    def forward_all(rtg, states, actions, timesteps, mask=None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones(timesteps.shape, dtype=torch.long)
        return model(states=states, actions=actions, rewards=None, returns_to_go=rtg, timesteps=timesteps,
                     attention_mask=mask.long(), return_dict=True).action_preds
    return forward_all


def seqrl_forward(model: nn.Module):
    def forward_all(rtg, states, actions, timesteps, mask=None) -> torch.Tensor:
        hidden, _ = model(rtg, states, actions, timesteps)  # (B, T, 1, D)
        return model.codec.head(hidden)  # (B, T, act_dim)
    return forward_all


def max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return float(((a - b).abs().amax(-1) * mask).max())


def seqrl_loop_matches_plain_loop(cfg: TrainConfig, dataset, spec: DataSpec, sampler: ContextSampler, steps: int) -> float:
    """Max |Δ parameter| between `seqrl.train.train` and a plain loop (same init, batches, fused AdamW)."""
    with tempfile.TemporaryDirectory() as tmp:
        run_cfg = dataclasses.replace(cfg, steps=steps, run_dir=f"{tmp}/run", progress=False, checkpoint_every=steps,
                                      log_every=steps, eval_every=0)
        trained = train(run_cfg, dataset=dataset).model
    torch.manual_seed(cfg.seed)  # as train() before building the model
    model = build_model(cfg, spec, None)
    optimizer = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=cfg.learning_rate, betas=cfg.betas, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup(cfg.warmup_steps))
    rng = np.random.default_rng(cfg.seed)  # train()'s batch stream
    model.train()
    for _ in range(steps):
        loss = model.loss(sampler.sample(cfg.batch_size, rng).to_torch())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
    return max(float((a - b).abs().max()) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))


def dropout_noise(cfg: TrainConfig, spec: DataSpec, weights: nn.Module, batch, samples: int = 30) -> dict[str, float]:
    """Mean squared train-mode minus eval-mode action, per real step, at dropout 0.1, same weights in both."""
    noisy = dataclasses.replace(cfg, dropout=0.1)
    ours = build_model(noisy, spec, None)
    ours.load_state_dict(weights.state_dict())
    theirs = build_hf(noisy, spec)
    copy_seqrl_into_hf(ours, theirs)
    out = {}
    for name, model, fwd in (("seqrl", ours, seqrl_forward(ours)), ("hf", theirs, hf_forward(theirs))):
        inputs = (batch.returns_to_go, batch.states, batch.actions, batch.timesteps, batch.mask)
        with torch.no_grad():
            model.eval()
            reference = fwd(*inputs)
            model.train()
            torch.manual_seed(5)
            deviations = [float((((fwd(*inputs) - reference) ** 2).mean(-1) * batch.mask).sum() / batch.mask.sum())
                          for _ in range(samples)]
        out[name] = float(np.mean(deviations))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="seqrl/hopper-medium-v0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per target (0: skip the score)")
    parser.add_argument("--eval-seed", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    info = machine()
    dataset = load_dataset(args.dataset)
    cfg = resolve_presets(TrainConfig(
        dataset=args.dataset, model="continuous", embed_dim=64, n_layers=2, n_heads=1, context_len=10, dropout=0.0,
        batch_size=64, learning_rate=3e-4, warmup_steps=200, weight_decay=1e-4, grad_clip=0.25, seed=args.seed,
        device="cpu", precision="fp32",
    ))
    spec = DataSpec.from_dataset(dataset, rtg_scale=cfg.rtg_scale, targets=cfg.targets)
    sampler = ContextSampler(dataset, cfg.context_len, rtg_scale=spec.rtg_scale, discount=cfg.discount,
                             state_mean=np.asarray(spec.state_mean, np.float32), state_std=np.asarray(spec.state_std, np.float32))
    fixed = [sampler.sample(cfg.batch_size, np.random.default_rng(10_000 + i)).to_torch() for i in range(16)]
    rng = np.random.default_rng(args.seed)
    batches = [sampler.sample(cfg.batch_size, rng).to_torch() for _ in range(args.steps)]

    torch.manual_seed(args.seed)
    ours = build_model(cfg, spec, None)
    theirs = build_hf(cfg, spec)
    copy_seqrl_into_hf(ours, theirs)
    models = {"seqrl": (ours, seqrl_forward(ours)), "hf": (theirs, hf_forward(theirs))}

    def predictions() -> dict[str, list[torch.Tensor]]:
        out = {}
        with torch.no_grad():
            for name, (model, fwd) in models.items():
                model.eval()
                out[name] = [fwd(b.returns_to_go, b.states, b.actions, b.timesteps, b.mask) for b in fixed]
        return out

    def compare(preds) -> tuple[float, float]:
        diff = max(max_diff(a, b, batch.mask) for a, b, batch in zip(preds["seqrl"], preds["hf"], fixed))
        scale = max(float(p.abs().max()) for p in preds["seqrl"])
        return diff, scale

    rows = []
    diff, scale = compare(predictions())
    rows.append(["forward at initialisation (eval mode)", f"{diff:.1e}", f"{scale:.2f}"])

    optimizers, losses = {}, {name: [] for name in models}
    for name, (model, _) in models.items():
        groups = model.param_groups(cfg.weight_decay) if name == "seqrl" else hf_param_groups(model, cfg.weight_decay)
        opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=cfg.betas, foreach=False)
        optimizers[name] = (opt, torch.optim.lr_scheduler.LambdaLR(opt, warmup(cfg.warmup_steps)))
    start = time.perf_counter()
    checkpoints = {100, 500, args.steps}
    for step, batch in enumerate(batches, 1):
        for name, (model, fwd) in models.items():
            model.train()
            loss = masked_mse(fwd(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, batch.mask), batch)
            opt, sched = optimizers[name]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            losses[name].append(loss.item())
        if step in checkpoints:
            diff, scale = compare(predictions())
            loss_gap = abs(losses["seqrl"][-1] - losses["hf"][-1])
            rows.append([f"after {step} identical training steps", f"{diff:.1e}", f"{scale:.2f}",
                         f"{losses['seqrl'][-1]:.5f} / {losses['hf'][-1]:.5f} (Δ {loss_gap:.1e})"])
    train_s = time.perf_counter() - start

    loop_diff = seqrl_loop_matches_plain_loop(cfg, dataset, spec, sampler, steps=30)
    noise = dropout_noise(cfg, spec, ours, fixed[0])

    scores = {}
    if args.episodes:
        for name, (model, fwd) in models.items():
            policy = model if name == "seqrl" else LastStepPolicy(model, fwd)
            scores[name] = evaluate_sequential(policy, spec, context_len=cfg.context_len, targets=spec.targets,
                                               episodes=args.episodes, seed=args.eval_seed)

    print_header("seqrl's continuous DT against HF's DecisionTransformerModel, weights copied", info)
    print(f"dataset {args.dataset}; width 64, 2 layers, 1 head, context 10, batch 64, dropout 0, lr 3e-4, warm-up 200, "
          f"weight decay 1e-4, clip 0.25, torch AdamW (non-fused) for both; seed {args.seed}; training took {train_s:.0f} s for both\n")
    print_table(["check", "max |Δ action| on 16 fixed batches", "max |action|", "last-step loss seqrl / HF"],
                [r + [""] * (4 - len(r)) for r in rows])
    print()
    print_table(["other check", "value"], [
        ["`seqrl.train.train` against a plain loop (same init, batches, fused AdamW), max |Δ parameter| after 30 steps",
         f"{loop_diff:.1e}"],
        ["dropout 0.1 noise: mean squared train-mode − eval-mode action, seqrl / HF (trained weights, 30 draws)",
         f"{noise['seqrl']:.5f} / {noise['hf']:.5f}"],
    ])
    if scores:
        print()
        score_rows = []
        for i, target in enumerate(spec.targets):
            s, h = scores["seqrl"][i], scores["hf"][i]
            score_rows.append([f"{target:g}", f"{s['score_mean']:.1f} ± {s['score_std']:.1f}",
                               f"{h['score_mean']:.1f} ± {h['score_std']:.1f}",
                               f"{max(abs(a - b) for a, b in zip(s['returns'], h['returns'])):.2g}"])
        print_table(["target", f"seqrl score ({args.episodes} episodes)", "HF score (weights copied at init)",
                     "max |Δ return| per episode"], score_rows)
    if args.json:
        dump_json(args.json, {"machine": info, "args": vars(args), "rows": rows, "scores": scores, "train_s": train_s,
                           "loop_max_param_diff": loop_diff, "dropout_noise": noise})


if __name__ == "__main__":
    main()
