"""Roll a trained model out in its environment: one loop for every model family.

`evaluate` runs N episodes at once in a gymnasium vector env, driven by the family's policy
object (seqrl.families.Policy): ONE batched `policy.act` call per env step for every live
episode. The Decision Transformer's policy keeps each episode's context window (families/dt/context.py) and
return-to-go, one policy per target return; the Trajectory Transformer's plans with beam search,
under a single condition (reported with target None).
The DT's plain one-episode-at-a-time loop, the reference that tests and `bench/` compare this
loop against, is seqrl.evaluation.reference; it keeps the same conventions:
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

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from seqrl.data.scores import normalized_score
from seqrl.errors import ConfigError
from seqrl.families import DEFAULT_FAMILY, Policy, family_of
from seqrl.models.spec import DataSpec



# --------------------------------------------------------------------------- environments
def resolve_env_id(spec: DataSpec, env_id: str | None = None) -> str:
    """The environment to evaluate in: `env_id` if given, else the one the dataset recorded."""
    env_id = env_id or spec.env_id
    if not env_id:
        raise ConfigError(
            f"the dataset {spec.dataset!r} does not record its environment; pass it with --env ENV_ID"
        )
    import gymnasium as gym

    if env_id.startswith("seqrl/"):  # seqrl's own environments (the maze, Key-to-Door)
        from seqrl.collect.envs import register_envs

        register_envs()
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"unknown environment {env_id!r} ({exc}); pass a registered gymnasium id with --env") from None
    return env_id


def env_kwargs_for(max_episode_steps: int | None, extra: dict[str, Any] | None, spec: DataSpec | None = None) -> dict[str, Any]:
    """gymnasium.make's keyword arguments: the data's own (`spec.env_kwargs`), then the caller's."""
    kwargs = {**((spec.env_kwargs or {}) if spec is not None else {}), **(extra or {})}
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = int(max_episode_steps)
    return kwargs


def _describe_space(space: Any) -> str:
    name = type(space).__name__
    if name == "Discrete":
        return f"Discrete({int(space.n)})" + (f" starting at {int(space.start)}" if int(space.start) else "")
    if name == "MultiDiscrete":
        return f"MultiDiscrete({np.asarray(space.nvec).tolist()})"
    return f"{name}{tuple(getattr(space, 'shape', None) or ())}"


@dataclass(frozen=True)
class EnvActions:
    """How a policy's actions reach the environment: clipped into a Box's bounds, or, for a
    Discrete(n) space, (len, 1) action indices passed as (len,) int64 (never clipped: an index
    outside 0..n-1 is a policy's bug and raises)."""

    low: np.ndarray | None = None  # (act_dim,) Box bounds; None for a Discrete space
    high: np.ndarray | None = None
    num_actions: int | None = None  # n of a Discrete(n) space

    def neutral(self, n: int) -> np.ndarray:
        """Actions for `n` sub-environments whose episodes have finished (stepped, never counted):
        the middle of the Box, or action 0 of a Discrete space (valid in every one)."""
        if self.num_actions is not None:
            return np.zeros(n, np.int64)
        return np.broadcast_to((self.low + self.high) / 2, (n, len(self.low))).astype(np.float32)

    def to_env(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A policy's (len, act_dim) actions -> (what the envs step with, what the policy observes)."""
        if self.num_actions is None:
            chosen = np.clip(actions, self.low, self.high)
            return chosen, chosen
        actions = np.asarray(actions)
        index = np.rint(actions).astype(np.int64) if actions.dtype.kind == "f" else actions.astype(np.int64)
        if actions.shape[-1:] != (1,) or (index != actions).any() or (index < 0).any() or (index >= self.num_actions).any():
            raise ValueError(f"a policy acting in a Discrete({self.num_actions}) space returned {actions.tolist()}; "
                             f"expected (n, 1) whole action indices 0..{self.num_actions - 1}")
        return index[:, 0], index


def check_spaces(spec: DataSpec, env_id: str, observation_space: Any, action_space: Any) -> EnvActions:
    """Refuse an env whose shapes or action space differ from the model's; how actions reach it."""
    obs_shape = tuple(observation_space.shape or ())
    space = type(action_space).__name__
    if space == "MultiDiscrete":
        raise ConfigError(f"{env_id} has {_describe_space(action_space)} actions: multi-dimensional discrete action "
                          "spaces are not supported (Discrete(n) and Box are)")
    trained = f"{spec.action_space} actions" if spec.discrete else f"act_dim={spec.act_dim}"
    if spec.image and (obs_shape != spec.observation_shape or np.dtype(observation_space.dtype) != np.uint8):
        raise ConfigError(f"{env_id} has observations {_describe_space(observation_space)} of "
                          f"{np.dtype(observation_space.dtype)}, but the model was trained on {spec.dataset}'s "
                          f"{spec.observations}")
    obs_shape = (spec.obs_dim,) if spec.image else obs_shape  # the image's shape is checked
    if spec.discrete or space == "Discrete":
        same = (space == "Discrete" and spec.discrete and int(action_space.n) == spec.num_actions
                and int(action_space.start) == 0)
        if obs_shape != (spec.obs_dim,) or not same:
            raise ConfigError(
                f"{env_id} has observations {obs_shape} and {_describe_space(action_space)} actions, but the model was "
                f"trained on {spec.dataset} with obs_dim={spec.obs_dim} and {spec.action_space} actions"
            )
        return EnvActions(num_actions=spec.num_actions)
    act_shape = tuple(getattr(action_space, "shape", None) or ())
    if obs_shape != (spec.obs_dim,) or act_shape != (spec.act_dim,):
        raise ConfigError(
            f"{env_id} has observations {obs_shape} and actions {act_shape}, but the model was trained on "
            f"{spec.dataset} with obs_dim={spec.obs_dim}, {trained}"
        )
    return EnvActions(action_space.low.astype(np.float32), action_space.high.astype(np.float32))


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
class ContextOnly:
    """A config holding only a context length: what `evaluate(..., context_len=K)` and
    `record_episode` take instead of the run's config, for a model of the family of runs written
    before families existed (the Decision Transformer, whose policy reads only its context)."""

    context_len: int
    family: str = DEFAULT_FAMILY


def prepare_device(model: torch.nn.Module, episodes: int, device: Any) -> torch.device:
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    return torch.device(device) if device is not None else next(model.parameters()).device


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
    settings: Any = None,
    on_step: Callable[[int], None] | None = None,
    records: list[EpisodeRecord] | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Evaluate `model` over `episodes` episodes run together, under each of its family's conditions.

    `config` is the run's config (what the family's policy reads: the DT's `context_len`, the
    TT's discount); a DT may be given `context_len` alone instead. `targets` are the DT's target
    returns (default: the spec's). `settings`: the family's own evaluation settings (the TT's
planner; `Family.eval_settings` checks them). Returns one
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
    from seqrl.threads import model_threads

    with model_threads():  # one torch thread unless told otherwise (seqrl.threads)
        return _evaluate(model, spec, context_len=context_len, config=config, targets=targets, episodes=episodes,
                         seed=seed, device=device, env_id=env_id, vectorization=vectorization,
                         max_episode_steps=max_episode_steps, env_kwargs=env_kwargs, envs=envs, settings=settings,
                         on_step=on_step, records=records, progress=progress)


def _evaluate(model: torch.nn.Module, spec: DataSpec, *, context_len: int | None, config: Any,
              targets: Sequence[float] | None, episodes: int, seed: int, device: Any, env_id: str | None,
              vectorization: str, max_episode_steps: int | None, env_kwargs: dict[str, Any] | None, envs: Any,
              settings: Any, on_step: Callable[[int], None] | None, records: list[EpisodeRecord] | None,
              progress: bool) -> list[dict[str, Any]]:
    if config is None:
        if context_len is None:
            raise ConfigError("evaluate needs the run's config (or a DT's context_len)")
        config = ContextOnly(int(context_len))
    family = family_of(config)
    device = prepare_device(model, episodes, device)
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
        env_actions = check_spaces(spec, env_id, envs.single_observation_space, envs.single_action_space)
        if progress and on_step is None:
            counter = on_step = EpisodeProgress("evaluate", episodes * len(conditions))
        results = []
        for condition in conditions:
            policy = family.make_policy(model, spec, config, condition, settings=settings, device=device)
            record = EpisodeRecord(keep_observations=records is not None)
            returns, lengths = rollout(policy, envs, seed, env_actions, on_step, record)
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
        env_kwargs=env_kwargs_for(max_episode_steps, env_kwargs, spec),
    )


def rollout(
    policy: Policy,
    envs: Any,
    seed: int,
    env_actions: EnvActions,
    on_step: Callable[[int], None] | None = None,
    record: EpisodeRecord | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One episode per sub-environment, driven by `policy`: (returns, lengths); `record` gets
    the episodes' successes (if the env reports them) and, if it keeps them, their observations."""
    n = envs.num_envs
    policy.reset(n, seed)
    # An async vector env steps all sub-envs or none: finished ones get a neutral action (the
    # middle of the action box, or action 0) and their results are ignored. A sync one steps
    # only the live ones (`_step_live`).
    actions = env_actions.neutral(n)
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
        # (n_live, act_dim) clipped into the box, or (n_live,) indices and the (n_live, 1) observed
        chosen, observed = env_actions.to_env(policy.act(live, obs[live], lengths[live]))
        actions[live] = chosen
        obs, rewards, terminations, truncations, step_success = _step_live(envs, live, actions, obs)
        policy.observe(live, observed, rewards[live])
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


class EpisodeProgress:
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
