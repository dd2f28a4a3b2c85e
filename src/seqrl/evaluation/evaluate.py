"""Roll a Decision Transformer out in its environment, conditioned on target returns.

`evaluate` runs N episodes at once in a gymnasium vector env: ONE batched `model.act` call per
env step for every live episode, each episode with its own context window (context.py).
`evaluate_sequential` is the plain one-episode-at-a-time loop, kept as the reference that tests
and `bench/` compare the vectorized loop against.

Conventions shared by both:
- Episode i of every target is reset with seed `seed + i` (gymnasium's vector convention), so
  targets are compared on the same start states.
- The return-to-go starts at the target and drops by each reward; it is kept unscaled in
  float64 and multiplied by `spec.rtg_scale` when fed to the model, so both loops feed the
  model bit-identical inputs.
- Sampled decoding draws from an explicit `torch.Generator` seeded with `seed`; nothing here
  touches the global torch or numpy RNG (training resumes bit-identically across evaluations).
  Vectorized and sequential loops consume that generator in different orders, so they agree
  episode by episode only for deterministic decoding.
- An episode ends at termination or truncation (the env's own time limit, or
  `max_episode_steps`). Finished episodes are masked out; the vector env's autoreset starts new
  episodes in their slots, which are stepped with a neutral action and never counted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Sequence

import numpy as np
import torch
import tyro

from seqrl.data.scores import normalized_score
from seqrl.errors import ConfigError
from seqrl.evaluation.context import ContextWindows
from seqrl.models.dt import DecisionTransformer
from seqrl.models.spec import DataSpec

EVAL_FILE = "eval.json"


# --------------------------------------------------------------------------- environments
def resolve_env_id(spec: DataSpec, env_id: str | None = None) -> str:
    """The environment to evaluate in: `env_id` if given, else the one the dataset recorded."""
    env_id = env_id or spec.env_id
    if not env_id:
        raise ConfigError(
            f"the dataset {spec.dataset!r} does not record its environment; pass it with --env ENV_ID"
        )
    import gymnasium as gym

    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"unknown environment {env_id!r} ({exc}); pass a registered gymnasium id with --env") from None
    return env_id


def _env_kwargs(max_episode_steps: int | None, extra: dict[str, Any] | None) -> dict[str, Any]:
    kwargs = dict(extra or {})
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    return kwargs


def _check_spaces(spec: DataSpec, env_id: str, observation_space: Any, action_space: Any) -> tuple[np.ndarray, np.ndarray]:
    """Refuse an env whose shapes differ from the model's; the action bounds to clip to."""
    obs_shape, act_shape = tuple(observation_space.shape or ()), tuple(getattr(action_space, "shape", None) or ())
    if obs_shape != (spec.obs_dim,) or act_shape != (spec.act_dim,):
        raise ConfigError(
            f"{env_id} has observations {obs_shape} and actions {act_shape}, but the model was trained on "
            f"{spec.dataset} with obs_dim={spec.obs_dim}, act_dim={spec.act_dim}"
        )
    return action_space.low.astype(np.float32), action_space.high.astype(np.float32)


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


# --------------------------------------------------------------------------- results
def summarize(target: float, returns: np.ndarray, lengths: np.ndarray, spec: DataSpec, seed: int) -> dict[str, Any]:
    """One target's result: mean ± std of return, length and normalized score, plus the raw episodes."""
    returns = np.asarray(returns, np.float64)
    lengths = np.asarray(lengths, np.int64)
    result: dict[str, Any] = {
        "target": float(target),
        "episodes": len(returns),
        "seed": int(seed),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(lengths.mean()),
        "length_std": float(lengths.std()),
        "score_mean": None,
        "score_std": None,
        "returns": returns.tolist(),
        "lengths": lengths.tolist(),
    }
    if spec.ref_min_score is not None and spec.ref_max_score is not None:
        scores = normalized_score(returns, spec.ref_min_score, spec.ref_max_score)
        result.update(score_mean=float(scores.mean()), score_std=float(scores.std()))
    return result


def _prepare(model: DecisionTransformer, spec: DataSpec, targets: Sequence[float] | None, episodes: int, device: Any):
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    targets = tuple(float(t) for t in (spec.targets if targets is None else targets))
    if not targets:
        raise ConfigError("no target returns to evaluate")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    return targets, device


# --------------------------------------------------------------------------- vectorized
@torch.no_grad()
def evaluate(
    model: DecisionTransformer,
    spec: DataSpec,
    *,
    context_len: int,
    targets: Sequence[float] | None = None,
    episodes: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    env_id: str | None = None,
    vectorization: Literal["sync", "async"] = "sync",
    max_episode_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    envs: Any | None = None,
) -> list[dict[str, Any]]:
    """Evaluate `model` for each target return over `episodes` episodes run together.

    `context_len` is the K the model was trained with (`TrainConfig.context_len`). Returns one
    `summarize` dict per target (in order). `device` defaults to the model's.
    `vectorization="async"` steps the environments in subprocesses (worth it for slow envs on
    machines with spare cores); "sync" steps them in this process.

    `envs`: a vector env from `make_eval_envs` with `episodes` sub-environments, to reuse across
    calls (training evaluates every M steps; building 100 MuJoCo envs costs ~0.7 s a call). The
    caller closes it; `vectorization`, `max_episode_steps` and `env_kwargs` are then its own.
    Every call reseeds it, so results do not depend on what ran in it before.
    """
    targets, device = _prepare(model, spec, targets, episodes, device)
    env_id = resolve_env_id(spec, env_id)
    owned = envs is None
    if owned:
        envs = make_eval_envs(spec, episodes, env_id=env_id, vectorization=vectorization,
                              max_episode_steps=max_episode_steps, env_kwargs=env_kwargs)
    elif envs.num_envs != episodes:
        raise ConfigError(f"the evaluation envs hold {envs.num_envs} environments, but {episodes} episodes were asked for")
    was_training = model.training
    model.eval()
    try:
        low, high = _check_spaces(spec, env_id, envs.single_observation_space, envs.single_action_space)
        results = []
        for target in targets:
            returns, lengths = _rollout_vector(model, spec, envs, context_len, target, seed, device, low, high)
            results.append(summarize(target, returns, lengths, spec, seed))
    finally:
        if owned:
            envs.close()
        model.train(was_training)
    return results


def make_eval_envs(
    spec: DataSpec,
    episodes: int,
    *,
    env_id: str | None = None,
    vectorization: Literal["sync", "async"] = "sync",
    max_episode_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> Any:
    """The vector env `evaluate` runs `episodes` episodes in; build it once to reuse it (`envs=`)."""
    from seqrl.collect.rollout import make_vector_env

    return make_vector_env(
        resolve_env_id(spec, env_id), episodes, autoreset_mode="same_step", vectorization=vectorization,
        env_kwargs=_env_kwargs(max_episode_steps, env_kwargs),
    )


def _rollout_vector(
    model: DecisionTransformer,
    spec: DataSpec,
    envs: Any,
    context_len: int,
    target: float,
    seed: int,
    device: torch.device,
    low: np.ndarray,
    high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One episode per sub-environment, all conditioned on `target`: (returns, lengths)."""
    n = envs.num_envs
    windows = ContextWindows(n, context_len, spec.obs_dim, spec.act_dim)
    generator = _generator(seed, device)
    # An async vector env steps all sub-envs or none: finished ones get the middle of the action
    # box and their results are ignored. A sync one steps only the live ones (`_step_live`).
    actions = np.broadcast_to((low + high) / 2, (n, spec.act_dim)).astype(np.float32)
    rtg = np.full(n, target, np.float64)  # unscaled return still to collect
    returns = np.zeros(n, np.float64)
    lengths = np.zeros(n, np.int64)
    live = np.arange(n)
    obs, _ = envs.reset(seed=seed)  # sub-env i seeded with seed + i
    while len(live):
        windows.push(live, (rtg[live] * spec.rtg_scale).astype(np.float32), spec.normalize_states(obs[live]), lengths[live])
        batch = windows.batch(live, device)
        chosen = model.act(*batch, generator=generator).float().cpu().numpy()  # (n_live, act_dim)
        chosen = np.clip(chosen, low, high)
        windows.set_actions(live, chosen)
        actions[live] = chosen
        obs, rewards, terminations, truncations = _step_live(envs, live, actions, obs)
        returns[live] += rewards[live]
        rtg[live] -= rewards[live]
        lengths[live] += 1
        live = live[~(terminations[live] | truncations[live])]
    return returns, lengths


def _step_live(envs: Any, live: np.ndarray, actions: np.ndarray, obs: np.ndarray):
    """Step the live sub-environments; (obs, rewards, terminations, truncations) for all n.

    Episodes end at different steps, and a vector env's `step` would keep simulating (and
    auto-resetting) every finished one until the longest episode ends: more than half of all
    env steps in a typical evaluation. A sync vector env's sub-environments are plain envs in
    this process, so only the live ones are stepped; entries of finished ones are stale.
    """
    import gymnasium as gym

    if not isinstance(envs, gym.vector.SyncVectorEnv):
        obs, rewards, terminations, truncations, _ = envs.step(actions)
        return obs, rewards, terminations, truncations
    n = envs.num_envs
    rewards, terminations, truncations = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
    obs = obs.copy()
    for i in live:
        obs[i], rewards[i], terminations[i], truncations[i], _ = envs.envs[i].step(actions[i])
    return obs, rewards, terminations, truncations


# --------------------------------------------------------------------------- sequential reference
@torch.no_grad()
def evaluate_sequential(
    model: DecisionTransformer,
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

    targets, device = _prepare(model, spec, targets, episodes, device)
    env_id = resolve_env_id(spec, env_id)
    was_training = model.training
    model.eval()
    env = gym.make(env_id, **_env_kwargs(max_episode_steps, env_kwargs))
    try:
        low, high = _check_spaces(spec, env_id, env.observation_space, env.action_space)
        results = []
        for target in targets:
            generator = _generator(seed, device)
            episodes_run = [run_episode(model, spec, env, context_len, target, seed + i, device, low, high, generator) for i in range(episodes)]
            returns, lengths = zip(*episodes_run)
            results.append(summarize(target, np.array(returns), np.array(lengths), spec, seed))
    finally:
        env.close()
        model.train(was_training)
    return results


def run_episode(
    model: DecisionTransformer,
    spec: DataSpec,
    env: Any,
    context_len: int,
    target: float,
    seed: int,
    device: torch.device,
    low: np.ndarray,
    high: np.ndarray,
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
        action = np.clip(action, low, high)
        actions[-1] = action
        obs, reward, terminated, truncated, _ = env.step(action)
        if on_step is not None:
            on_step()
        total += float(reward)
        rtg -= float(reward)
        t += 1
        done = bool(terminated or truncated)
    return total, t


# --------------------------------------------------------------------------- run directories
def evaluate_run(
    run_dir: str | Path,
    *,
    episodes: int = 100,
    targets: Sequence[float] | None = None,
    seed: int | None = None,
    device: str = "auto",
    env_id: str | None = None,
    vectorization: Literal["sync", "async"] = "sync",
    video: str | Path | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate a run directory's latest checkpoint; the report is also written to
    RUN_DIR/eval.json (atomically) unless `write=False`. `seed` defaults to the run's eval_seed."""
    from seqrl.checkpoint import load_run
    from seqrl.runs import write_json_atomic
    from seqrl.train import resolve_device

    run_dir = Path(run_dir)
    torch_device = resolve_device(device)
    run = load_run(run_dir, torch_device)
    seed = run.config.eval_seed if seed is None else int(seed)
    env_id = resolve_env_id(run.spec, env_id)
    start = time.perf_counter()
    results = evaluate(
        run.model, run.spec, context_len=run.config.context_len, targets=targets, episodes=episodes, seed=seed, device=torch_device,
        env_id=env_id, vectorization=vectorization,
    )
    report: dict[str, Any] = {
        "run_dir": str(run_dir),
        "step": run.step,
        "model": run.config.model,
        "dataset": run.spec.dataset,
        "env_id": env_id,
        "episodes": episodes,
        "seed": seed,
        "device": str(torch_device),
        "vectorization": vectorization,
        "wall_time_s": time.perf_counter() - start,
        "ref_min_score": run.spec.ref_min_score,
        "ref_max_score": run.spec.ref_max_score,
        "results": results,
    }
    if video is not None:
        from seqrl.evaluation.video import record_episode

        record_episode(run.model, run.spec, video, context_len=run.config.context_len, target=results[0]["target"], seed=seed, device=torch_device, env_id=env_id)
        report["video"] = str(video)
    if write:
        write_json_atomic(run_dir / EVAL_FILE, report)
    return report


def results_table(report: dict[str, Any], title: str | None = None) -> Any:
    """A rich Table of an `evaluate_run` report: one row per target."""
    from rich.table import Table

    table = Table(title=title or f"{report['run_dir']} (step {report['step']}, {report['episodes']} episodes, {report['env_id']})")
    for column in ("target", "return", "score", "length"):
        table.add_column(column, justify="right")
    for r in report["results"]:
        score = "-" if r["score_mean"] is None else f"{r['score_mean']:.1f} ± {r['score_std']:.1f}"
        table.add_row(
            f"{r['target']:g}", f"{r['return_mean']:.1f} ± {r['return_std']:.1f}", score,
            f"{r['length_mean']:.0f} ± {r['length_std']:.0f}",
        )
    return table


def eval_command(
    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")],
    episodes: int = 100,
    targets: tuple[float, ...] | None = None,
    json: bool = False,
    seed: int | None = None,
    device: str = "auto",
    env: str | None = None,
    vectorization: Literal["sync", "async"] = "sync",
    video: str | None = None,
    threads: int | None = None,
) -> None:
    """Evaluate a trained run in its environment, for each target return; writes RUN_DIR/eval.json.

    Args:
        run_dir: Run directory (or checkpoint file) to evaluate.
        episodes: Episodes per target, run together in a vector env.
        targets: Target returns (default: the run's, e.g. CORL's 3600 1800 for hopper).
        json: Print the report as JSON instead of a table.
        seed: Seed of the evaluation episodes (episode i uses seed + i; default: the run's eval_seed).
        device: cpu, cuda, cuda:N, or auto.
        env: Gymnasium environment id (default: the one recorded in the dataset).
        vectorization: Step the environments in this process (sync) or in subprocesses (async).
        video: Also record one episode (first target, first seed) to this .gif or .mp4 file.
        threads: CPU threads for torch (default: torch's, one per core; see seqrl.threads).
    """
    import json as json_module

    from seqrl.threads import torch_threads

    with torch_threads(threads):
        report = evaluate_run(
            run_dir, episodes=episodes, targets=targets, seed=seed, device=device, env_id=env,
            vectorization=vectorization, video=video,
        )
    if json:
        print(json_module.dumps(report, indent=2))
        return
    from seqrl.console import make_console

    console = make_console()
    console.print(results_table(report))
    console.print(f"wrote {Path(run_dir) / EVAL_FILE}" + (f" and {video}" if video else ""))
