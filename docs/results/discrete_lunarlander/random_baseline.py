"""Uniform random actions on the evaluation's own episodes (LunarLander-v3, seeds 10000..10049,
the runs' eval_seed), scored with the dataset's reference returns."""
import json
import gymnasium as gym
import numpy as np
from seqrl.data.sources import load_dataset
from seqrl.data.scores import normalized_score, reference_returns

data = load_dataset("seqrl/lunarlander-discrete-medium-expert-v0")
low, high = reference_returns(data.metadata.get("env_id"), data.metadata)
env = gym.make("LunarLander-v3")
rng = np.random.default_rng(0)
returns = []
for i in range(50):
    env.reset(seed=10_000 + i)
    env.action_space.seed(10_000 + i)
    total, done = 0.0, False
    while not done:
        _, r, term, trunc, _ = env.step(env.action_space.sample())
        total += r
        done = term or trunc
    returns.append(total)
returns = np.array(returns)
scores = normalized_score(returns, low, high)
out = {"episodes": 50, "seed": 10_000, "return_mean": returns.mean(), "return_std": returns.std(),
       "score_mean": scores.mean(), "score_std": scores.std(), "ref_min_score": low, "ref_max_score": high}
print(json.dumps({k: float(v) if not isinstance(v, int) else v for k, v in out.items()}, indent=1))
