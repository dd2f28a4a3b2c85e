"""rl-baselines3-zoo agents as they were trained: their folder, hyperparameters and observation layout.

An agent folder in the zoo's layout is `ALGO/ENV-vN_RUN/` holding `ENV-vN.zip` (the SB3 model)
and `ENV-vN/` with `config.yml` (the hyperparameters, including `normalize` and `env_wrapper`),
`env_kwargs.yml` (keyword arguments for `gym.make`), `args.yml` and, for agents trained with
`normalize`, `vecnormalize.pkl`.

What the agent's network sees is not always the environment's observation:

- `env_wrapper: sb3_contrib.common.wrappers.TimeFeatureWrapper` (the zoo's PPO, A2C and TRPO
  MuJoCo agents often have it) appends the remaining time, 1 - t / max_steps, as one more
  feature. `TimeFeature` rebuilds it per environment from the step count, with sb3-contrib's
  own wrapper supplying max_steps and the test-mode flag, so datasets keep the task's own
  observations and only the policy sees the extra feature.
- The zoo trained on the `-v3` MuJoCo tasks. Most have the same layout in `-v5`; some do not
  (Ant: 111 features in v3, with contact forces of all 14 bodies; 105 in v5). `resolve_layout`
  finds an environment whose observation has the size the agent expects: the requested one
  with the agent's env_kwargs, then with a layout keyword flipped (e.g. Ant-v4's
  use_contact_forces=True gives v3's 111), and names the sizes of everything it tried when
  nothing matches.

The YAML files are read with a safe loader that knows only the tags the zoo writes
(`!!python/object/apply:collections.OrderedDict`, `!!python/tuple`); wrappers are looked up in
an allow-list, never imported by the name a file gives.
"""

from __future__ import annotations

import inspect
import json
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seqrl.errors import ConfigError, DatasetError

# Names the zoo's config.yml has used for sb3-contrib's TimeFeatureWrapper over the years.
TIME_FEATURE_WRAPPERS = {
    "sb3_contrib.common.wrappers.TimeFeatureWrapper",
    "sb3_contrib.common.wrappers.time_feature.TimeFeatureWrapper",
    "rl_zoo3.wrappers.TimeFeatureWrapper",
    "utils.wrappers.TimeFeatureWrapper",
}
# Keyword arguments of gymnasium's MuJoCo environments that change the observation layout.
LAYOUT_KEYWORDS = ("use_contact_forces", "include_cfrc_ext_in_observation", "exclude_current_positions_from_observation")


# ----------------------------------------------------------------------------- YAML
class _ZooYamlLoader(yaml.SafeLoader):
    """SafeLoader plus the two Python tags the zoo's YAML files contain; anything else fails."""


def _ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    # `!!python/object/apply:collections.OrderedDict [[[key, value], ...]]`
    (pairs,) = loader.construct_sequence(node, deep=True)
    return {key: value for key, value in pairs}


_ZooYamlLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)
_ZooYamlLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node, deep=True))
)


def read_zoo_yaml(path: str | Path) -> Any:
    """A zoo config.yml / env_kwargs.yml / args.yml as plain Python values."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_ZooYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc


def parse_wrappers(env_wrapper: Any) -> list[tuple[str, dict[str, Any]]]:
    """config.yml's `env_wrapper` (None, a name, {name: kwargs}, or a list of those) as (name, kwargs)."""
    if env_wrapper is None:
        return []
    items = env_wrapper if isinstance(env_wrapper, list) else [env_wrapper]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append((item, {}))
        elif isinstance(item, dict) and len(item) == 1:
            name, kwargs = next(iter(item.items()))
            out.append((str(name), dict(kwargs or {})))
        else:
            raise ConfigError(f"cannot read env_wrapper entry {item!r}")
    return out


# ----------------------------------------------------------------------------- the agent folder
def _split_version(env_id: str) -> tuple[str, int | None]:
    """'Hopper-v5' -> ('Hopper', 5); 'ns/Task' -> ('Task', None)."""
    name = env_id.split("/")[-1]
    match = re.fullmatch(r"(.+)-v(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else (name, None)


@dataclass(frozen=True)
class ZooAgent:
    """One trained agent in a zoo folder, as its files describe it."""

    algo: str
    run_dir: Path  # ALGO/ENV-vN_RUN
    env_name: str  # ENV-vN, the zoo's name of the task it was trained on
    trained_env: str  # args.yml's env, else env_name
    model_path: Path
    norm_path: Path | None  # vecnormalize.pkl, if there is one
    hyperparams: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    wrappers: tuple[tuple[str, dict[str, Any]], ...] = ()
    obs_shape: tuple[int, ...] | None = None  # what the network takes, from the model zip
    act_shape: tuple[int, ...] | None = None
    act_kind: str | None = None  # the zip's action-space class: "Box", "Discrete", "MultiDiscrete", ...
    act_n: int | None = None  # Discrete(n)'s n

    def describe_actions(self) -> str:
        """'discrete (Discrete(4))', 'continuous (Box (3,))' or the class the zip names."""
        if self.act_kind == "Discrete":
            return f"discrete (Discrete({self.act_n}))" if self.act_n else "discrete (Discrete)"
        if self.act_kind == "Box":
            return "continuous (Box" + ("" if self.act_shape is None else f" {self.act_shape}") + ")"
        return f"of type {self.act_kind}"

    @property
    def time_feature(self) -> dict[str, Any] | None:
        """The TimeFeatureWrapper's keyword arguments, if the agent was trained behind one."""
        for name, kwargs in self.wrappers:
            if name in TIME_FEATURE_WRAPPERS:
                return kwargs
        return None

    @property
    def extra_features(self) -> int:
        """Observation features the wrappers add to the environment's own."""
        return 1 if self.time_feature is not None else 0

    @property
    def label(self) -> str:
        return f"{self.algo}/{self.run_dir.name}"


def agent_runs(zoo: Path, algo: str, env_id: str) -> list[Path]:
    """The zoo's run folders of `algo` on any version of `env_id`'s task, best match first:
    the same version, then the newest; within a version the lowest run number."""
    base, version = _split_version(env_id)
    pattern = re.compile(rf"{re.escape(base)}-v(\d+)_(\d+)")
    found = []
    algo_dir = zoo / algo
    if algo_dir.is_dir():
        for path in algo_dir.iterdir():
            match = pattern.fullmatch(path.name)
            if match and path.is_dir():
                v, run = int(match.group(1)), int(match.group(2))
                found.append(((v != version, -v, run), path))
    return [path for _, path in sorted(found)]


def _space_shape(space: Any) -> tuple[int, ...] | None:
    """The shape of a space as the SB3 zip's JSON `data` describes it (gym or gymnasium)."""
    if not isinstance(space, dict):
        return None
    for key in ("shape", "_shape"):
        shape = space.get(key)
        if isinstance(shape, list) and all(isinstance(s, int) for s in shape):
            return tuple(shape)
    return None


def _space_kind(space: Any) -> tuple[str | None, int | None]:
    """(class name, n) of the space the SB3 zip's JSON `data` describes: its ':type:' is e.g.
    "<class 'gym.spaces.discrete.Discrete'>" (gym or gymnasium alike)."""
    if not isinstance(space, dict):
        return None, None
    match = re.search(r"spaces\.[a-z_]+\.(\w+)'", str(space.get(":type:", "")))
    n = space.get("n")
    return (match.group(1) if match else None), (n if isinstance(n, int) and not isinstance(n, bool) else None)


def read_zoo_agent(zoo: str | Path, algo: str, env_id: str) -> ZooAgent:
    """The zoo's `algo` agent for `env_id`'s task (any trained version; see `agent_runs`)."""
    zoo = Path(zoo)
    runs = agent_runs(zoo, algo, env_id)
    for run_dir in runs:
        env_name = run_dir.name.rsplit("_", 1)[0]
        model_path = run_dir / f"{env_name}.zip"
        if model_path.is_file():
            break
    else:
        raise DatasetError(f"no {algo} agent for {env_id} in {zoo} (expected {zoo / algo}/<task>-vN_1/<task>-vN.zip)")
    files = run_dir / env_name
    hyperparams = read_zoo_yaml(files / "config.yml") if (files / "config.yml").is_file() else {}
    env_kwargs = read_zoo_yaml(files / "env_kwargs.yml") if (files / "env_kwargs.yml").is_file() else {}
    args = read_zoo_yaml(files / "args.yml") if (files / "args.yml").is_file() else {}
    if not isinstance(hyperparams, dict) or not isinstance(env_kwargs or {}, dict):
        raise DatasetError(f"{files}: config.yml and env_kwargs.yml must hold mappings")
    if isinstance(args, dict) and isinstance(args.get("env_kwargs"), dict):
        env_kwargs = {**args["env_kwargs"], **(env_kwargs or {})}
    try:
        with zipfile.ZipFile(model_path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read the {algo} agent {model_path}: {exc}") from exc
    norm_path = files / "vecnormalize.pkl"
    trained_env = args.get("env") if isinstance(args, dict) and isinstance(args.get("env"), str) else env_name
    return ZooAgent(
        algo=algo,
        run_dir=run_dir,
        env_name=env_name,
        trained_env=trained_env,
        model_path=model_path,
        norm_path=norm_path if norm_path.is_file() else None,
        hyperparams=hyperparams,
        env_kwargs=dict(env_kwargs or {}),
        wrappers=tuple(parse_wrappers(hyperparams.get("env_wrapper"))),
        obs_shape=_space_shape(data.get("observation_space")),
        act_shape=_space_shape(data.get("action_space")),
        act_kind=_space_kind(data.get("action_space"))[0],
        act_n=_space_kind(data.get("action_space"))[1],
    )


def check_supported(agent: ZooAgent) -> None:
    """ConfigError for what seqrl cannot rebuild: unknown wrappers, frame stacking, images."""
    unknown = [name for name, _ in agent.wrappers if name not in TIME_FEATURE_WRAPPERS]
    if unknown:
        raise ConfigError(
            f"the {agent.label} agent was trained behind {', '.join(unknown)}, which seqrl cannot rebuild "
            "(it rebuilds TimeFeatureWrapper only)"
        )
    if agent.hyperparams.get("frame_stack"):
        raise ConfigError(f"the {agent.label} agent was trained on stacked frames, which seqrl cannot rebuild")
    if agent.obs_shape is not None and len(agent.obs_shape) != 1:
        raise ConfigError(f"the {agent.label} agent takes observations of shape {agent.obs_shape}; only flat ones are supported")


# ----------------------------------------------------------------------------- observation layout
@dataclass(frozen=True)
class Layout:
    """An environment (id and gym.make keyword arguments) whose observations an agent takes."""

    env_id: str
    env_kwargs: dict[str, Any]

    def describe(self) -> str:
        if not self.env_kwargs:
            return self.env_id
        return f"{self.env_id} with " + ", ".join(f"{k}={v!r}" for k, v in self.env_kwargs.items())


def observation_size(env_id: str, env_kwargs: dict[str, Any]) -> int | str:
    """The flat observation size of gym.make(env_id, **env_kwargs), or why it cannot be made."""
    import gymnasium as gym

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = gym.make(env_id, **env_kwargs)
    except Exception as exc:  # noqa: BLE001 - unknown kwargs, missing mujoco-py for v3, ...
        return f"cannot be made here ({type(exc).__name__})"
    try:
        shape = env.observation_space.shape
        return int(np.prod(shape)) if shape else "not a flat Box"
    finally:
        env.close()


def _layout_keywords(env_id: str) -> dict[str, bool]:
    """Boolean layout keywords the environment takes, with their defaults."""
    import gymnasium as gym

    try:
        spec = gym.spec(env_id)
        creator = gym.envs.registration.load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
        params = inspect.signature(creator).parameters
    except Exception:  # noqa: BLE001 - an id that is not registered, a creator without a signature
        return {}
    defaults = {**{k: p.default for k, p in params.items()}, **(spec.kwargs or {})}
    return {k: defaults[k] for k in LAYOUT_KEYWORDS if isinstance(defaults.get(k), bool)}


def candidate_layouts(env_id: str, env_kwargs: dict[str, Any]) -> list[Layout]:
    """`env_id` with `env_kwargs`, then with each layout keyword flipped."""
    layouts = [Layout(env_id, dict(env_kwargs))]
    for key, default in _layout_keywords(env_id).items():
        if key not in env_kwargs:
            layouts.append(Layout(env_id, {**env_kwargs, key: not default}))
    return layouts


def other_versions(env_id: str) -> list[str]:
    """Registered ids of the same task in other versions, newest first ('Ant-v5' -> Ant-v4, v3, v2)."""
    import gymnasium as gym

    base, version = _split_version(env_id)
    namespace = env_id.rsplit("/", 1)[0] + "/" if "/" in env_id else ""
    found = []
    for key in gym.registry:
        b, v = _split_version(key)
        if b == base and v is not None and v != version and key.startswith(namespace) and key.count("/") == env_id.count("/"):
            found.append((-v, key))
    return [key for _, key in sorted(found)]


def resolve_layout(agent: ZooAgent, env_id: str, env_kwargs: dict[str, Any] | None = None) -> Layout:
    """The environment to run `agent` in for task `env_id`: `env_id` with the agent's env_kwargs
    (and `env_kwargs`, which override them), or with a layout keyword flipped, whichever gives
    the observation size the agent takes. ConfigError naming every size tried otherwise, and
    another version of the task that matches, if there is one."""
    check_supported(agent)
    kwargs = {**agent.env_kwargs, **(env_kwargs or {})}
    first = observation_size(env_id, kwargs)
    if isinstance(first, str) and "cannot be made" in first:
        import gymnasium as gym

        try:
            gym.spec(env_id)
        except gym.error.Error as exc:
            raise ConfigError(f"unknown environment {env_id!r}: {exc}") from exc
        raise ConfigError(f"{Layout(env_id, kwargs).describe()} {first}: check --env-kwargs and the agent's env_kwargs.yml")
    if agent.obs_shape is None:
        return Layout(env_id, kwargs)  # nothing to check against: SB3 will say if it does not fit
    expected = agent.obs_shape[0]
    needed = expected - agent.extra_features
    tried: list[tuple[Layout, int | str]] = []
    for layout in candidate_layouts(env_id, kwargs):
        size = first if layout.env_kwargs == kwargs else observation_size(layout.env_id, layout.env_kwargs)
        if size == needed:
            return layout
        tried.append((layout, size))
    wrapper_note = f" ({needed} from the environment + 1 time feature)" if agent.extra_features else ""
    message = (
        f"the {agent.label} agent (trained on {agent.trained_env}) takes {expected} observation "
        f"features{wrapper_note}, but "
        + "; ".join(f"{layout.describe()} gives {size}" for layout, size in tried)
    )
    alternatives = []
    for other in other_versions(env_id):
        for layout in candidate_layouts(other, {k: v for k, v in kwargs.items() if k not in LAYOUT_KEYWORDS}):
            if observation_size(layout.env_id, layout.env_kwargs) == needed:
                alternatives.append(layout)
                break
    if alternatives:
        best = alternatives[0]
        hint = f"--env {best.env_id}" + (
            " --env-kwargs " + " ".join(f"{k}={json.dumps(v)}" for k, v in best.env_kwargs.items()) if best.env_kwargs else ""
        )
        message += f". {best.describe()} gives {needed} and matches: collect with {hint}"
    else:
        message += f". No registered version of the task gives {needed}."
    raise ConfigError(message)


# ----------------------------------------------------------------------------- time feature
@dataclass
class TimeFeature:
    """sb3-contrib TimeFeatureWrapper's extra feature, rebuilt per environment from step counts:
    1 - t / max_steps after t steps of the episode (1.0 throughout in test mode)."""

    max_steps: int
    test_mode: bool = False

    def __call__(self, steps: np.ndarray) -> np.ndarray:
        """(n,) step counts -> (n, 1) features."""
        steps = np.asarray(steps, dtype=np.float64)
        feature = np.ones_like(steps) if self.test_mode else 1.0 - steps / self.max_steps
        return feature[:, None]
