"""Run a batched policy in a gymnasium vector env and keep what happened as a TrajectoryDataset.

One policy call per vector step, for all environments at once (batched inference is where the
speed comes from; see bench/collect.py). Each sub-environment's steps are gathered into its own
episode buffer, so a transition never joins two episodes whatever order the environments finish in.

Autoreset. Gymnasium 1.x vector envs reset finished sub-environments by themselves, in one of
two ways (`autoreset_mode`), both handled here:
- SAME_STEP: the step that ends an episode already returns the next episode's first
  observation; the true last observation is in `info["final_obs"][i]` (mask `info["_final_obs"]`).
- NEXT_STEP (gymnasium's default): the step that ends an episode returns its last observation;
  the *next* call to `step` ignores that env's action, resets it and returns the new first
  observation with reward 0 -- that call is not a transition and is not recorded.
SAME_STEP is the default here because no policy output is wasted on reset steps.

Action spaces (see `seqrl.collect.policies.action_spec`): a bounded 1-D Box, whose actions are
clipped and recorded as float, with optional Gaussian noise (`noise_std`); or a Discrete(n),
whose actions are recorded as (N, 1) int64 indices and the dataset's metadata says
`action_space = {"type": "Discrete", "n": n}`, with optional epsilon-greedy noise (`epsilon`).
Each noise belongs to its kind of space; the other is refused by name.

End of data. Collection stops after exactly `n_transitions` recorded transitions. Episodes
still running then are kept, their last step marked as truncated (as D4RL keeps time-outs), with
`partial_episodes="truncate"`; `partial_episodes="drop"` discards them instead (fewer transitions,
only whole episodes).
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import numpy as np

from seqrl.collect.policies import ActionSpec, EpsilonGreedy, GaussianNoise, Policy, action_spec, check_epsilon, reset_episodes
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import ConfigError, DatasetError


class _EpisodeBuffer:
    """One sub-environment's episode in progress: T+1 observations for T steps."""

    def __init__(self, first_obs: np.ndarray) -> None:
        self.observations = [first_obs]
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.terminations: list[bool] = []
        self.truncations: list[bool] = []

    def add(self, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool, truncated: bool) -> None:
        self.actions.append(action)
        self.rewards.append(reward)
        self.observations.append(next_obs)
        self.terminations.append(terminated)
        self.truncations.append(truncated)

    def __len__(self) -> int:
        return len(self.actions)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {
            "observations": np.stack(self.observations),
            "actions": np.stack(self.actions),
            "rewards": np.asarray(self.rewards, dtype=np.float64),
            "terminations": np.asarray(self.terminations, dtype=bool),
            "truncations": np.asarray(self.truncations, dtype=bool),
        }


def make_vector_env(
    env_id: str,
    n_envs: int,
    *,
    autoreset_mode: str = "same_step",
    vectorization: Literal["sync", "async"] = "sync",
    env_kwargs: dict[str, Any] | None = None,
) -> Any:
    """A gymnasium vector env of `n_envs` copies of `env_id`.

    SyncVectorEnv by default: a MuJoCo step costs tens of microseconds, less than the
    inter-process round trip of AsyncVectorEnv, and this machine has only two shared cores.
    """
    import gymnasium as gym
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    if n_envs < 1:
        raise ConfigError(f"n_envs must be >= 1, got {n_envs}")
    modes = {"same_step": AutoresetMode.SAME_STEP, "next_step": AutoresetMode.NEXT_STEP}
    if autoreset_mode not in modes:
        raise ConfigError(f"autoreset_mode must be one of {sorted(modes)}, got {autoreset_mode!r}")
    if vectorization not in ("sync", "async"):
        raise ConfigError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
    if env_id.startswith("seqrl/"):
        from seqrl.collect.envs import register_envs

        register_envs()
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"unknown environment {env_id!r}: {exc}") from exc
    kwargs = dict(env_kwargs or {})
    fns = [lambda: gym.make(env_id, **kwargs) for _ in range(n_envs)]
    cls = SyncVectorEnv if vectorization == "sync" else AsyncVectorEnv
    return cls(fns, autoreset_mode=modes[autoreset_mode])


def collect(
    env_id: str,
    policy: Policy | Callable[[np.ndarray], np.ndarray],
    n_transitions: int,
    *,
    n_envs: int = 8,
    seed: int = 0,
    noise_std: float = 0.0,
    epsilon: float = 0.0,
    partial_episodes: Literal["truncate", "drop"] = "truncate",
    autoreset_mode: str = "same_step",
    vectorization: Literal["sync", "async"] = "sync",
    env_kwargs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    progress: bool = False,
) -> TrajectoryDataset:
    """Collect `n_transitions` transitions of `policy` on `env_id` with `n_envs` environments.

    Seeds: sub-environment i is reset with `seed + i` (gymnasium's vector convention) once, and
    keeps its own RNG stream through its autoresets; the action noise (if `noise_std > 0` or
    `epsilon > 0`) uses its own generator seeded from `seed`. The same arguments give the same dataset.

    Box actions are clipped to the action space before stepping and stored as executed, with
    Gaussian noise of std `noise_std` first. Discrete actions are stored as (N, 1) int64 indices;
    with `epsilon` in (0, 1] each is replaced, with that probability, by a uniformly random one.
    Episodes appear in the order they finished (ties by env index), then the unfinished ones by
    env index.
    """
    if n_transitions < 1:
        raise ConfigError(f"n_transitions must be >= 1, got {n_transitions}")
    if not np.isfinite(noise_std) or noise_std < 0:
        raise ConfigError(f"noise_std must be a finite number >= 0, got {noise_std}")
    epsilon = check_epsilon(epsilon)
    if partial_episodes not in ("truncate", "drop"):
        raise ConfigError(f"partial_episodes must be 'truncate' or 'drop', got {partial_episodes!r}")
    envs = make_vector_env(
        env_id, n_envs, autoreset_mode=autoreset_mode, vectorization=vectorization, env_kwargs=env_kwargs
    )
    try:
        action_space = envs.single_action_space
        spec = action_spec(action_space, env_id)
        _check_noise(spec, env_id, noise_std, epsilon)
        # Noise seed kept apart from the env seeds (seed + i) by the extra entropy word.
        if noise_std > 0:
            policy = GaussianNoise(policy, noise_std, action_space, seed=np.random.SeedSequence([seed, 0x5EED]))
        if epsilon > 0:
            policy = EpsilonGreedy(policy, epsilon, action_space, seed=np.random.SeedSequence([seed, 0x5EED]))
        episodes, unfinished = _run(
            envs, policy, n_transitions, seed, spec, autoreset_mode, partial_episodes, progress
        )
    finally:
        envs.close()
    if not episodes:
        raise ConfigError(
            f"no complete episode in {n_transitions} transitions over {n_envs} envs; collect more "
            "transitions or keep partial episodes"
        )
    policy_spec = getattr(policy, "spec", {"kind": type(policy).__name__})
    meta = {
        "env_id": env_id,
        "policy": policy_spec,
        "noise_std": float(noise_std),
        **({"epsilon": epsilon} if spec.discrete else {}),
        "seed": int(seed),
        "n_envs": int(n_envs),
        "partial_episodes": partial_episodes,
        # The last `unfinished_episodes` episodes were cut by the end of data, not by the env's
        # time limit (both are flagged as truncations); skip them for policy returns.
        "unfinished_episodes": int(unfinished),
        **spec.metadata(),  # action_low/action_high, or action_space for Discrete
    }
    meta.update(metadata or {})
    return TrajectoryDataset.from_episodes(episodes, metadata=meta)


def _check_noise(spec: ActionSpec, env_id: str, noise_std: float, epsilon: float) -> None:
    """Gaussian noise for Box actions, epsilon-greedy for Discrete ones; the other is refused."""
    if spec.discrete and noise_std > 0:
        raise ConfigError(
            f"{env_id} has {spec.space} actions: Gaussian action noise (noise_std={noise_std:g}) has no meaning "
            "there; discrete noise is epsilon-greedy (epsilon in [0, 1])"
        )
    if not spec.discrete and epsilon > 0:
        raise ConfigError(
            f"{env_id} has continuous actions ({spec.space}): epsilon-greedy noise (epsilon={epsilon:g}) is for "
            "Discrete action spaces; use Gaussian action noise (noise_std) there"
        )


def _run(
    envs: Any,
    policy: Callable[[np.ndarray], np.ndarray],
    n_transitions: int,
    seed: int,
    spec: ActionSpec,
    autoreset_mode: str,
    partial_episodes: str,
    progress: bool,
) -> tuple[list[dict[str, np.ndarray]], int]:
    """Step until `n_transitions` are recorded; (episodes, how many trailing ones are unfinished)."""
    n_envs = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    reset_episodes(policy, np.ones(n_envs, dtype=bool))  # every env starts an episode
    buffers = [_EpisodeBuffer(obs[i]) for i in range(n_envs)]
    finished: list[dict[str, np.ndarray]] = []
    # NEXT_STEP only: envs whose episode ended on the previous step and are reset by this one.
    resetting = np.zeros(n_envs, dtype=bool)
    recorded = 0
    from seqrl.progress import Progress

    bar = Progress(
        n_transitions, f"collect {envs.spec.id if envs.spec else ''}".strip(), unit="transition", enabled=progress
    )
    while recorded < n_transitions:
        # The one batched call per step; recorded (n_envs, act_dim) and executed actions.
        actions, executed = spec.prepare(policy(obs), n_envs)
        next_obs, rewards, terms, truncs, infos = envs.step(executed)
        final_mask = infos.get("_final_obs", np.zeros(n_envs, dtype=bool))
        before = recorded
        for i in range(n_envs):
            if resetting[i]:
                # NEXT_STEP reset call: not a transition; the new episode starts here.
                buffers[i] = _EpisodeBuffer(next_obs[i])
                continue
            if recorded >= n_transitions:
                # The vector env stepped everyone, but the data is full: this env's action is not
                # kept, its episode ends (truncated) at the previous observation.
                continue
            done = bool(terms[i] or truncs[i])
            # SAME_STEP puts the reset observation in next_obs and the true last one in infos.
            last_obs = infos["final_obs"][i] if (done and final_mask[i]) else next_obs[i]
            buffers[i].add(actions[i], float(rewards[i]), last_obs, bool(terms[i]), bool(truncs[i]))
            recorded += 1
            if done:
                finished.append(buffers[i].to_dict())
                buffers[i] = _EpisodeBuffer(next_obs[i])  # SAME_STEP: the new first obs
        if autoreset_mode == "next_step":
            starts = resetting  # the envs this call reset: next_obs is a first observation
            resetting = terms | truncs
        else:
            starts = terms | truncs  # SAME_STEP: next_obs of an ended episode is the next one's first
        if starts.any():
            reset_episodes(policy, starts)
        obs = next_obs
        bar.update(recorded - before, episodes=len(finished))
    bar.close()
    unfinished = [b.to_dict() for b in buffers if len(b)] if partial_episodes == "truncate" else []
    for episode in unfinished:
        episode["truncations"][-1] = True  # cut by the end of data
    return finished + unfinished, len(unfinished)


def finished_episode_mask(dataset: TrajectoryDataset) -> np.ndarray:
    """(E,) bool: episodes that ended in the environment (terminal or time limit), not cut short
    by the end of collection. Reads the counts `collect` and `build_recipe` store in metadata:
    per source (`metadata["sources"]`, concatenated in order) or for the whole dataset."""
    sources = dataset.metadata.get("sources") or [dataset.metadata]
    mask = []
    for source in sources:
        episodes = int(source.get("episodes", dataset.num_episodes))
        unfinished = int(source.get("unfinished_episodes", 0))
        mask += [True] * (episodes - unfinished) + [False] * unfinished
    if len(mask) != dataset.num_episodes:
        raise DatasetError(
            f"{dataset.name}: metadata counts {len(mask)} episodes, the data has {dataset.num_episodes}"
        )
    return np.asarray(mask, dtype=bool)


def evaluate_returns(
    env_id: str,
    policy: Policy | Callable[[np.ndarray], np.ndarray],
    n_episodes: int,
    *,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> np.ndarray:
    """(n_episodes,) returns of exactly one episode in each of `n_episodes` environments.

    One environment per episode (env i reset with `seed + i`) rather than the first episodes to
    finish, which would favour short episodes. Used for reference returns.
    """
    if n_episodes < 1:
        raise ConfigError(f"n_episodes must be >= 1, got {n_episodes}")
    envs = make_vector_env(env_id, n_episodes, autoreset_mode="same_step", env_kwargs=env_kwargs)
    try:
        spec = action_spec(envs.single_action_space, env_id)
        obs, _ = envs.reset(seed=seed)
        reset_episodes(policy, np.ones(n_episodes, dtype=bool))
        returns = np.zeros(n_episodes, dtype=np.float64)
        running = np.ones(n_episodes, dtype=bool)
        while running.any():
            _, executed = spec.prepare(policy(obs), n_episodes)
            obs, rewards, terms, truncs, _ = envs.step(executed)
            returns += np.where(running, rewards, 0.0)  # envs past their episode keep stepping, unscored
            running &= ~(terms | truncs)
            if (terms | truncs).any():
                reset_episodes(policy, terms | truncs)
    finally:
        envs.close()
    return returns
