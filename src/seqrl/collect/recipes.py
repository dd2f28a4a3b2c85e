"""Named dataset recipes rebuilding D4RL's menu from real behaviour policies, and `seqrl collect`.

A recipe is an environment plus one or more sources (a policy, a noise level, a share of the
transitions); the sources' datasets are collected one after the other and concatenated, so
`medium-expert` is literally medium data followed by expert data, as in D4RL.

Policies (measured returns on the -v5 tasks are in docs/datasets.md):
- MuJoCo `expert`: the zoo's strongest reliable agent (hopper TRPO, halfcheetah TQC, walker2d
  TQC); `medium`: a reliable agent at roughly a fifth to a half of the expert's normalized
  score (hopper SAC, halfcheetah PPO, walker2d ARS; halfcheetah's ARS, closer to D4RL's
  medium, flips over in about a third of its episodes, so it only appears in `mixed`);
  `random`: uniform random actions (D4RL used a randomly initialised network; uniform actions
  are the policy-free equivalent); `mixed`: equal shares of random data and four agents with
  action noise 0.1-0.3.
- LunarLanderContinuous: gymnasium's heuristic lander controller is the expert; with Gaussian
  action noise of std 1.0 it scores about half of the expert's normalized return (`medium`).
  Its reference returns (random, expert) are measured at collection with a fixed seed, so
  every lunarlander dataset, whatever its collection seed, is normalised the same way.
- LunarLander with discrete actions (`lunarlander-discrete-*`, on LunarLander-v3): the zoo's PPO
  agent is the expert, its DQN agent with epsilon-greedy 0.3 the medium (about half the
  expert's normalized return); the datasets store Discrete(4) actions.
- Key-to-Door (`keydoor-random`, `keydoor-mixed`, on seqrl/DoorKey-5x5-v0): random walks, and
  the scripted solver (`scripted`: key, pickup, door, toggle, goal) with epsilon-greedy noise;
  see seqrl.collect.keydoor. The noise-free solver is the reference expert.

Noise: for a task with Box actions it is Gaussian, std in action units (`ALGO:0.3`); for a task
with Discrete actions it is epsilon-greedy, the probability of a uniformly random action
(`dqn:0.1`), in [0, 1].

Tasks without a recipe: `seqrl collect --env ENV_ID --policy ALGO[:noise] ...` (or
`custom_recipe`) mixes the given sources in equal shares the same way. Any zoo agent for the
task can be a source (its observation is rebuilt, see seqrl.collect.zoo); `random` and (for the
lander) `heuristic` too. Outside D4RL's tasks, the reference returns are those of the random
policy and of the strongest source policy (without its action noise), measured with the fixed
reference seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import tyro

from seqrl.collect.policies import LunarLanderHeuristic, RandomPolicy, ZOO_ALGOS, load_zoo_policy
from seqrl.collect.zoo import Layout
from seqrl.collect.rollout import collect, evaluate_returns, finished_episode_mask
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import ConfigError, DatasetError

# Defaults sized for a 2-core laptop: at the ~1200 transitions/s measured in docs/datasets.md,
# D4RL's 1M transitions would take about 15 minutes per MuJoCo dataset.
MUJOCO_DEFAULT_TRANSITIONS = 100_000
LUNARLANDER_DEFAULT_TRANSITIONS = 50_000
LUNARLANDER_DISCRETE_DEFAULT_TRANSITIONS = 50_000
MAZE_DEFAULT_TRANSITIONS = 100_000  # about 1000 goal-reaching episodes (D4RL maze2d has 1M)
KEYDOOR_DEFAULT_TRANSITIONS = 50_000  # about 220 random walks of 250 steps (seqrl.collect.keydoor)
# Reference returns for non-D4RL tasks: this many episodes each of the random and expert policy,
# with this fixed seed (independent of the collection seed, so references are comparable).
REFERENCE_EPISODES = 20
REFERENCE_SEED = 1_000_000


@dataclass(frozen=True)
class Source:
    """One behaviour policy in a recipe."""

    policy: str  # "random", "heuristic", "waypoint", "scripted" (Key-to-Door), or a zoo algorithm ("sac", "tqc", "ppo", "dqn", ...)
    noise_std: float = 0.0  # Box actions: Gaussian action noise, in action units (clipped to the bounds)
    share: float = 1.0  # fraction of the recipe's transitions (normalised over the sources)
    epsilon: float = 0.0  # Discrete actions: probability of a uniformly random action (epsilon-greedy)

    def noise_label(self) -> str:
        """'', ' + noise 0.3' or ' + epsilon 0.1'."""
        if self.epsilon:
            return f" + epsilon {self.epsilon:g}"
        return f" + noise {self.noise_std:g}" if self.noise_std else ""


@dataclass(frozen=True)
class Recipe:
    name: str
    env_id: str
    sources: tuple[Source, ...]
    default_transitions: int
    description: str
    # Policies whose best return is the reference expert return (non-D4RL tasks); default: the
    # sources' non-random policies.
    reference_policies: tuple[str, ...] = ()
    # The policy whose mean return is the reference random return: uniform random actions, or a
    # task's own notion of random behaviour (the graph's random walk).
    reference_random: str = "random"

    @property
    def uses_zoo(self) -> bool:
        """Whether a source, or the reference expert, is a zoo agent."""
        return any(s.policy in ZOO_ALGOS for s in self.sources) or any(p in ZOO_ALGOS for p in self.reference_policies)

    @property
    def needs_reference_returns(self) -> bool:
        """True where D4RL has no reference returns (scores.D4RL_REFERENCE_RETURNS)."""
        from seqrl.data.scores import D4RL_REFERENCE_RETURNS, task_family

        return task_family(self.env_id) not in D4RL_REFERENCE_RETURNS


def _mujoco_recipes(family: str, env_id: str, medium: str, expert: str, mixed: tuple[Source, ...]) -> list[Recipe]:
    n = MUJOCO_DEFAULT_TRANSITIONS
    return [
        Recipe(f"{family}-random", env_id, (Source("random"),), n, "uniform random actions"),
        Recipe(f"{family}-medium", env_id, (Source(medium),), n, f"zoo {medium.upper()} agent, deterministic"),
        Recipe(f"{family}-expert", env_id, (Source(expert),), n, f"zoo {expert.upper()} agent, deterministic"),
        Recipe(
            f"{family}-medium-expert",
            env_id,
            (Source(medium, share=0.5), Source(expert, share=0.5)),
            n,
            f"half {medium.upper()} (medium), half {expert.upper()} (expert)",
        ),
        Recipe(
            f"{family}-mixed",
            env_id,
            mixed,
            n,
            "equal shares of " + ", ".join(f"{s.policy}" + (f"+noise {s.noise_std}" if s.noise_std else "") for s in mixed),
        ),
    ]


def _lunarlander_recipes() -> list[Recipe]:
    env_id, n = "LunarLanderContinuous-v3", LUNARLANDER_DEFAULT_TRANSITIONS
    medium = Source("heuristic", noise_std=1.0)
    expert = ("heuristic",)  # the reference expert of every lunarlander dataset
    return [
        Recipe("lunarlander-random", env_id, (Source("random"),), n, "uniform random actions", expert),
        Recipe("lunarlander-medium", env_id, (medium,), n, "heuristic controller + Gaussian noise std 1.0", expert),
        Recipe("lunarlander-expert", env_id, (Source("heuristic"),), n, "gymnasium's heuristic controller", expert),
        Recipe(
            "lunarlander-medium-expert",
            env_id,
            (Source("heuristic", 1.0, share=0.5), Source("heuristic", share=0.5)),
            n,
            "half noisy heuristic (medium), half heuristic (expert)",
            expert,
        ),
    ]


def _lunarlander_discrete_recipes() -> list[Recipe]:
    # Gymnasium's LunarLander-v3 (4 discrete actions) with the zoo's agents trained on -v2 (same
    # layout). Measured over 50 episodes (docs/datasets.md): PPO 247 ± 21, the most reliable
    # agent, is the expert; DQN with epsilon-greedy 0.3, as the DQN-replay data got its spread,
    # scores 32 ± 55, about half of the expert's normalized return (random: -191), like the
    # continuous lander's medium. `mixed` follows the MuJoCo recipes: equal shares of random
    # data and four agents with epsilon 0.1-0.3.
    env_id, n = "LunarLander-v3", LUNARLANDER_DISCRETE_DEFAULT_TRANSITIONS
    medium, expert = Source("dqn", epsilon=0.3), Source("ppo")
    reference = ("ppo",)  # the reference expert of every lunarlander-discrete dataset
    mixed = (Source("random"), Source("dqn", epsilon=0.3), Source("trpo", epsilon=0.2), Source("a2c", epsilon=0.1),
             Source("ppo", epsilon=0.1))
    return [
        Recipe("lunarlander-discrete-random", env_id, (Source("random"),), n, "uniform random actions", reference),
        Recipe("lunarlander-discrete-medium", env_id, (medium,), n, "zoo DQN agent, epsilon-greedy 0.3", reference),
        Recipe("lunarlander-discrete-expert", env_id, (expert,), n, "zoo PPO agent, deterministic", reference),
        Recipe(
            "lunarlander-discrete-medium-expert",
            env_id,
            (Source("dqn", share=0.5, epsilon=0.3), Source("ppo", share=0.5)),
            n,
            "half DQN + epsilon 0.3 (medium), half PPO (expert)",
            reference,
        ),
        Recipe(
            "lunarlander-discrete-mixed", env_id, mixed, n,
            "equal shares of " + ", ".join(s.policy + s.noise_label().replace(" + ", "+") for s in mixed), reference,
        ),
    ]


def _maze_recipes() -> list[Recipe]:
    from seqrl.collect.maze import ENV_ID

    # D4RL maze2d's recipe: the waypoint controller with Gaussian action noise (std 0.5, its
    # --noisy setting), start and goal cells drawn uniformly each episode; the noise-free
    # controller is the reference expert.
    return [
        Recipe("pointmaze-fourrooms", ENV_ID, (Source("waypoint", noise_std=0.5),), MAZE_DEFAULT_TRANSITIONS,
               "waypoint controller + Gaussian noise std 0.5, uniform start and goal cells", ("waypoint",)),
    ]


def _graph_recipes() -> list[Recipe]:
    from seqrl.collect.graph import DEFAULT_TRANSITIONS, ENV_ID

    # The DT paper's shortest-path data: random walks (a uniformly random neighbour each step)
    # from uniformly random start nodes; the shortest-path policy is the reference expert and
    # the random walk the reference random policy.
    return [
        Recipe("graph-random-walks", ENV_ID, (Source("random-walk"),), DEFAULT_TRANSITIONS,
               "random walks from random start nodes", ("shortest-path",), reference_random="random-walk"),
    ]


def _keydoor_recipes() -> list[Recipe]:
    from seqrl.collect.keydoor import keydoor_recipes

    return [Recipe(name, env_id, tuple(Source(**s) for s in sources), KEYDOOR_DEFAULT_TRANSITIONS, description,
                   ("scripted",)) for name, env_id, sources, description in keydoor_recipes()]


def _all_recipes() -> dict[str, Recipe]:
    recipes = [
        *_mujoco_recipes(
            "hopper", "Hopper-v5", medium="sac", expert="trpo",
            mixed=(Source("random"), Source("a2c", 0.1), Source("sac", 0.3), Source("ppo", 0.1), Source("trpo", 0.3)),
        ),
        *_mujoco_recipes(
            "halfcheetah", "HalfCheetah-v5", medium="ppo", expert="tqc",
            mixed=(Source("random"), Source("a2c", 0.1), Source("ars", 0.1), Source("sac", 0.3), Source("tqc", 0.3)),
        ),
        *_mujoco_recipes(
            "walker2d", "Walker2d-v5", medium="ars", expert="tqc",
            mixed=(Source("random"), Source("a2c", 0.1), Source("ars", 0.3), Source("sac", 0.1), Source("tqc", 0.3)),
        ),
        *_lunarlander_recipes(),
        *_lunarlander_discrete_recipes(),
        *_maze_recipes(),
        *_graph_recipes(),
        *_keydoor_recipes(),
    ]  # fmt: skip
    return {r.name: r for r in recipes}


RECIPES: dict[str, Recipe] = _all_recipes()


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}") from None


def parse_source(text: str, discrete: bool = False) -> Source:
    """'ppo' -> Source('ppo'); 'sac:0.3' -> Source('sac', noise_std=0.3); also random, heuristic.
    For a task with Discrete actions (`discrete`), the number after ':' is epsilon, in [0, 1]:
    'dqn:0.1' -> Source('dqn', epsilon=0.1)."""
    from seqrl.collect.policies import check_epsilon
    from seqrl.validation import require_positive

    policy, _, noise = text.strip().partition(":")
    policy = policy.strip().lower()
    if policy not in ("random", "heuristic", "waypoint", "scripted", *ZOO_ALGOS):
        raise ConfigError(f"--policy {text!r}: unknown policy {policy!r} (random, heuristic, waypoint, scripted, "
                          f"{', '.join(ZOO_ALGOS)})")
    if not noise:
        return Source(policy)
    what = "epsilon, the probability of a random action" if discrete else "action-noise std"
    try:
        value = float(noise)
    except ValueError:
        raise ConfigError(f"--policy {text!r}: the noise after ':' must be a number ({what})") from None
    if discrete:
        return Source(policy, epsilon=check_epsilon(value, f"--policy {text!r}: the epsilon after ':'"))
    return Source(policy, noise_std=require_positive(f"--policy {policy}:NOISE", value, allow_zero=True))


def _source_label(source: Source) -> str:
    """'sac', 'sac_noise0p3', 'dqn_eps0p1' (dataset names allow letters, digits, '-' and '_')."""
    if source.epsilon:
        return f"{source.policy}_eps{source.epsilon:g}".replace(".", "p").replace("-", "m")
    if not source.noise_std:
        return source.policy
    return f"{source.policy}_noise{source.noise_std:g}".replace(".", "p").replace("-", "m")


def env_action_spec(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Any:
    """The action space of `env_id` as `seqrl.collect.policies.ActionSpec` (MultiDiscrete and other
    unsupported spaces refused by name)."""
    import gymnasium as gym

    from seqrl.collect.policies import action_spec

    if env_id.startswith("seqrl/"):
        from seqrl.collect.envs import register_envs

        register_envs()
    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as exc:
        raise ConfigError(f"unknown environment {env_id!r}: {exc}") from exc
    try:
        return action_spec(env.action_space, env_id)
    finally:
        env.close()


def custom_recipe(env_id: str, policies: tuple[str, ...] | list[str], name: str | None = None,
                  env_kwargs: dict[str, Any] | None = None) -> Recipe:
    """A recipe for any task: equal shares of the sources `policies` names ('ALGO[:noise]'); the env
    is made with `env_kwargs` to read its action space (seqrl/Atari-v0 needs its game)."""
    from seqrl.data.scores import task_family

    if not policies:
        raise ConfigError("--env needs at least one --policy ALGO[:noise] (e.g. --policy ppo sac:0.3 random)")
    discrete = env_action_spec(env_id, env_kwargs).discrete
    sources = tuple(parse_source(p, discrete=discrete) for p in policies)
    if name is None:
        name = "-".join([task_family(env_id), *(_source_label(s) for s in sources)])
    description = "equal shares of " + ", ".join(
        s.policy + s.noise_label().replace(" + ", "+") for s in sources
    ) if len(sources) > 1 else (sources[0].policy + sources[0].noise_label())
    return Recipe(name, env_id, sources, MUJOCO_DEFAULT_TRANSITIONS, description)


# --------------------------------------------------------------------------- building
def make_policy(
    source: Source, env_id: str, *, zoo: Any = None, seed: int = 0, env_kwargs: dict[str, Any] | None = None
) -> Any:
    """The (noise-free) policy a source names; noise is added by `collect`. A zoo policy's
    `layout` says which env (keyword arguments included) its observations come from."""
    if source.policy == "random":
        import gymnasium as gym

        env = gym.make(env_id, **(env_kwargs or {}))
        try:
            return RandomPolicy(env.action_space, seed=np.random.SeedSequence([seed, 0xA11]))
        finally:
            env.close()
    if source.policy == "heuristic":
        if not env_id.startswith("LunarLanderContinuous"):
            raise ConfigError(f"the heuristic policy exists for LunarLanderContinuous only, not {env_id}")
        return LunarLanderHeuristic()
    if source.policy == "waypoint":
        from seqrl.collect.maze import ENV_ID, WaypointController

        if env_id != ENV_ID:
            raise ConfigError(f"the waypoint controller drives {ENV_ID} only, not {env_id}")
        return WaypointController()
    if source.policy == "scripted":
        from seqrl.collect.keydoor import scripted_policy

        return scripted_policy(env_id)
    if source.policy in ZOO_ALGOS:
        return load_zoo_policy(zoo, source.policy, env_id, env_kwargs=env_kwargs)
    from seqrl.collect.graph import POLICIES as GRAPH_POLICIES, make_graph_policy

    if source.policy in GRAPH_POLICIES:
        return make_graph_policy(source.policy, env_id, seed=np.random.SeedSequence([seed, 0xA11]), env_kwargs=env_kwargs)
    raise ConfigError(f"unknown policy {source.policy!r} (random, heuristic, {', '.join(ZOO_ALGOS)})")


def _split(total: int, shares: list[float]) -> list[int]:
    """Integer transition counts proportional to `shares`, summing to `total`."""
    weights = np.asarray(shares, dtype=np.float64) / sum(shares)
    counts = np.floor(weights * total).astype(int)
    counts[-1] += total - counts.sum()
    return counts.tolist()


def _finished_mean(dataset: TrajectoryDataset) -> float | None:
    returns = dataset.episode_returns[finished_episode_mask(dataset)]
    return float(returns.mean()) if len(returns) else None


def _layout_of(recipe: Recipe, policies: dict[str, Any], env_kwargs: dict[str, Any] | None) -> Layout:
    """The one environment every source runs in: the zoo agents' layouts must agree."""
    layouts = {}
    for name, policy in policies.items():
        layout = getattr(policy, "layout", None)
        if layout is not None:
            layouts[name] = layout
    distinct = {(l.env_id, json.dumps(l.env_kwargs, sort_keys=True)) for l in layouts.values()}
    if len(distinct) > 1:
        raise ConfigError(
            f"the sources of {recipe.name} need different environments: "
            + "; ".join(f"{name} runs in {layout.describe()}" for name, layout in layouts.items())
            + " (collect them as separate datasets)"
        )
    if layouts:
        return next(iter(layouts.values()))
    return Layout(recipe.env_id, dict(env_kwargs or {}))


def _reference_candidates(recipe: Recipe) -> list[str]:
    names = list(recipe.reference_policies) or [s.policy for s in recipe.sources if s.policy != "random"]
    return list(dict.fromkeys(names))  # unique, in order


def _reference_returns(
    recipe: Recipe, episodes: int, *, policies: dict[str, Any] | None, layout: Layout | None, zoo: Any
) -> tuple[float, float, str]:
    import gymnasium as gym

    layout = layout or Layout(recipe.env_id, {})
    candidates = _reference_candidates(recipe)
    if not candidates:
        raise ConfigError(
            f"{recipe.name}: {recipe.env_id} has no D4RL reference returns, and the expert reference is the "
            "strongest non-random source: add a --policy other than random"
        )
    if recipe.reference_random == "random":
        env = gym.make(layout.env_id, **layout.env_kwargs)
        try:
            random_policy = RandomPolicy(env.action_space, seed=REFERENCE_SEED)
        finally:
            env.close()
    else:
        random_policy = make_policy(Source(recipe.reference_random), layout.env_id, zoo=zoo, seed=REFERENCE_SEED,
                                    env_kwargs=layout.env_kwargs)
    low = evaluate_returns(layout.env_id, random_policy, episodes, seed=REFERENCE_SEED, env_kwargs=layout.env_kwargs)
    best, best_name = -np.inf, candidates[0]
    for name in candidates:
        policy = (policies or {}).get(name) or make_policy(Source(name), recipe.env_id, zoo=zoo, env_kwargs=layout.env_kwargs)
        mean = float(
            evaluate_returns(layout.env_id, policy, episodes, seed=REFERENCE_SEED, env_kwargs=layout.env_kwargs).mean()
        )
        if mean > best:
            best, best_name = mean, name
    return float(low.mean()), float(best), best_name


def build_recipe(
    name: str,
    transitions: int | None = None,
    *,
    seed: int = 0,
    zoo: Any = None,
    n_envs: int = 8,
    noise: float | None = None,
    reference_episodes: int | None = None,
    progress: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[TrajectoryDataset, dict[str, Any]]:
    """Collect recipe `name`; returns the dataset and the arguments for `save_dataset`
    (`ref_min_score`, `ref_max_score`, `extra_metadata`). See `build_dataset`."""
    return build_dataset(
        get_recipe(name), transitions, seed=seed, zoo=zoo, n_envs=n_envs, noise=noise,
        reference_episodes=reference_episodes, progress=progress, env_kwargs=env_kwargs,
    )


def build_dataset(
    recipe: Recipe,
    transitions: int | None = None,
    *,
    seed: int = 0,
    zoo: Any = None,
    n_envs: int = 8,
    noise: float | None = None,
    reference_episodes: int | None = None,
    progress: bool = False,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[TrajectoryDataset, dict[str, Any]]:
    """Collect `recipe` (a named one, or `custom_recipe`'s); the dataset and `save_dataset`'s arguments.

    `noise` overrides every source's noise: the Gaussian std for Box actions, epsilon for
    Discrete ones. `reference_episodes` (default REFERENCE_EPISODES)
    is the number of episodes per reference policy for tasks without D4RL reference returns.
    Source k is collected with its own seed derived from (`seed`, k), so sources never share
    environment or noise streams. `env_kwargs` go to gym.make (over the zoo agents' own); the
    environment actually used (zoo agents may need a layout keyword) is recorded in the
    metadata as `env_id` and `env_kwargs`.
    """
    from seqrl.paths import zoo_root

    name = recipe.name
    total = recipe.default_transitions if transitions is None else int(transitions)
    if total < len(recipe.sources):
        raise ConfigError(f"{name} needs at least {len(recipe.sources)} transitions, got {total}")
    zoo_dir = zoo_root(zoo)
    if recipe.uses_zoo and zoo_dir is None:
        from seqrl.paths import zoo_default_places

        raise ConfigError(
            f"recipe {name} uses trained agents from the zoo: pass --zoo DIR or set SEQRL_ZOO "
            "(a folder laid out as rl-baselines3-zoo); none was found in "
            + ", ".join(str(p) for p in zoo_default_places())
        )
    # Deterministic policies are loaded once and shared by their sources (noise is added per
    # source by `collect`); zoo agents first, as they decide the environment's layout.
    shared: dict[str, Any] = {}
    for source in recipe.sources:
        if source.policy in ZOO_ALGOS and source.policy not in shared:
            shared[source.policy] = make_policy(source, recipe.env_id, zoo=zoo_dir, env_kwargs=env_kwargs)
    layout = _layout_of(recipe, shared, env_kwargs)
    discrete = env_action_spec(layout.env_id, layout.env_kwargs).discrete
    if noise is not None and discrete:
        from seqrl.collect.policies import check_epsilon

        check_epsilon(noise, f"--noise (epsilon for the Discrete actions of {layout.env_id})")
    parts, sources_meta = [], []
    for k, (source, count) in enumerate(zip(recipe.sources, _split(total, [s.share for s in recipe.sources]))):
        source_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
        if discrete:  # the override is epsilon here; a Gaussian std in the recipe is refused by collect
            noise_std, epsilon = source.noise_std, (source.epsilon if noise is None else float(noise))
        else:
            noise_std, epsilon = (source.noise_std if noise is None else float(noise)), source.epsilon
        if source.policy in shared:
            policy = shared[source.policy]
        else:
            policy = make_policy(source, layout.env_id, zoo=zoo_dir, seed=source_seed, env_kwargs=layout.env_kwargs)
            if source.policy != "random":
                shared[source.policy] = policy
        part = collect(
            layout.env_id, policy, count, n_envs=n_envs, seed=source_seed, noise_std=noise_std, epsilon=epsilon,
            progress=progress, env_kwargs=layout.env_kwargs,
        )
        parts.append(part)
        sources_meta.append(
            {
                "policy": part.metadata["policy"],
                "noise_std": noise_std,
                **({"epsilon": epsilon} if discrete else {}),
                "seed": source_seed,
                "transitions": part.num_transitions,
                "episodes": part.num_episodes,
                "unfinished_episodes": part.metadata["unfinished_episodes"],
                "return_mean": float(part.episode_returns.mean()),
                "finished_return_mean": _finished_mean(part),
            }
        )
    first = parts[0].metadata
    metadata = {
        "name": name,
        "env_id": layout.env_id,
        # action_low/action_high for Box actions; action_space = Discrete(n) for discrete ones
        **{key: first[key] for key in ("action_low", "action_high", "action_space") if key in first},
        "recipe": name,
        "recipe_description": recipe.description,
        "seed": int(seed),
        "n_envs": int(n_envs),
        "partial_episodes": first["partial_episodes"],
        "sources": sources_meta,
    }
    if layout.env_kwargs:
        metadata["env_kwargs"] = layout.env_kwargs
    dataset = TrajectoryDataset.concatenate(parts, metadata=metadata)
    ref_min = ref_max = None
    published = _published_reference(layout.env_id, layout.env_kwargs)
    if recipe.needs_reference_returns and published is not None:  # an Atari game's random and gamer returns
        ref_min, ref_max = published
        dataset.metadata.update(ref_min_score=ref_min, ref_max_score=ref_max)
    elif recipe.needs_reference_returns:
        reference_episodes = REFERENCE_EPISODES if reference_episodes is None else reference_episodes
        ref_min, ref_max, expert = _reference_returns(
            recipe, reference_episodes, policies=shared, layout=layout, zoo=zoo_dir
        )
        dataset.metadata.update(
            ref_min_score=ref_min, ref_max_score=ref_max, reference_episodes=reference_episodes,
            reference_expert=expert,
        )
    return dataset, {"ref_min_score": ref_min, "ref_max_score": ref_max, "extra_metadata": {"collected_by": "seqrl collect"}}


def _published_reference(env_id: str, env_kwargs: dict[str, Any] | None) -> tuple[float, float] | None:
    """Reference returns a table gives for this env and its kwargs (seqrl.data.scores: an Atari
    game's random and professional-gamer returns), or None: then they are measured."""
    from seqrl.data.scores import reference_returns
    from seqrl.errors import DatasetError

    try:
        return reference_returns(env_id, {"env_kwargs": env_kwargs or {}})
    except DatasetError:
        return None


def _parse_env_kwargs(items: tuple[str, ...]) -> dict[str, Any]:
    """('use_contact_forces=true', 'frame_skip=5') -> {'use_contact_forces': True, 'frame_skip': 5}
    (values read as JSON where they parse, else kept as text)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--env-kwargs takes KEY=VALUE pairs, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _check_env_kwargs(env_id: str, kwargs: dict) -> None:
    """Make the environment once with `kwargs`, so an argument it does not take is named before collecting."""
    import gymnasium as gym

    try:
        gym.make(env_id, **kwargs).close()
    except TypeError as exc:
        raise ConfigError(f"--env-kwargs {', '.join(f'{k}={v!r}' for k, v in kwargs.items())} do not fit "
                          f"{env_id}: {exc}") from None


def collect_command(
    recipe: Annotated[str | None, tyro.conf.Positional, tyro.conf.arg(metavar="RECIPE")] = None,
    env: str | None = None,
    policy: tuple[str, ...] = (),
    name: str | None = None,
    env_kwargs: tuple[str, ...] = (),
    transitions: int | None = None,
    seed: int = 0,
    zoo: str | None = None,
    n_envs: int = 8,
    noise: float | None = None,
    overwrite: bool = False,
) -> None:
    """Collect a named dataset (e.g. hopper-medium, lunarlander-expert), or any task's with
    --env ENV_ID --policy ALGO[:noise] ..., into the Minari store.

    Args:
        recipe: Dataset to build: {hopper,halfcheetah,walker2d}-{random,medium,expert,medium-expert,mixed},
            lunarlander-{random,medium,expert,medium-expert} or (Discrete actions)
            lunarlander-discrete-{random,medium,expert,medium-expert,mixed}, keydoor-{random,mixed}
            (Key-to-Door, seqrl.collect.keydoor). Leave out with --env.
        env: A task without a recipe (a gymnasium id, e.g. Ant-v5, Swimmer-v5, Acrobot-v1); needs --policy.
        policy: With --env, the sources, mixed in equal shares: zoo algorithms (sac, tqc, ppo, a2c,
            trpo, ars; dqn, qrdqn for Discrete actions), random or heuristic, each with optional
            noise after a colon: a Gaussian action-noise std for Box actions (e.g. --policy ppo
            sac:0.3 random), epsilon in [0, 1] for Discrete ones (e.g. --policy dqn:0.1).
        name: With --env, the dataset's name (default: task and sources, e.g. ant-ppo-sac_noise0p3).
        env_kwargs: Keyword arguments for the environment, KEY=VALUE (values read as JSON), over
            the zoo agents' env_kwargs.yml.
        transitions: Number of transitions (default 100k for MuJoCo recipes and --env, 50k for lunarlander).
        seed: Collection seed (environments, random policy, action noise).
        zoo: Folder of rl-baselines3-zoo trained agents (default: $SEQRL_ZOO); zoo policies need it.
        n_envs: Environments stepped together, with one batched policy call per step.
        noise: Override the noise of every source (Gaussian std; epsilon for Discrete actions).
        overwrite: Replace an existing dataset of the same name.
    """
    from seqrl.data.scores import normalized_score, reference_returns
    from seqrl.data.sources import dataset_id_for, save_dataset
    from seqrl.paths import datasets_root

    from seqrl.validation import require_int

    require_int("seed", seed, 0)  # gymnasium refuses negative seeds
    require_int("n_envs", n_envs, 1)
    if recipe is not None and (env is not None or policy):
        raise ConfigError("give a RECIPE or --env ENV_ID --policy ALGO[:noise] ..., not both")
    if recipe is None and env is None:
        raise ConfigError(f"name a RECIPE ({', '.join(RECIPES)}) or give --env ENV_ID --policy ALGO[:noise] ...")
    if recipe is None and not policy:
        raise ConfigError("--env needs at least one --policy ALGO[:noise] (e.g. --policy ppo sac:0.3 random)")
    if name is not None and recipe is not None:
        raise ConfigError("--name goes with --env; a recipe's dataset is named after the recipe")
    if recipe is not None:
        spec = get_recipe(recipe)
    else:
        import gymnasium as gym

        if env.startswith("seqrl/"):  # seqrl's own tasks (the maze, Key-to-Door) are registered on first use
            from seqrl.collect.envs import register_envs

            register_envs()
        try:
            gym.spec(env)
        except gym.error.Error as exc:
            raise ConfigError(f"unknown environment {env!r}: {exc}") from exc
    kwargs = _parse_env_kwargs(env_kwargs)
    if kwargs:  # before the recipe, which makes the env with them
        _check_env_kwargs(spec.env_id if recipe is not None else env, kwargs)
    if recipe is None:
        spec = custom_recipe(env, policy, name, kwargs or None)
    dataset_id = dataset_id_for(spec.name)
    existing = datasets_root() / dataset_id
    if existing.exists() and not overwrite:
        # Checked before collecting (save_dataset checks again) so no minutes are wasted.
        raise DatasetError(f"dataset {dataset_id!r} already exists at {existing}; pass --overwrite to replace it")
    dataset, save_args = build_dataset(
        spec, transitions, seed=seed, zoo=zoo, n_envs=n_envs, noise=noise, progress=True, env_kwargs=kwargs or None
    )
    env_id = dataset.metadata["env_id"]
    path = save_dataset(dataset, dataset_id, env_id, overwrite=overwrite, **save_args)
    summary = dataset.summary()
    low, high = reference_returns(env_id, dataset.metadata)
    score = float(normalized_score(summary["return_mean"], low, high))
    env_note = env_id + (
        " with " + ", ".join(f"{k}={v!r}" for k, v in dataset.metadata["env_kwargs"].items())
        if dataset.metadata.get("env_kwargs") else ""
    )
    print(f"{dataset_id}  ({env_note}; {spec.description})")
    for s in dataset.metadata["sources"]:
        noise_note = f" + noise {s['noise_std']}" if s["noise_std"] else ""
        if s.get("epsilon"):
            noise_note = f" + epsilon {s['epsilon']}"
        label = s["policy"].get("algo", s["policy"].get("kind"))
        source_finished = s["finished_return_mean"]
        finished_note = "" if source_finished is None else f" ({source_finished:.1f} over finished episodes)"
        print(
            f"  {label}{noise_note}: {s['episodes']} episodes, {s['transitions']} transitions, "
            f"mean return {s['return_mean']:.1f}{finished_note}"
        )
    finished = dataset.episode_returns[finished_episode_mask(dataset)]
    finished_note = (
        f"; over the {len(finished)} finished episodes {finished.mean():.1f}, "
        f"normalized {float(normalized_score(finished.mean(), low, high)):.1f}"
        if len(finished)
        else ""
    )
    expert_note = f"expert {high:.1f}" + (
        f" = {dataset.metadata['reference_expert']}" if dataset.metadata.get("reference_expert") else ""
    )
    print(
        f"  total: {summary['episodes']} episodes, {summary['transitions']} transitions, "
        f"mean return {summary['return_mean']:.1f} ± {summary['return_std']:.1f}, "
        f"normalized score {score:.1f} (random {low:.1f}, {expert_note}){finished_note}"
    )
    print(f"  saved to {path}")
