"""Does a goal-conditioned Trajectory Transformer read its goal? For each run, the mean
teacher-forced action cross-entropy on its own training windows with their relabelled goals,
and with the goals of other windows (shuffled within each batch). A model that uses the goal
predicts actions better with the right one; equal numbers mean it ignores it. The same for
the first transition of each window alone, where no earlier action in the window can stand in
for the goal. Beside them, the entropy of the data's action tokens (each action dimension's
bin frequencies, averaged over dimensions): what a model that predicts nothing from its inputs
would score.

    python experiments/tt_goal_use.py /work/tt-runs/tt_goal/*/*/tt*/s* > docs/results/tt_goal/goal_use.md

A TT without a goal prefix on a task whose observations hold their goal (the `state` arm of
experiments/tt_goal.yaml: the maze's goal_x, goal_y in every state) gets the same test with the
goal's state tokens of every transition replaced by another window's (`--observation-goal-dims`,
else the task's preset, families/tt/goals.py).

20 batches of 256 windows per run, drawn with numpy seed 0 (the same windows for both columns).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--observation-goal-dims", type=int, nargs="+",
                        help="for runs without a goal prefix: the observation dims that hold the goal")
    args = parser.parse_args()
    from seqrl.loading import load_run
    from seqrl.data.sources import load_dataset
    from seqrl.families import get_family
    from seqrl.config import task_preset
    from seqrl.families.tt.goals import GOAL_PRESETS
    from seqrl.families.tt.goals import first_action_cross_entropy as first_action_ce

    torch.set_num_threads(1)
    print("| run | step | action CE, own goal (nats) | another window's goal | first transition's action CE, own goal | "
          "another window's goal | action tokens' entropy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for run_dir in args.runs:
        run = load_run(run_dir, torch.device("cpu"))
        prefixed = getattr(run.config, "goal", "none") != "none"
        in_state = args.observation_goal_dims or task_preset(run.config.dataset, GOAL_PRESETS).get("observation_goal_dims")
        if not prefixed and not in_state:
            continue  # no goal to swap
        data = load_dataset(run.config.dataset)
        sampler = get_family(run.family).build_sampler(run.config, data, run.spec, run.artefacts)
        entropy = action_entropy(run, data)
        rng, shuffle = np.random.default_rng(0), torch.Generator().manual_seed(1)
        model = run.model.eval()
        own, other, own_first, other_first = [], [], [], []
        with torch.no_grad():
            for _ in range(args.batches):
                batch = sampler.sample(256, rng).to_torch()
                own.append(model.loss_terms(batch)[1]["action"].item())
                own_first.append(first_action_ce(model, batch.tokens, batch.goal))
                order = torch.randperm(len(batch.tokens), generator=shuffle)
                if prefixed:
                    batch.goal = batch.goal[order]
                else:  # every transition's goal tokens from another window (their goal is one per episode)
                    batch.tokens = swap_state_goal(batch.tokens, order, in_state, model.transition_dim)
                other.append(model.loss_terms(batch)[1]["action"].item())
                other_first.append(first_action_ce(model, batch.tokens, batch.goal))
        print(f"| {run_dir} | {run.step} | {np.mean(own):.3f} | {np.mean(other):.3f} | {np.mean(own_first):.3f} | "
              f"{np.mean(other_first):.3f} | {entropy:.3f} |")


def swap_state_goal(tokens: torch.Tensor, order: torch.Tensor, dims, transition_dim: int) -> torch.Tensor:
    """(B, L*T) windows with the tokens of state dims `dims` in every transition taken from window `order[b]`."""
    positions = torch.tensor([t + d for t in range(0, tokens.shape[1], transition_dim) for d in dims])
    swapped = tokens.clone()
    swapped[:, positions] = tokens[order][:, positions]
    return swapped


def action_entropy(run, data) -> float:
    """Mean over action dimensions of the entropy (nats) of the data's action-token frequencies."""
    from seqrl.families.tt.data import run_transitions

    tokens = run.artefacts.encode(run_transitions(data, run.config))
    n, m = run.model.observation_dim, run.model.action_dim
    entropies = []
    for j in range(n, n + m):
        p = np.bincount(tokens[:, j] - run.artefacts.offsets[j]) / len(tokens)
        p = p[p > 0]
        entropies.append(float(-(p * np.log(p)).sum()))
    return float(np.mean(entropies))


if __name__ == "__main__":
    main()
