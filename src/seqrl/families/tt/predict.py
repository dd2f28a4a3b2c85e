"""Open-loop rollouts of a trained Trajectory Transformer from real start states (the paper's
long-horizon prediction analysis, Figure 2 / appendix B).

From dataset transition i, the model sees the `context` real transitions before it and s_i,
then generates open-loop for `horizon` steps: the action tokens are the dataset's (teacher-forced
actions) or its own most likely ones, and the reward, value and next-state tokens are its own
most likely ones, each conditioned on everything it generated before. At every step the
log-probability of the TRUE next state's tokens is read off the same distributions (so it is
the likelihood of the real trajectory under the model's own open-loop beliefs), in two units:
the discrete log-probability of the bins, and a log-density (the bins' probabilities spread
uniformly over their widths), comparable with a continuous model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from seqrl.families.tt.data import joined_transitions
from seqrl.families.tt.planner import TokenDecoder


@torch.no_grad()
def tt_open_loop(model: Any, cfg: Any, discretizer: Any, dataset: Any, starts: np.ndarray, horizon: int,
                 actions: str = "dataset", context: int = 1) -> dict[str, np.ndarray]:
    """Open-loop predictions from `starts` (dataset indices with `context` transitions before them
    and `horizon` after them in their episode).

    Returns states (n, horizon, obs_dim), the true next states' log_prob and log_density
    (n, horizon), and the generated token sequences (`tokens`, the prefix's length first).
    `discretizer` is the run's ActionTokenizer (its edges give the bins' widths).
    """
    device = next(model.parameters()).device
    d = model.discretizer
    obs_dim, act_dim, T = model.observation_dim, model.action_dim, model.transition_dim
    joined = joined_transitions(dataset, cfg.discount, cfg.terminal_reward)
    tokens = d.encode(torch.from_numpy(joined).to(device))  # (N, T) the data as the model was trained on it
    starts_t = torch.as_tensor(starts, device=device)
    history = tokens[starts_t[:, None] + torch.arange(-context, 0, device=device)].flatten(1)  # (n, context*T)
    prefix = torch.cat([history, tokens[starts_t, :obs_dim]], 1)
    decoder = TokenDecoder(model, prefix, model.block_size)
    n = len(starts)
    log_prob = torch.zeros(n, horizon, device=device)
    log_density = torch.zeros(n, horizon, device=device)
    log_widths = [torch.as_tensor(np.log(np.diff(e.astype(np.float64))), dtype=torch.float32, device=device)
                  for e in discretizer.edges[:obs_dim]]
    for k in range(horizon):
        for j in range(act_dim):
            logits = decoder.logits()
            chosen = tokens[starts_t + k, obs_dim + j] if actions == "dataset" else logits.argmax(-1) + d.offsets[obs_dim + j]
            decoder.append(chosen)
        for j in (obs_dim + act_dim, obs_dim + act_dim + 1):  # reward and value: the most likely bins
            decoder.append(decoder.logits().argmax(-1) + d.offsets[j])
        for j in range(obs_dim):
            logprobs = decoder.logits().log_softmax(-1)
            truth = tokens[starts_t + k + 1, j] - d.offsets[j]  # (n,) the true next state's bin
            lp = logprobs.gather(1, truth[:, None])[:, 0]
            log_prob[:, k] += lp
            log_density[:, k] += lp - log_widths[j][truth]
            decoder.append(logprobs.argmax(-1) + d.offsets[j])
    generated = decoder.tokens[:, prefix.shape[1] :].reshape(n, horizon, T)  # per step [a, r, V, s']
    next_tokens = generated[:, :, act_dim + 2 :]  # (n, horizon, obs_dim)
    states = torch.stack([d.value_table[j][next_tokens[..., j] - d.offsets[j]] for j in range(obs_dim)], -1)
    return {"states": states.cpu().numpy(), "log_prob": log_prob.cpu().numpy(),
            "log_density": log_density.cpu().numpy(), "tokens": decoder.tokens.cpu().numpy(),
            "prefix_length": int(prefix.shape[1])}


def discretization_error(discretizer: Any, dataset: Any, starts: np.ndarray, horizon: int) -> np.ndarray:
    """(n, H) the discrete oracle: true states through the discretizer's state dimensions."""
    obs_dim = dataset.obs_dim
    truth = dataset.observations[starts[:, None] + np.arange(1, horizon + 1)]  # (n, H, obs_dim)
    padded = np.concatenate([truth, np.zeros(truth.shape[:2] + (discretizer.action_dim - obs_dim,), np.float32)], -1)
    decoded = discretizer.decode(discretizer.encode(padded))[..., :obs_dim]
    return (((decoded - truth) / dataset.observation_std) ** 2).mean(-1)
