"""Making offline datasets from behaviour policies.

- `seqrl.collect.policies`: batched behaviour policies (zoo SB3 agents, LunarLander heuristic,
  uniform random, Gaussian action noise);
- `seqrl.collect.rollout`: `collect(env_id, policy, n_transitions, ...)` over a vector env;
- `seqrl.collect.recipes`: the named D4RL-style datasets and the `seqrl collect` command.
"""
