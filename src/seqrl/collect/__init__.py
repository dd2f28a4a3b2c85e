"""Making offline datasets from behaviour policies.

- `seqrl.collect.policies`: batched behaviour policies (zoo SB3 agents, LunarLander heuristic,
  uniform random, Gaussian action noise);
- `seqrl.collect.zoo`: a zoo agent's files (config.yml, env_kwargs.yml, wrappers) and the
  observation it was trained on (time feature, matching layout);
- `seqrl.collect.rollout`: `collect(env_id, policy, n_transitions, ...)` over a vector env;
- `seqrl.collect.recipes`: the named D4RL-style datasets, any task's (`--env --policy`), and the
  `seqrl collect` command.
"""
