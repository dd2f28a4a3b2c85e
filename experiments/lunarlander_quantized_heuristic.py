"""Does discretization alone spoil LunarLander control? gymnasium's heuristic lander, acting on
states (or emitting actions) passed through the Trajectory Transformer's quantile discretizer.

The discretizer is fitted, as a TT run fits it, on a dataset's observations or actions
(`seqrl.families.tt.data.fit_discretizer`); each value is replaced by its bin's decoded value
(the bin mean) before the controller reads it or the environment receives it. Prints the
normalized score (the dataset's reference returns) over the same episode seeds per bin count.

    python experiments/lunarlander_quantized_heuristic.py [--dataset lunarlander-medium-expert]
        [--bins 20 50 100 300] [--episodes 10]
"""

from __future__ import annotations

import argparse

import numpy as np


def heuristic_score(dataset_name: str, bins: int | None, quantize: str, episodes: int, data=None) -> float:
    """Normalized score of the heuristic with `quantize` ("states" or "actions") through `bins`
    bins fitted on the dataset (None: unquantized); `data`: the dataset (default: loaded by name)."""
    import gymnasium as gym

    from seqrl.collect.policies import LunarLanderHeuristic
    from seqrl.data.scores import normalized_score, reference_returns
    from seqrl.data.sources import load_dataset
    from seqrl.families.tt.data import fit_discretizer

    data = load_dataset(dataset_name) if data is None else data
    controller = LunarLanderHeuristic()
    fitted = None
    if bins is not None:
        fitted = fit_discretizer(data.observations if quantize == "states" else data.actions, bins, "quantile")
    env_id = data.metadata.get("env_id", "LunarLanderContinuous-v3")
    env = gym.make(env_id)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            seen = fitted.decode(fitted.encode(obs[None]))[0] if fitted is not None and quantize == "states" else obs
            action = controller(seen[None])
            if fitted is not None and quantize == "actions":
                action = fitted.decode(fitted.encode(action))
            obs, reward, terminated, truncated, _ = env.step(action[0].astype(np.float32))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(normalized_score(np.mean(returns), *reference_returns(env_id, data.metadata)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="lunarlander-medium-expert")
    parser.add_argument("--bins", type=int, nargs="+", default=[20, 50, 100, 300])
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    print(f"python experiments/lunarlander_quantized_heuristic.py --dataset {args.dataset} "
          f"--bins {' '.join(map(str, args.bins))} --episodes {args.episodes}")
    print("| quantized | bins | normalized score |")
    print("|---|---:|---:|")
    print(f"| nothing | - | {heuristic_score(args.dataset, None, 'states', args.episodes):.1f} |")
    for quantize in ("states", "actions"):
        for bins in args.bins:
            print(f"| {quantize} | {bins} | {heuristic_score(args.dataset, bins, quantize, args.episodes):.1f} |")


if __name__ == "__main__":
    main()
