"""Behaviour policies for collecting offline datasets, all batched over environments.

Every policy is a callable `policy(obs) -> actions` with `obs` of shape (n_envs, obs_dim) and
actions of shape (n_envs, act_dim) (for a `Discrete(n)` action space: (n_envs,) integer action
indices 0..n-1, or (n_envs, 1)), plus a `spec` dict (JSON-able) that says what it is; the
spec goes into the dataset's metadata so a dataset always records which policy made it.

- `ZooPolicy` / `load_zoo_policy`: Stable-Baselines3 agents laid out as rl-baselines3-zoo
  (`ALGO/ENV-vN_1/ENV-vN.zip`, optional `ENV-vN_1/ENV-vN/vecnormalize.pkl`), loaded without the
  old `gym` package, with the observation they were trained on rebuilt (env_kwargs, the
  TimeFeatureWrapper's time feature, a matching layout; see `seqrl.collect.zoo`).

Policies whose input depends on the episode so far (the time feature) have a `reset(mask)`
method: the rollout loops call it with the environments whose next observation starts an
episode (all of them after the first reset).
- `LunarLanderHeuristic`: gymnasium's hand-written lander controller, vectorized.
- `RandomPolicy`: uniform over the action box, or over the n actions of a Discrete space.
- `GaussianNoise`: adds seeded Gaussian noise to another policy's actions, clipped to the box.
- `EpsilonGreedy`: for Discrete actions, replaces another policy's action by a uniformly random
  one with probability epsilon (the D4RL-style quality knob for discrete tasks, and how the
  DQN-replay Atari data got its spread).

`ActionSpec` (from `action_spec(space)`) is what the rollout loops need of an action space: a
bounded 1-D Box or a Discrete(n); anything else (MultiDiscrete included) is refused by name.
"""

from __future__ import annotations

import json
import pickle
import warnings
import zipfile
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from seqrl.errors import ConfigError, DatasetError
from seqrl.threads import torch_threads

# Algorithm name (the zoo's folder name) -> (module, class). TQC, TRPO, ARS and QR-DQN live in
# sb3-contrib. DQN and QR-DQN act in Discrete spaces only, SAC and TQC in Box spaces only; PPO, A2C,
# TRPO and ARS in either (the zoo has PPO, A2C and TRPO agents of both kinds).
ZOO_ALGOS: dict[str, tuple[str, str]] = {
    "sac": ("stable_baselines3", "SAC"),
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "tqc": ("sb3_contrib", "TQC"),
    "trpo": ("sb3_contrib", "TRPO"),
    "ars": ("sb3_contrib", "ARS"),
    "dqn": ("stable_baselines3", "DQN"),
    "qrdqn": ("sb3_contrib", "QRDQN"),
}

# Algorithms that act in one kind of action space only (SB3 refuses the other).
ALGO_ACTIONS: dict[str, str] = {"sac": "continuous", "tqc": "continuous", "dqn": "discrete", "qrdqn": "discrete"}

# Placeholder for the cloudpickled functions (schedules: lr_schedule, learning_rate, clip_range,
# ARS's delta_std_schedule) in an SB3 zip. They only matter for training, and unpickling
# cloudpickled code across Python versions is fragile, so they are replaced by a constant.
_SCHEDULE_PLACEHOLDER = 1e-4


class Policy(Protocol):
    """What `collect` calls once per vector-env step."""

    spec: dict[str, Any]

    def __call__(self, obs: np.ndarray) -> np.ndarray:  # (n_envs, obs_dim) -> (n_envs, act_dim)
        ...


# --------------------------------------------------------------------------- action spaces
@dataclass(frozen=True)
class ActionSpec:
    """An environment's action space as collection sees it: a bounded 1-D Box (`low`, `high`)
    or a Discrete(n) (`n`, actions 0..n-1)."""

    space: str  # printable, e.g. "Discrete(4)" or "Box(-1.0, 1.0, (2,), float32)"
    n: int | None = None  # Discrete(n); None for a Box
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    dtype: Any = None  # what the environment's step takes

    @property
    def discrete(self) -> bool:
        return self.n is not None

    @property
    def act_dim(self) -> int:
        return 1 if self.discrete else len(self.low)

    def metadata(self) -> dict[str, Any]:
        """What a dataset's metadata records of the space (see seqrl.data.trajectories)."""
        if self.discrete:
            return {"action_space": {"type": "Discrete", "n": self.n}}
        return {"action_low": self.low.tolist(), "action_high": self.high.tolist()}

    def prepare(self, raw: Any, n_envs: int) -> tuple[np.ndarray, np.ndarray]:
        """A policy's output -> (the actions to record, (n_envs, act_dim); those to step with).

        Box: clipped to the bounds, recorded as executed (float64). Discrete: (n_envs,) or
        (n_envs, 1) whole numbers 0..n-1, recorded as (n_envs, 1) int64. Anything else is a
        ConfigError that says what was expected.
        """
        actions = np.asarray(raw)
        if not self.discrete:
            actions = actions.astype(np.float64)
            if actions.shape != (n_envs, self.act_dim):
                raise ConfigError(
                    f"policy returned actions of shape {actions.shape}, expected {(n_envs, self.act_dim)}"
                )
            if not np.all(np.isfinite(actions)):
                raise ConfigError("policy returned NaN or inf actions")
            actions = np.clip(actions, self.low, self.high)
            return actions, actions.astype(self.dtype)
        if actions.shape not in ((n_envs,), (n_envs, 1)):
            raise ConfigError(
                f"policy returned actions of shape {actions.shape} for the {self.space} action space; "
                f"expected {n_envs} action indices, shape ({n_envs},) or ({n_envs}, 1)"
                + (" (a continuous policy cannot act here)" if actions.ndim == 2 else "")
            )
        actions = actions.reshape(n_envs)
        if actions.dtype.kind not in "iu":
            bad = ~np.isfinite(actions) | (actions != np.round(actions)) if actions.dtype.kind == "f" else None
            if bad is None or bad.any():
                example = "" if bad is None else f" (e.g. {actions[bad][0].item():g})"
                raise ConfigError(
                    f"policy returned non-integer actions{example} for the {self.space} action space: a discrete "
                    "space takes action indices, a continuous policy cannot act here"
                )
        actions = actions.astype(np.int64)
        outside = (actions < 0) | (actions >= self.n)
        if outside.any():
            raise ConfigError(
                f"policy returned action {int(actions[outside][0])}, not an index of the {self.space} "
                f"action space (0..{self.n - 1})"
            )
        return actions[:, None], actions


def action_spec(space: Any, env_id: str | None = None) -> ActionSpec:
    """`space` (a gymnasium action space) as an ActionSpec; ConfigError naming what is unsupported."""
    import gymnasium as gym

    where = f" of {env_id}" if env_id else ""
    if isinstance(space, gym.spaces.MultiDiscrete):
        raise ConfigError(
            f"the action space{where} is MultiDiscrete ({space}), which seqrl cannot collect: "
            "it supports Discrete(n) and bounded 1-D Box action spaces"
        )
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise ConfigError(
                f"the action space{where} is {space}, starting at {int(space.start)}; seqrl supports "
                "Discrete(n) spaces whose actions are 0..n-1"
            )
        return ActionSpec(space=f"Discrete({int(space.n)})", n=int(space.n), dtype=np.int64)
    if isinstance(space, gym.spaces.Box):
        low, high = _box_bounds(space)
        return ActionSpec(space=str(space), low=low, high=high, dtype=space.dtype)
    raise ConfigError(
        f"the action space{where} is {space}, which seqrl cannot collect: it supports Discrete(n) "
        "and bounded 1-D Box action spaces"
    )


def reset_episodes(policy: Any, starts: np.ndarray) -> None:
    """Tell `policy` (if it keeps per-episode state) which environments start a new episode."""
    reset = getattr(policy, "reset", None)
    if reset is not None:
        reset(np.asarray(starts, dtype=bool))


# --------------------------------------------------------------------------- observation scaling
@dataclass(frozen=True)
class ObservationNormalizer:
    """SB3 VecNormalize's observation transform: clip((obs - mean) / sqrt(var + eps), ±clip).

    `held` marks features the agent only ever saw at one value in training (`held_features`):
    they are given that value, their mean, whatever the environment reports now."""

    mean: np.ndarray  # (obs_dim,)
    var: np.ndarray  # (obs_dim,)
    clip_obs: float
    epsilon: float
    held: np.ndarray | None = None  # (obs_dim,) bool

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.held is not None:
            obs = np.where(self.held, self.mean, obs)
        scaled = (obs - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(scaled, -self.clip_obs, self.clip_obs)


# A block of at least this many features with at most this variance in a -v3 agent's statistics
# was constant in training. The zoo's Ant-v3 agents were trained with mujoco-py >= 2, whose
# contact forces (84 of Ant-v3's 111 features) were all zero; issue 27's audit found that a held-out Ant PPO agent's
# vecnormalize.pkl has variance 1e-10 on every one of them. Today's MuJoCo reports real contact
# forces, which such an agent's statistics scale by 1e4 and clip to +-10: inputs it never saw.
HELD_BLOCK = 8
HELD_VARIANCE = 1e-8


def held_features(normalizer: ObservationNormalizer, trained_env: str) -> np.ndarray | None:
    """The features a `-v3` MuJoCo agent saw constant in training: runs of `HELD_BLOCK` or more
    with variance at most `HELD_VARIANCE` (bool mask), or None when there are none."""
    if not trained_env.split("/")[-1].endswith("-v3"):
        return None
    flat = np.asarray(normalizer.var) <= HELD_VARIANCE
    mask = np.zeros_like(flat)
    start = None
    for i, low in enumerate(np.append(flat, False)):
        if low and start is None:
            start = i
        elif not low and start is not None:
            if i - start >= HELD_BLOCK:
                mask[start:i] = True
            start = None
    return mask if mask.any() else None


class _PickledState:
    """Stands in for VecNormalize / RunningMeanStd while unpickling: keeps their attributes only.

    This avoids constructing SB3 objects (VecNormalize expects a wrapped env) just to read four
    numbers out of them.
    """

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _VecNormalizeUnpickler(pickle.Unpickler):
    """Unpickles the zoo's vecnormalize.pkl, allowing only the classes such a file contains.

    The files were written with the old `gym` package; its spaces are mapped to gymnasium's, so
    `gym` need not be installed. Anything outside the allow-list is refused: a pickle can run
    arbitrary code, and a statistics file has no reason to.
    """

    _STATE_HOLDERS = {
        ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize"),
        ("stable_baselines3.common.running_mean_std", "RunningMeanStd"),
    }
    _ALLOWED = {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        # The spaces' generators, pickled by files written with gymnasium spaces.
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._pcg64", "PCG64DXSM"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._philox", "Philox"),
        ("numpy.random._sfc64", "SFC64"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._STATE_HOLDERS:
            return _PickledState
        if module == "gym" or module.startswith("gym."):
            module = "gymnasium" + module[len("gym") :]
        if module.startswith("gymnasium.spaces"):
            # Files written with `gym` (the zoo's) and with gymnasium (SB3 >= 2.0) alike.
            return super().find_class(module, name)
        # Pickles from numpy 1.x name `numpy.core`, which numpy 2 renamed `numpy._core`.
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a vecnormalize file")


def load_vecnormalize(path: str | Path) -> ObservationNormalizer | None:
    """Read the observation statistics of an SB3 `vecnormalize.pkl` (without importing `gym`).

    None when the file says observations were not normalised (`norm_obs=False`).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            state = _VecNormalizeUnpickler(f).load()
        if not getattr(state, "norm_obs", True):
            return None
        rms = state.obs_rms
        return ObservationNormalizer(
            mean=np.asarray(rms.mean, dtype=np.float64),
            var=np.asarray(rms.var, dtype=np.float64),
            clip_obs=float(state.clip_obs),
            epsilon=float(state.epsilon),
        )
    except (OSError, pickle.UnpicklingError, AttributeError, EOFError) as exc:
        raise DatasetError(f"cannot read observation statistics from {path}: {exc}") from exc


# --------------------------------------------------------------------------- Stable-Baselines3
def zoo_env_name(env_id: str) -> str:
    """Gymnasium id -> the zoo's folder name: 'Hopper-v5' -> 'Hopper-v3' (same layouts)."""
    base = env_id.split("/")[-1].rsplit("-v", 1)[0]
    return f"{base}-v3"


def available_zoo_algos(zoo: str | Path, env_id: str) -> list[str]:
    """Algorithms that have a checkpoint for `env_id`'s task (any version) in the zoo folder."""
    from seqrl.collect.zoo import agent_runs

    return [
        a for a in ZOO_ALGOS
        if any((run / f"{run.name.rsplit('_', 1)[0]}.zip").is_file() for run in agent_runs(Path(zoo), a, env_id))
    ]


class ZooPolicy:
    """A loaded SB3 model plus its observation normalisation.

    Deterministic (the policy's mean / mode action) unless `deterministic=False`, in which case
    actions are sampled with torch's generator seeded from `seed` inside a forked RNG state, so
    sampling is reproducible and leaves torch's global RNG untouched.

    Inference runs on `num_threads` torch threads (default 1, None: torch's setting). A forward
    pass of these small MLPs on a few observations is far too small to split: measured on the
    shared 2-core machine under load, one call took 1.4 ms on 1 thread and 32 ms on 2, the
    threads spin-waiting for cores that other processes hold.
    """

    def __init__(
        self,
        model: Any,
        normalizer: ObservationNormalizer | None,
        *,
        deterministic: bool = True,
        seed: int | np.random.Generator | None = None,
        spec: dict[str, Any] | None = None,
        num_threads: int | None = 1,
        time_feature: Any = None,
        layout: Any = None,
    ) -> None:
        self.model = model
        self.num_threads = num_threads
        self.normalizer = normalizer
        self.deterministic = deterministic
        self._rng = np.random.default_rng(seed)
        self.spec = dict(spec or {}, deterministic=deterministic)
        self.time_feature = time_feature  # seqrl.collect.zoo.TimeFeature, if trained behind the wrapper
        self.layout = layout  # seqrl.collect.zoo.Layout: the env (and kwargs) it runs in
        self._steps: np.ndarray | None = None  # per env: steps into the current episode

    def reset(self, starts: np.ndarray) -> None:
        """Environments `starts` begin a new episode with the next observation."""
        starts = np.asarray(starts, dtype=bool)
        if self._steps is None or len(self._steps) != len(starts):
            self._steps = np.zeros(len(starts), dtype=np.int64)
        else:
            self._steps[starts] = 0

    def observations(self, obs: np.ndarray) -> np.ndarray:
        """What the network was trained on: the env's observation, plus the time feature (and
        the step counters advance), then VecNormalize's scaling."""
        obs = np.asarray(obs, dtype=np.float64)
        if self.time_feature is not None:
            if self._steps is None or len(self._steps) != len(obs):
                self._steps = np.zeros(len(obs), dtype=np.int64)
            obs = np.concatenate([obs, self.time_feature(self._steps)], axis=1)
            self._steps = self._steps + 1
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        return obs

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = self.observations(obs)
        with torch_threads(self.num_threads):
            if self.deterministic:
                actions, _ = self.model.predict(obs, deterministic=True)
                return np.asarray(actions)
            import torch

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self._rng.integers(2**63 - 1)))
                actions, _ = self.model.predict(obs, deterministic=False)
            return np.asarray(actions)


def _pickled_functions(model_path: Path) -> list[str]:
    """Keys of the SB3 zip's `data` that hold cloudpickled functions (the schedules)."""
    with zipfile.ZipFile(model_path) as archive:
        data = json.loads(archive.read("data"))
    return [
        key
        for key, value in data.items()
        if isinstance(value, dict) and "function" in str(value.get(":type:", ""))
    ]


def _check_action_kind(agent: Any, where: str, action_space: Any) -> None:
    """ConfigError if `agent` (a seqrl.collect.zoo.ZooAgent) acts in another kind of space than
    `action_space` (continuous against discrete, or another number of discrete actions), or the
    space is one seqrl cannot collect in (MultiDiscrete, ...)."""
    kind = action_spec(action_space, where)
    if agent.act_kind is not None and agent.act_kind != ("Discrete" if kind.discrete else "Box"):
        agent_actions = agent.describe_actions()
        env_kinds = f"discrete ({kind.space})" if kind.discrete else f"continuous ({kind.space})"
        raise ConfigError(
            f"the {agent.label} agent's actions are {agent_actions}, but {where}'s are {env_kinds}: "
            f"a {agent_actions.split()[0]} policy cannot act there"
        )
    if kind.discrete and agent.act_n is not None and agent.act_n != kind.n:
        raise ConfigError(f"the {agent.label} agent chooses among {agent.act_n} actions, but {where} has {kind.space}")


def load_zoo_policy(
    zoo: str | Path | None,
    algo: str,
    env_id: str,
    *,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = True,
    seed: int | None = None,
    device: str = "cpu",
    num_threads: int | None = 1,
) -> ZooPolicy:
    """Load the zoo's `algo` agent for `env_id` (a gymnasium id such as 'Hopper-v5').

    The agent's folder may be for another version of the task (the zoo's are -v3). Its
    config.yml, env_kwargs.yml and env_wrapper say what its network was trained on, and that
    observation is rebuilt: the env is made with the agent's env_kwargs (`env_kwargs` override
    them), with a layout keyword if the default layout has the wrong size (see
    `seqrl.collect.zoo.resolve_layout`), the time feature appended for agents trained behind
    TimeFeatureWrapper, VecNormalize's scaling applied. The env to collect in is the policy's
    `layout` (id and keyword arguments). A layout that cannot match is a ConfigError naming the
    sizes, never a state-dict size mismatch.
    """
    import gymnasium as gym

    from seqrl.collect.zoo import TimeFeature, read_zoo_agent, resolve_layout

    if zoo is None:
        raise ConfigError("no zoo of trained agents given: pass --zoo DIR or set SEQRL_ZOO")
    zoo = Path(zoo).expanduser()
    if not zoo.is_dir():
        raise DatasetError(f"zoo folder {zoo} does not exist (pass --zoo DIR or set SEQRL_ZOO)")
    algo = algo.lower()
    if algo not in ZOO_ALGOS:
        raise ConfigError(f"unknown algorithm {algo!r}; known: {', '.join(ZOO_ALGOS)}")
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ConfigError(f"unknown environment {env_id!r}: {exc}") from exc
    # The kind of actions first: an algorithm or agent for the other kind is the first thing to say.
    try:
        probe = gym.make(env_id, **(env_kwargs or {}))
    except Exception:  # noqa: BLE001 - resolve_layout names what is wrong with the environment
        probe = None
    space = None
    if probe is not None:
        try:
            space = probe.action_space
            kind = action_spec(space, env_id)  # MultiDiscrete and the like: refused by name
        finally:
            probe.close()
        only = ALGO_ACTIONS.get(algo)
        if only is not None and only != ("discrete" if kind.discrete else "continuous"):
            have = available_zoo_algos(zoo, env_id)
            raise ConfigError(
                f"{algo} acts in {only} action spaces only, but {env_id} has {kind.space} actions; "
                f"agents in {zoo} for {env_id}: {', '.join(have) or 'none'}"
            )
    try:
        agent = read_zoo_agent(zoo, algo, env_id)
    except DatasetError as exc:
        if "no " + algo not in str(exc):
            raise
        have = available_zoo_algos(zoo, env_id)
        raise DatasetError(f"{exc}; agents there for {env_id}: {', '.join(have) or 'none'}") from None
    if space is not None:
        _check_action_kind(agent, env_id, space)
    layout = resolve_layout(agent, env_id, env_kwargs)
    env = gym.make(layout.env_id, **layout.env_kwargs)
    try:
        time_feature = None
        if agent.time_feature is not None:
            from sb3_contrib.common.wrappers import TimeFeatureWrapper

            wrapped = TimeFeatureWrapper(env, **agent.time_feature)
            time_feature = TimeFeature(max_steps=int(wrapped._max_steps), test_mode=bool(wrapped._test_mode))
            observation_space = wrapped.observation_space
        else:
            observation_space = env.observation_space
        action_space = env.action_space
    finally:
        env.close()
    _check_action_kind(agent, layout.describe(), action_space)
    if agent.act_shape is not None and tuple(agent.act_shape) != tuple(action_space.shape):
        raise ConfigError(
            f"the {agent.label} agent acts with {agent.act_shape} actions, but {layout.describe()} "
            f"takes {action_space.shape}"
        )
    module, cls_name = ZOO_ALGOS[algo]
    import importlib

    cls = getattr(importlib.import_module(module), cls_name)
    model_path = agent.model_path
    try:
        custom_objects: dict[str, Any] = {
            **{key: _SCHEDULE_PLACEHOLDER for key in _pickled_functions(model_path)},
            "observation_space": observation_space,
            "action_space": action_space,
        }
        with warnings.catch_warnings():
            # The zoo's DQN zips predate SB3 2.4's optimizer layout; SB3 truncates the (unused)
            # optimizer state and says so. The policy network loads unchanged.
            warnings.filterwarnings("ignore", message="You are probably loading a DQN model")
            model = cls.load(model_path, custom_objects=custom_objects, device=device)
        if hasattr(model, "exploration_rate"):
            # DQN / QR-DQN: SB3's predict(deterministic=False) would act epsilon-greedily with the
            # epsilon saved from training (0.1 for the zoo's LunarLander DQN), from numpy's global,
            # unseeded generator. A Q-learning agent has no stochastic policy of its own, so it acts
            # greedily either way; epsilon-greedy noise is collect's `epsilon` (seeded, recorded).
            model.exploration_rate = 0.0
    except (zipfile.BadZipFile, KeyError, RuntimeError, ValueError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot load the {algo} agent {model_path}: {exc}") from exc
    norm_path = agent.norm_path
    normalizer = load_vecnormalize(norm_path) if norm_path is not None else None
    if normalizer is not None and normalizer.mean.shape != observation_space.shape:
        raise DatasetError(
            f"{norm_path}: statistics for {normalizer.mean.shape} observations, "
            f"but the agent's observations on {layout.describe()} have {observation_space.shape}"
        )
    held = held_features(normalizer, agent.trained_env) if normalizer is not None else None
    if held is not None:
        # What the agent was trained on: these features at their (constant) training value.
        normalizer = dataclasses.replace(normalizer, held=held)
    spec = {
        "kind": "zoo",
        "algo": algo,
        "env_id": layout.env_id,
        "checkpoint": f"{algo}/{model_path.parent.name}/{model_path.name}",
        "trained_env": agent.trained_env,
        "obs_normalization": normalizer is not None,
    }
    if held is not None:
        indices = np.flatnonzero(held)
        spec["held_features"] = {
            "count": int(len(indices)), "first": int(indices[0]), "last": int(indices[-1]),
            "why": f"constant in the agent's {agent.trained_env} training statistics (variance <= {HELD_VARIANCE:g}): "
                   "the policy sees them at their training value, the dataset records the environment's",
        }
    if layout.env_kwargs:
        spec["env_kwargs"] = layout.env_kwargs
    if time_feature is not None:
        spec["time_feature"] = {"max_steps": time_feature.max_steps, "test_mode": time_feature.test_mode}
    return ZooPolicy(
        model, normalizer, deterministic=deterministic, seed=seed, spec=spec, num_threads=num_threads,
        time_feature=time_feature, layout=layout,
    )


# --------------------------------------------------------------------------- hand-written and random
class LunarLanderHeuristic:
    """`gymnasium.envs.box2d.lunar_lander.heuristic` for the continuous lander, over a batch.

    The original takes one observation and reads the env only for its `continuous` flag; this is
    the same arithmetic on (n_envs, 8) arrays (checked against the original in the tests).
    """

    spec: dict[str, Any] = {"kind": "heuristic", "source": "gymnasium.envs.box2d.lunar_lander.heuristic"}

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        s = np.asarray(obs, dtype=np.float64)
        x, y, vx, vy, angle, angular_v = (s[:, k] for k in range(6))
        legs_down = (s[:, 6] != 0) | (s[:, 7] != 0)
        angle_targ = np.clip(x * 0.5 + vx * 1.0, -0.4, 0.4)  # point towards the centre
        hover_targ = 0.55 * np.abs(x)  # target height grows with horizontal offset
        angle_todo = (angle_targ - angle) * 0.5 - angular_v * 1.0
        hover_todo = (hover_targ - y) * 0.5 - vy * 0.5
        # After touch-down only damp the fall.
        angle_todo = np.where(legs_down, 0.0, angle_todo)
        hover_todo = np.where(legs_down, -vy * 0.5, hover_todo)
        actions = np.stack([hover_todo * 20 - 1, -angle_todo * 20], axis=1)
        return np.clip(actions, -1.0, 1.0)


def _box_bounds(action_space: Any) -> tuple[np.ndarray, np.ndarray]:
    low = np.asarray(getattr(action_space, "low", None), dtype=np.float64)
    high = np.asarray(getattr(action_space, "high", None), dtype=np.float64)
    if low.ndim != 1 or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ConfigError(f"need a bounded 1-D Box action space, got {action_space}")
    return low, high


class RandomPolicy:
    """Uniform actions over a bounded Box, or uniform indices 0..n-1 of a Discrete(n) space
    ((n_envs,) int64), from a seeded np.random.Generator."""

    def __init__(self, action_space: Any, seed: int | np.random.Generator | None = None) -> None:
        import gymnasium as gym

        if isinstance(action_space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)):
            self.n: int | None = action_spec(action_space).n
        else:
            self.n = None
            self.low, self.high = _box_bounds(action_space)
        self._rng = np.random.default_rng(seed)
        self.spec = {"kind": "random"}

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.n is not None:
            return self._rng.integers(0, self.n, size=len(obs), dtype=np.int64)
        return self._rng.uniform(self.low, self.high, size=(len(obs), len(self.low)))


class GaussianNoise:
    """`policy`'s actions plus N(0, std²) noise (std in action units), clipped to the box."""

    def __init__(
        self, policy: Policy, std: float, action_space: Any, seed: int | np.random.Generator | None = None
    ) -> None:
        if not np.isfinite(std) or std < 0:
            raise ConfigError(f"noise std must be a finite number >= 0, got {std}")
        self.policy = policy
        self.std = float(std)
        self.low, self.high = _box_bounds(action_space)
        self._rng = np.random.default_rng(seed)
        self.spec = dict(getattr(policy, "spec", {}), noise_std=self.std)

    def reset(self, starts: np.ndarray) -> None:
        reset_episodes(self.policy, starts)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        actions = np.asarray(self.policy(obs), dtype=np.float64)
        noisy = actions + self._rng.normal(0.0, self.std, size=actions.shape)
        return np.clip(noisy, self.low, self.high)


def check_epsilon(epsilon: Any, what: str = "epsilon") -> float:
    """`epsilon` as a float in [0, 1] (a probability), or a ConfigError that says so."""
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number in [0, 1] (the probability of a random action), got {epsilon!r}") from None
    if not (0.0 <= value <= 1.0):  # NaN fails too
        raise ConfigError(
            f"{what} must be in [0, 1]: for discrete actions the noise is epsilon-greedy, the probability "
            f"of a uniformly random action; got {epsilon!r}"
        )
    return value


class EpsilonGreedy:
    """`policy`'s action, replaced with probability `epsilon` by a uniformly random one of the
    Discrete(n) space's n actions (which may be the same action). Per environment and step,
    from its own seeded generator. epsilon = 0 is `policy` itself; epsilon = 1 is uniform random."""

    def __init__(
        self, policy: Policy, epsilon: float, action_space: Any, seed: int | np.random.Generator | None = None
    ) -> None:
        self.epsilon = check_epsilon(epsilon)
        spec = action_spec(action_space)
        if not spec.discrete:
            raise ConfigError(
                f"epsilon-greedy noise needs a Discrete action space, got {spec.space}; use Gaussian action noise there"
            )
        self.policy = policy
        self.n = spec.n
        self._rng = np.random.default_rng(seed)
        self.spec = dict(getattr(policy, "spec", {}), epsilon=self.epsilon)

    def reset(self, starts: np.ndarray) -> None:
        reset_episodes(self.policy, starts)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        greedy = np.asarray(self.policy(obs))  # called every step: policies may keep per-episode state
        n_envs = len(obs)
        if greedy.shape not in ((n_envs,), (n_envs, 1)):
            raise ConfigError(
                f"policy returned actions of shape {greedy.shape}; epsilon-greedy needs {n_envs} action "
                f"indices of Discrete({self.n}) (a continuous policy cannot act here)"
            )
        explore = self._rng.random(n_envs) < self.epsilon
        random = self._rng.integers(0, self.n, size=n_envs, dtype=np.int64)
        return np.where(explore, random, greedy.reshape(n_envs))
