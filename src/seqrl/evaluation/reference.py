"""The Decision Transformer's evaluation one episode at a time, with a batch of one and plain
growing lists as its history: the simple reference that tests and `bench/` compare the
vectorized loop (seqrl.evaluation.rollout) against. Same seeds, same model inputs."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from seqrl.errors import ConfigError
from seqrl.evaluation.rollout import EnvActions, check_spaces, env_kwargs_for, prepare_device, resolve_env_id, summarize
from seqrl.models.spec import DataSpec


@torch.no_grad()
def evaluate_sequential(
    model: torch.nn.Module,
    spec: DataSpec,
    *,
    context_len: int,
    targets: Sequence[float] | None = None,
    episodes: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    env_id: str | None = None,
    max_episode_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The same evaluation as `evaluate`, one episode at a time with a batch of one: the simple
    reference loop (same seeds, same model inputs)."""
    import gymnasium as gym

    device = prepare_device(model, episodes, device)
    targets = tuple(float(t) for t in (spec.targets if targets is None else targets))
    if not targets:
        raise ConfigError("no target returns to evaluate")
    env_id = resolve_env_id(spec, env_id)
    was_training = model.training
    model.eval()
    env = gym.make(env_id, **env_kwargs_for(max_episode_steps, env_kwargs, spec))
    try:
        env_actions = check_spaces(spec, env_id, env.observation_space, env.action_space)
        results = []
        for target in targets:
            generator = torch.Generator(device=device).manual_seed(int(seed))
            episodes_run = [run_episode(model, spec, env, context_len, target, seed + i, device, env_actions, generator) for i in range(episodes)]
            returns, lengths = zip(*episodes_run)
            results.append(summarize(target, np.array(returns), np.array(lengths), spec, seed))
    finally:
        env.close()
        model.train(was_training)
    return results


def run_episode(
    model: torch.nn.Module,
    spec: DataSpec,
    env: Any,
    context_len: int,
    target: float,
    seed: int,
    device: torch.device,
    env_actions: EnvActions,
    generator: torch.Generator | None = None,
    on_step: Callable[[], None] | None = None,
) -> tuple[float, int]:
    """One episode in a single env, with plain growing lists as its history: (return, length).

    `on_step` runs after the reset and after every step (video recording grabs frames there).
    """
    obs, _ = env.reset(seed=seed)
    if on_step is not None:
        on_step()
    rtgs, states, actions, steps = [], [], [], []
    rtg, total, t, done = float(target), 0.0, 0, False
    while not done:
        rtgs.append(np.float32(rtg * spec.rtg_scale))
        states.append(spec.normalize_states(np.asarray(obs)[None])[0])
        actions.append(np.zeros(spec.act_dim, np.float32))  # placeholder; `act` ignores it
        steps.append(t)
        window = slice(-context_len, None)
        action = model.act(
            torch.tensor(np.array(rtgs[window]), device=device).view(1, -1, 1),
            torch.tensor(np.array(states[window]), device=device).unsqueeze(0),
            torch.tensor(np.array(actions[window]), device=device).unsqueeze(0),
            torch.tensor(steps[window], device=device, dtype=torch.long).unsqueeze(0),
            generator=generator,
        )[0].float().cpu().numpy()
        action, observed = env_actions.to_env(action[None])
        actions[-1] = observed[0].astype(np.float32)
        obs, reward, terminated, truncated, _ = env.step(action[0])
        if on_step is not None:
            on_step()
        total += float(reward)
        rtg -= float(reward)
        t += 1
        done = bool(terminated or truncated)
    return total, t


# --------------------------------------------------------------------------- run directories
