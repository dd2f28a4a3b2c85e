"""How much a Trajectory Transformer's action prediction leans on the previous transitions.

For windows of a run's dataset, the model is given C real transitions of context and the current
observation (teacher forcing), and its greedy (most likely) action tokens are decoded and compared
with the dataset's actions; the value token's expectation (given the true action and reward) is
compared with the true value. Printed per context length C and per slice of the dataset:

    action MSE / variance (per action dimension), value correlation and mean absolute error

A model that predicts actions well with C = 3 but badly with C = 0 reads the action off the
previous actions (the "copycat" shortcut of behaviour cloning with history; Wen et al. 2020)
rather than off the state: in closed loop its own earlier actions then steer it. That is what
docs/RESULTS.md's TT-on-LunarLander section measures.

    python experiments/tt_action_context.py RUN_DIR [--contexts 0 1 3] [--windows 400]
        [--slice medium:0:25000 --slice expert:25000:50000]

`--slice NAME:START:END` restricts windows to transitions [START, END) (lunarlander-medium-expert
stores its medium half first, then its expert half); the default is the whole dataset.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def action_context_errors(run_dir: str, contexts: list[int], slices: list[tuple[str, int, int]],
                          windows: int = 400, seed: int = 0, dataset=None) -> list[dict]:
    """One row per (slice, context length); `dataset`: the run's data (default: loaded by its name)."""
    from seqrl.loading import load_run
    from seqrl.data.sources import load_dataset
    from seqrl.families.tt.data import run_transitions

    run = load_run(run_dir)
    model, cfg = run.model.eval(), run.config
    dataset = load_dataset(cfg.dataset) if dataset is None else dataset
    joined = run_transitions(dataset, cfg)
    disc = model.discretizer
    T, od, ad = model.transition_dim, model.observation_dim, model.action_dim
    tokens = disc.encode(torch.from_numpy(joined))  # (N, T)
    variance = joined[:, od : od + ad].var(0)
    rows = []
    for name, lo, hi in slices or [("all", 0, len(joined))]:
        for C in contexts:
            rng = np.random.default_rng(seed)
            candidates = np.arange(lo, hi - C)
            # windows whose C context transitions and current one are all in one episode
            same = dataset.episode_index[candidates] == dataset.episode_index[candidates + C]
            starts = rng.choice(candidates[same], size=min(windows, int(same.sum())), replace=False)
            context = torch.stack([tokens[s : s + C + 1].flatten() for s in starts])[:, : C * T + od]
            with torch.no_grad():
                x = context
                for j in range(ad):  # greedy action tokens, one by one
                    local = model(x)[:, -1].argmax(-1)
                    x = torch.cat([x, (local + disc.offsets[od + j])[:, None]], 1)
                truth = tokens[torch.as_tensor(starts + C)]
                given = torch.cat([context, truth[:, od : T - 1]], 1)  # the true action and reward
                value = model(given)[:, -1].softmax(-1) @ disc.value_table[T - 1]
            actions = torch.stack([disc.value_table[od + j][x[:, C * T + od + j] - disc.offsets[od + j]]
                                   for j in range(ad)], 1).numpy()
            true_actions = joined[starts + C, od : od + ad]
            true_values = joined[starts + C, T - 1]
            rows.append({
                "slice": name, "context": C, "windows": len(starts),
                "action_mse_over_var": [round(float(v), 3) for v in ((actions - true_actions) ** 2).mean(0) / variance],
                "value_corr": round(float(np.corrcoef(value.numpy(), true_values)[0, 1]), 3),
                "value_mae": round(float(np.abs(value.numpy() - true_values).mean()), 2),
                "value_std": round(float(true_values.std()), 2),
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--contexts", type=int, nargs="+", default=[0, 3])
    parser.add_argument("--windows", type=int, default=400)
    parser.add_argument("--slice", action="append", default=[], help="NAME:START:END")
    args = parser.parse_args()
    slices = []
    for text in args.slice:
        name, start, end = text.split(":")
        slices.append((name, int(start), int(end)))
    print(f"python experiments/tt_action_context.py {args.run_dir} --contexts {' '.join(map(str, args.contexts))} "
          + " ".join(f"--slice {s}" for s in args.slice))
    print("| slice | context transitions | action MSE / variance | value corr | value MAE (std) |")
    print("|---|---:|---|---:|---:|")
    for row in action_context_errors(args.run_dir, args.contexts, slices, args.windows):
        print(f"| {row['slice']} | {row['context']} | {row['action_mse_over_var']} | {row['value_corr']} "
              f"| {row['value_mae']} ({row['value_std']}) |")


if __name__ == "__main__":
    main()
