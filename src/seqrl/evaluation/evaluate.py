"""Roll a trained model out in its environment: one loop for every model family.

`evaluate` runs N episodes at once in a gymnasium vector env, driven by the family's policy
object (seqrl.families.Policy): ONE batched `policy.act` call per env step for every live
episode. The Decision Transformer's policy keeps each episode's context window (context.py) and
return-to-go, one policy per target return; the Trajectory Transformer's plans with beam search,
under a single condition (reported with target None).
`evaluate_sequential` is the DT's plain one-episode-at-a-time loop, kept as the reference that
tests and `bench/` compare the vectorized loop against.

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
- Goal-reaching tasks whose env reports success (`info["success"]` or `info["is_success"]`,
  as gymnasium-robotics' mazes do) also get a success rate and the mean steps to the goal
  (the length of the successful episodes).
- An episode ends at termination or truncation (the env's own time limit, or
  `max_episode_steps`). Finished episodes are masked out; the vector env's autoreset starts new
  episodes in their slots, which are stepped with a neutral action and never counted.
"""

from __future__ import annotations

import time
from pathlib import Path
import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Sequence

import numpy as np
import torch
import tyro

from seqrl.data.scores import normalized_score
from seqrl.errors import ConfigError
from seqrl.families import Policy, get_family
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

    if env_id.startswith("seqrl/"):  # seqrl's own environments (the four-rooms maze)
        from seqrl.collect.maze import register_envs

        register_envs()
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"unknown environment {env_id!r} ({exc}); pass a registered gymnasium id with --env") from None
    return env_id


def _env_kwargs(max_episode_steps: int | None, extra: dict[str, Any] | None, spec: DataSpec | None = None) -> dict[str, Any]:
    """gymnasium.make's keyword arguments: the data's own (`spec.env_kwargs`), then the caller's."""
    kwargs = {**((spec.env_kwargs or {}) if spec is not None else {}), **(extra or {})}
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
def condition_label(target: float | None) -> str:
    """How a result's condition is named in metrics and tables: `target_3600`, or `plan` for none."""
    return "plan" if target is None else f"target_{target:g}"


@dataclass
class EpisodeRecord:
    """What `rollout` records besides returns and lengths: success, and (if asked) the observations."""

    keep_observations: bool = False
    successes: np.ndarray | None = None  # (n,) bool, success reported at any step; None: the env reports none
    observations: list[np.ndarray] = dataclasses.field(default_factory=list)  # per episode, (length + 1, obs_dim)


def summarize(target: float | None, returns: np.ndarray, lengths: np.ndarray, spec: DataSpec, seed: int,
              successes: np.ndarray | None = None) -> dict[str, Any]:
    """One target's result: mean ± std of return, length and normalized score, plus the raw episodes.

    With `successes` (a goal-reaching env's): the success rate and the mean steps to the goal
    over the successful episodes (None when none succeeded)."""
    returns = np.asarray(returns, np.float64)
    lengths = np.asarray(lengths, np.int64)
    result: dict[str, Any] = {
        "target": None if target is None else float(target),
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
    if successes is not None:
        successes = np.asarray(successes, bool)
        reached = lengths[successes]
        result.update(success_rate=float(successes.mean()), successes=successes.tolist(),
                      steps_to_goal_mean=float(reached.mean()) if len(reached) else None,
                      steps_to_goal_std=float(reached.std()) if len(reached) else None)
    return result


@dataclass(frozen=True)
class _ContextOnly:
    """What the DT's policy reads from a config, for callers that pass `context_len` alone."""

    context_len: int
    family: str = "dt"


def _prepare_device(model: torch.nn.Module, episodes: int, device: Any) -> torch.device:
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    return torch.device(device) if device is not None else next(model.parameters()).device


def _prepare(model: torch.nn.Module, spec: DataSpec, targets: Sequence[float] | None, episodes: int, device: Any):
    device = _prepare_device(model, episodes, device)
    targets = tuple(float(t) for t in (spec.targets if targets is None else targets))
    if not targets:
        raise ConfigError("no target returns to evaluate")
    return targets, device


# --------------------------------------------------------------------------- vectorized
@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    spec: DataSpec,
    *,
    context_len: int | None = None,
    config: Any = None,
    targets: Sequence[float] | None = None,
    episodes: int = 100,
    seed: int = 0,
    device: str | torch.device | None = None,
    env_id: str | None = None,
    vectorization: Literal["sync", "async"] = "sync",
    max_episode_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    envs: Any | None = None,
    planner: dict[str, Any] | None = None,
    on_step: Callable[[int], None] | None = None,
    records: list[EpisodeRecord] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate `model` over `episodes` episodes run together, under each of its family's conditions.

    `config` is the run's config (what the family's policy reads: the DT's `context_len`, the
    TT's discount); a DT may be given `context_len` alone instead. `targets` are the DT's target
    returns (default: the spec's). `planner` overrides the TT's planner settings. Returns one
    `summarize` dict per condition (in order). `device` defaults to the model's.
    `vectorization="async"` steps the environments in subprocesses (worth it for slow envs on
    machines with spare cores); "sync" steps them in this process. `on_step(live)` is called
    after the reset and after every env step, with the number of live episodes (progress bars,
    video frames).

    `envs`: a vector env from `make_eval_envs` with `episodes` sub-environments, to reuse across
    calls (training evaluates every M steps; building 100 MuJoCo envs costs ~0.7 s a call). The
    caller closes it; `vectorization`, `max_episode_steps` and `env_kwargs` are then its own.
    Every call reseeds it, so results do not depend on what ran in it before.

    `records`: a list to append each condition's `EpisodeRecord` to, with the observations of
    every episode (the maze pictures). `progress`: show finished episodes and the environment
    step on stderr (a bar on a terminal, a line every 30 s otherwise) when no `on_step` is given.
    """
    family = get_family(getattr(model, "family", None))
    if config is None:
        if context_len is None:
            raise ConfigError("evaluate needs the run's config (or a DT's context_len)")
        config = _ContextOnly(int(context_len))
    device = _prepare_device(model, episodes, device)
    conditions = family.conditions(config, spec, targets)
    if not conditions:
        raise ConfigError("no target returns to evaluate")
    env_id = resolve_env_id(spec, env_id)
    owned = envs is None
    if owned:
        envs = make_eval_envs(spec, episodes, env_id=env_id, vectorization=vectorization,
                              max_episode_steps=max_episode_steps, env_kwargs=env_kwargs)
    elif envs.num_envs != episodes:
        raise ConfigError(f"the evaluation envs hold {envs.num_envs} environments, but {episodes} episodes were asked for")
    was_training = model.training
    model.eval()
    counter = None
    try:
        low, high = _check_spaces(spec, env_id, envs.single_observation_space, envs.single_action_space)
        if progress and on_step is None:
            counter = on_step = _EpisodeProgress("evaluate", episodes * len(conditions))
        results = []
        for condition in conditions:
            policy = family.make_policy(model, spec, config, condition, settings=planner, device=device)
            record = EpisodeRecord(keep_observations=records is not None)
            returns, lengths = rollout(policy, envs, seed, low, high, on_step, record)
            results.append(summarize(condition, returns, lengths, spec, seed, record.successes))
            if records is not None:
                records.append(record)
    finally:
        if counter is not None:
            counter.close()
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
        env_kwargs=_env_kwargs(max_episode_steps, env_kwargs, spec),
    )


def rollout(
    policy: Policy,
    envs: Any,
    seed: int,
    low: np.ndarray,
    high: np.ndarray,
    on_step: Callable[[int], None] | None = None,
    record: EpisodeRecord | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One episode per sub-environment, driven by `policy`: (returns, lengths); `record` gets
    the episodes' successes (if the env reports them) and, if it keeps them, their observations."""
    n = envs.num_envs
    policy.reset(n, seed)
    # An async vector env steps all sub-envs or none: finished ones get the middle of the action
    # box and their results are ignored. A sync one steps only the live ones (`_step_live`).
    actions = np.broadcast_to((low + high) / 2, (n, len(low))).astype(np.float32)
    returns = np.zeros(n, np.float64)
    lengths = np.zeros(n, np.int64)
    live = np.arange(n)
    success = np.zeros(n, bool)
    reported = False
    obs, _ = envs.reset(seed=seed)  # sub-env i seeded with seed + i
    visited: list[list[np.ndarray]] = [[o.copy()] for o in obs] if record is not None and record.keep_observations else []
    if on_step is not None:
        on_step(len(live))
    while len(live):
        chosen = np.clip(policy.act(live, obs[live], lengths[live]), low, high)  # (n_live, act_dim)
        actions[live] = chosen
        obs, rewards, terminations, truncations, step_success = _step_live(envs, live, actions, obs)
        policy.observe(live, chosen, rewards[live])
        returns[live] += rewards[live]
        lengths[live] += 1
        if step_success is not None:
            reported = True
            success[live] |= step_success[live]
        for i in live if visited else ():
            visited[i].append(obs[i].copy())
        live = live[~(terminations[live] | truncations[live])]
        if on_step is not None:
            on_step(len(live))
    if record is not None:
        record.successes = success if reported else None
        record.observations = [np.stack(v) for v in visited]
    return returns, lengths


def _success_of(info: dict[str, Any]) -> Any:
    """A goal-reaching env's success flag in a step's info (None when it reports none)."""
    for key in ("success", "is_success"):
        if key in info:
            return info[key]
    return None


def _step_live(envs: Any, live: np.ndarray, actions: np.ndarray, obs: np.ndarray):
    """Step the live sub-environments; (obs, rewards, terminations, truncations, successes) for all n
    (successes: (n,) bool when the env reports success in its info, else None).

    Episodes end at different steps, and a vector env's `step` would keep simulating (and
    auto-resetting) every finished one until the longest episode ends: more than half of all
    env steps in a typical evaluation. A sync vector env's sub-environments are plain envs in
    this process, so only the live ones are stepped; entries of finished ones are stale.
    """
    import gymnasium as gym

    n = envs.num_envs
    if not isinstance(envs, gym.vector.SyncVectorEnv):
        obs, rewards, terminations, truncations, infos = envs.step(actions)
        flag = _success_of(infos)  # a vector env's info: arrays, with "_key" marking the envs that set them
        successes = None
        if flag is not None:
            key = "success" if "success" in infos else "is_success"
            successes = np.asarray(flag, bool) & np.asarray(infos.get("_" + key, np.ones(n, bool)), bool)
        return obs, rewards, terminations, truncations, successes
    rewards, terminations, truncations = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
    successes = np.zeros(n, bool)
    reported = False
    obs = obs.copy()
    for i in live:
        obs[i], rewards[i], terminations[i], truncations[i], info = envs.envs[i].step(actions[i])
        flag = _success_of(info)
        if flag is not None:
            reported, successes[i] = True, bool(flag)
    return obs, rewards, terminations, truncations, successes if reported else None


# --------------------------------------------------------------------------- sequential reference
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

    targets, device = _prepare(model, spec, targets, episodes, device)
    env_id = resolve_env_id(spec, env_id)
    was_training = model.training
    model.eval()
    env = gym.make(env_id, **_env_kwargs(max_episode_steps, env_kwargs, spec))
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
    model: torch.nn.Module,
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
@dataclass(frozen=True)
class PlannerFlags:
    """The Trajectory Transformer's planner settings for `seqrl eval` (unset: the authors' defaults
    and per-task presets; see seqrl.families.tt.planner)."""

    plan_mode: Literal["reward", "likelihood"] | None = None
    """reward: beam search for reward plus value (offline RL); likelihood: the most probable trajectory (imitation)."""
    horizon: int | None = None
    """Planning horizon in transitions (default 15; halfcheetah 5)."""
    beam_width: int | None = None
    """Beams kept per environment (default 128; halfcheetah 32)."""
    expansion: int | None = None
    """Candidates sampled per beam each step (default 2)."""
    action_cdf: float | None = None
    """Drop the least likely action bins while their probability mass stays below this, the authors'
    cdf_act (default 0.6: sample from roughly the most likely 40% of the mass)."""
    action_top_k: int | None = None
    """Or from the k most likely bins (default: off)."""
    context_transitions: int | None = None
    """Transitions of history the model sees (default 5)."""
    replan_every: int | None = None
    """Plan every k steps, taking the plan's actions open-loop in between (default 1)."""
    cache: bool = True
    """Reuse keys and values between tokens (--no-cache re-encodes the window for every token, as
    the authors' planner does: slow, the reference the cache is tested equal to)."""
    context_value: Literal["planned", "zero"] | None = None
    """Value token of past transitions in the context: the plan's own prediction (default) or a
    placeholder (the token of a value of 0). No effect on a model that masks value tokens, as
    the authors' and seqrl's default do; it matters only for runs trained with --no-mask-values."""

    def overrides(self) -> dict[str, Any]:
        values = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("plan_mode", "cache")}
        values.update(mode=self.plan_mode, use_cache=None if self.cache else False)
        return {k: v for k, v in values.items() if v is not None}


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
    planner: dict[str, Any] | None = None,
    progress: bool = False,
    plot: str | Path | None = None,
    task: str | None = None,
    _loaded: Any = None,
) -> dict[str, Any]:
    """Evaluate a run directory's latest checkpoint (any family); the report is also written to
    RUN_DIR/eval.json (atomically) unless `write=False`. `seed` defaults to the run's eval_seed.
    `planner` overrides a TT run's planner settings; `progress` shows env steps as they happen.
    `plot`: also draw achieved against target return to this PNG (return-conditioned runs).
    A multi-task run is evaluated per task (`task`: only that one); its report holds each task's
    report under "tasks" and every task's results, tagged with "task", under "results"."""
    from seqrl.checkpoint import load_run
    from seqrl.families import get_family
    from seqrl.runs import write_json_atomic
    from seqrl.runtime import resolve_device
    from seqrl.validation import require_all_finite, require_int

    # Checked before anything is loaded or eval.json is touched.
    require_int("episodes", episodes, 1)
    if seed is not None:
        require_int("seed", seed, 0)  # gymnasium refuses negative seeds
    require_all_finite("targets", targets)
    run_dir = Path(run_dir)
    if write and _loaded is None and run_dir.is_dir():
        # A trainer or another evaluation writing this run directory: refused before the work.
        from seqrl.runs import RunLock

        with RunLock(run_dir, "evaluating"):
            return evaluate_run(run_dir, episodes=episodes, targets=targets, seed=seed, device=device, env_id=env_id,
                                vectorization=vectorization, video=video, write=write, planner=planner,
                                progress=progress, plot=plot, task=task, _loaded=load_run(run_dir, resolve_device(device)))
    torch_device = resolve_device(device)
    run = _loaded if _loaded is not None else load_run(run_dir, torch_device)
    family = get_family(run.family)
    if hasattr(family, "task_views"):  # a multi-task run: each task's view is a plain run of its own
        if plot is not None:
            raise ConfigError("--plot draws one task; evaluate the task's view with --task and plot that")
        reports = {}
        for name, model, spec, config in family.task_views(run, task):
            view = dataclasses.replace(run, model=model, spec=spec, config=config, family="dt", artefacts=None)
            reports[name] = evaluate_run(run_dir, episodes=episodes, targets=targets, seed=seed, device=device,
                                         env_id=env_id, vectorization=vectorization, write=False, progress=progress,
                                         _loaded=view)
        combined = {"run_dir": str(run_dir), "step": run.step, "family": run.family, "model": family.describe(run.config),
                    "dataset": run.spec.dataset, "env_id": None, "episodes": episodes,
                    "ref_min_score": None, "ref_max_score": None, "tasks": reports,
                    "results": [{**r, "task": name} for name, rep in reports.items() for r in rep["results"]]}
        if write:
            write_json_atomic(run_dir / EVAL_FILE, combined)
        return combined
    elif task is not None:
        raise ConfigError(f"--task applies to multi-task runs; {run_dir} is a {run.family} run")
    conditions = family.conditions(run.config, run.spec, targets)  # first: a model that does not act says so
    seed = run.config.eval_seed if seed is None else int(seed)
    env_id = resolve_env_id(run.spec, env_id)
    from seqrl.collect.maze import MAZE_MAPS

    maze_plot = plot is not None and None in conditions  # a run not conditioned on a return: its paths in the maze
    if maze_plot and env_id not in MAZE_MAPS:
        raise ConfigError(f"--plot draws achieved against target return, and a {run.family} run is not conditioned "
                          f"on a target return (in a maze it draws the episodes' paths, and {env_id} is not one)")
    records: list[EpisodeRecord] | None = [] if maze_plot else None
    start = time.perf_counter()
    counter = _EpisodeProgress(f"eval {run_dir.name}", episodes * len(conditions)) if progress else None
    try:
        results = evaluate(
            run.model, run.spec, config=run.config, targets=targets, episodes=episodes, seed=seed, device=torch_device,
            env_id=env_id, vectorization=vectorization, planner=planner, on_step=counter, records=records,
            progress=False,  # its own counter, named after the run, when asked for
        )
    finally:
        if counter is not None:
            counter.close()
    wall = time.perf_counter() - start
    report: dict[str, Any] = {
        "run_dir": str(run_dir),
        "step": run.step,
        "family": run.family,
        "model": family.describe(run.config),
        "dataset": run.spec.dataset,
        "env_id": env_id,
        "episodes": episodes,
        "seed": seed,
        "device": str(torch_device),
        "vectorization": vectorization,
        "wall_time_s": wall,
        "wall_time_per_episode_s": wall / (episodes * len(results)),
        "ref_min_score": run.spec.ref_min_score,
        "ref_max_score": run.spec.ref_max_score,
        "results": results,
    }
    policy = family.make_policy(run.model, run.spec, run.config, results[0]["target"], settings=planner, device=torch_device)
    if hasattr(policy, "settings"):
        report["planner"] = policy.settings.to_dict()
    if video is not None:
        from seqrl.evaluation.video import record_episode

        record_episode(run.model, run.spec, video, config=run.config, target=results[0]["target"], seed=seed,
                       device=torch_device, env_id=env_id, planner=planner)
        report["video"] = str(video)
    if maze_plot:
        from seqrl.experiments.plots import plot_maze_paths

        report["plot"] = str(plot_maze_paths(report, records[0].observations, MAZE_MAPS[env_id], plot))
    elif plot is not None:
        from seqrl.experiments.plots import plot_eval_targets

        report["plot"] = str(plot_eval_targets(report, plot))
    if write:
        write_json_atomic(run_dir / EVAL_FILE, report)
    return report


class _EpisodeProgress:
    """An `on_step` callback counting finished episodes on a `seqrl.progress.Progress`
    (a bar on a terminal, a plain line every 30 s otherwise), with the environment step the
    running episodes have reached, so that the display moves within an episode too (a planner
    can take seconds a step, and an episode a thousand steps)."""

    def __init__(self, desc: str, episodes: int) -> None:
        from seqrl.progress import Progress

        self.progress = Progress(episodes, desc, unit="episode")
        self.live: int | None = None
        self.env_step = 0

    def __call__(self, live: int) -> None:
        if self.live is not None and live <= self.live:  # not the reset of the next condition
            self.env_step += 1
            self.progress.update(self.live - live, running=live, env_step=self.env_step)
        else:
            self.env_step = 0
        self.live = live if live else None

    def close(self) -> None:
        self.progress.close()


def results_table(report: dict[str, Any], title: str | None = None) -> Any:
    """A rich Table of an `evaluate_run` report: one row per target."""
    from rich.table import Table

    table = Table(title=title or f"{report['run_dir']} ({report.get('model', '?')}, step {report['step']}, "
                                 f"{report['episodes']} episodes, {report['env_id']})")
    goals = any("success_rate" in r for r in report["results"])
    for column in ("target", "return", "score", "length") + (("success", "steps to goal") if goals else ()):
        table.add_column(column, justify="right")
    for r in report["results"]:
        score = "-" if r["score_mean"] is None else f"{r['score_mean']:.1f} ± {r['score_std']:.1f}"
        row = ["-" if r["target"] is None else f"{r['target']:g}", f"{r['return_mean']:.1f} ± {r['return_std']:.1f}",
               score, f"{r['length_mean']:.0f} ± {r['length_std']:.0f}"]
        if goals:
            steps = r.get("steps_to_goal_mean")
            row += [f"{100 * r['success_rate']:.0f}%" if "success_rate" in r else "-",
                    "-" if steps is None else f"{steps:.0f} ± {r['steps_to_goal_std']:.0f}"]
        table.add_row(*row)
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
    planner: "tyro.conf.OmitArgPrefixes[PlannerFlags]" = PlannerFlags(),  # noqa: F821
    progress: bool = True,
    plot: str | None = None,
    task: str | None = None,
) -> None:
    """Evaluate a trained run (any family) in its environment; writes RUN_DIR/eval.json.

    A Decision Transformer is evaluated for each target return; a Trajectory Transformer plans
    with beam search (the planner flags below; slow: it shows progress).

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
        planner: Trajectory Transformer planner settings.
        progress: Report env steps while evaluating.
        plot: Also draw the achieved against the target return to this PNG (a DT run; pass 6 or
            more --targets to see "one model, a distribution of policies"), or, for a run that
            plans or acts without a target in a maze, the episodes' paths (the TT paper's Figure 5).
        task: A multi-task run's task to evaluate (default: every task, each under its targets).
    """
    import json as json_module

    from seqrl.threads import torch_threads

    with torch_threads(threads):
        report = evaluate_run(
            run_dir, episodes=episodes, targets=targets, seed=seed, device=device, env_id=env,
            vectorization=vectorization, video=video, planner=planner.overrides(), progress=progress and not json,
            plot=plot, task=task,
        )
    if json:
        print(json_module.dumps(report, indent=2))
        return
    from seqrl.console import make_console

    console = make_console()
    for one in (report["tasks"].values() if "tasks" in report else [report]):
        console.print(results_table(one))
    console.print(f"wrote {Path(run_dir) / EVAL_FILE}" + (f" and {video}" if video else "")
                  + (f" and {plot}" if plot else ""))
