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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import tyro

from seqrl.collect.policies import LunarLanderHeuristic, RandomPolicy, ZOO_ALGOS, load_zoo_policy
from seqrl.collect.rollout import collect, evaluate_returns, finished_episode_mask
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import ConfigError, DatasetError

# Defaults sized for a 2-core laptop: at the ~1200 transitions/s measured in docs/datasets.md,
# D4RL's 1M transitions would take about 15 minutes per MuJoCo dataset.
MUJOCO_DEFAULT_TRANSITIONS = 100_000
LUNARLANDER_DEFAULT_TRANSITIONS = 50_000
# Reference returns for non-D4RL tasks: this many episodes each of the random and expert policy,
# with this fixed seed (independent of the collection seed, so references are comparable).
REFERENCE_EPISODES = 20
REFERENCE_SEED = 1_000_000


@dataclass(frozen=True)
class Source:
    """One behaviour policy in a recipe."""

    policy: str  # "random", "heuristic", or a zoo algorithm ("sac", "tqc", "ppo", "a2c", "trpo", "ars")
    noise_std: float = 0.0  # Gaussian action noise, in action units (clipped to the bounds)
    share: float = 1.0  # fraction of the recipe's transitions (normalised over the sources)


@dataclass(frozen=True)
class Recipe:
    name: str
    env_id: str
    sources: tuple[Source, ...]
    default_transitions: int
    description: str

    @property
    def uses_zoo(self) -> bool:
        return any(s.policy in ZOO_ALGOS for s in self.sources)

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
    return [
        Recipe("lunarlander-random", env_id, (Source("random"),), n, "uniform random actions"),
        Recipe("lunarlander-medium", env_id, (medium,), n, "heuristic controller + Gaussian noise std 1.0"),
        Recipe("lunarlander-expert", env_id, (Source("heuristic"),), n, "gymnasium's heuristic controller"),
        Recipe(
            "lunarlander-medium-expert",
            env_id,
            (Source("heuristic", 1.0, share=0.5), Source("heuristic", share=0.5)),
            n,
            "half noisy heuristic (medium), half heuristic (expert)",
        ),
    ]


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
    ]  # fmt: skip
    return {r.name: r for r in recipes}


RECIPES: dict[str, Recipe] = _all_recipes()


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}") from None


# --------------------------------------------------------------------------- building
def make_policy(source: Source, env_id: str, *, zoo: Any = None, seed: int = 0) -> Any:
    """The (noise-free) policy a source names; noise is added by `collect`."""
    if source.policy == "random":
        import gymnasium as gym

        env = gym.make(env_id)
        try:
            return RandomPolicy(env.action_space, seed=np.random.SeedSequence([seed, 0xA11]))
        finally:
            env.close()
    if source.policy == "heuristic":
        if not env_id.startswith("LunarLanderContinuous"):
            raise ConfigError(f"the heuristic policy exists for LunarLanderContinuous only, not {env_id}")
        return LunarLanderHeuristic()
    if source.policy in ZOO_ALGOS:
        return load_zoo_policy(zoo, source.policy, env_id)
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


def reference_returns_for(recipe: Recipe, episodes: int = REFERENCE_EPISODES) -> tuple[float, float]:
    """(random, expert) mean returns over `episodes` episodes each, with the fixed REFERENCE_SEED."""
    import gymnasium as gym

    env = gym.make(recipe.env_id)
    try:
        random_policy = RandomPolicy(env.action_space, seed=REFERENCE_SEED)
    finally:
        env.close()
    expert_policy = LunarLanderHeuristic()
    low = evaluate_returns(recipe.env_id, random_policy, episodes, seed=REFERENCE_SEED).mean()
    high = evaluate_returns(recipe.env_id, expert_policy, episodes, seed=REFERENCE_SEED).mean()
    return float(low), float(high)


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
) -> tuple[TrajectoryDataset, dict[str, Any]]:
    """Collect recipe `name`; returns the dataset and the arguments for `save_dataset`
    (`ref_min_score`, `ref_max_score`, `extra_metadata`).

    `noise` overrides every source's noise std. `reference_episodes` (default REFERENCE_EPISODES)
    is the number of episodes per reference policy for tasks without D4RL reference returns. Source k is collected with its own seed derived
    from (`seed`, k), so sources never share environment or noise streams.
    """
    from seqrl.paths import zoo_root

    recipe = get_recipe(name)
    total = recipe.default_transitions if transitions is None else int(transitions)
    if total < len(recipe.sources):
        raise ConfigError(f"{name} needs at least {len(recipe.sources)} transitions, got {total}")
    zoo_dir = zoo_root(zoo)
    if recipe.uses_zoo and zoo_dir is None:
        raise ConfigError(
            f"recipe {name} uses trained agents from the zoo: pass --zoo DIR or set SEQRL_ZOO "
            "(a folder laid out as rl-baselines3-zoo, e.g. ../shared/zoo)"
        )
    parts, sources_meta = [], []
    for k, (source, count) in enumerate(zip(recipe.sources, _split(total, [s.share for s in recipe.sources]))):
        source_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
        noise_std = source.noise_std if noise is None else float(noise)
        policy = make_policy(source, recipe.env_id, zoo=zoo_dir, seed=source_seed)
        part = collect(
            recipe.env_id, policy, count, n_envs=n_envs, seed=source_seed, noise_std=noise_std, progress=progress
        )
        parts.append(part)
        sources_meta.append(
            {
                "policy": part.metadata["policy"],
                "noise_std": noise_std,
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
        "env_id": recipe.env_id,
        "action_low": first["action_low"],
        "action_high": first["action_high"],
        "recipe": name,
        "recipe_description": recipe.description,
        "seed": int(seed),
        "n_envs": int(n_envs),
        "partial_episodes": first["partial_episodes"],
        "sources": sources_meta,
    }
    dataset = TrajectoryDataset.concatenate(parts, metadata=metadata)
    ref_min = ref_max = None
    if recipe.needs_reference_returns:
        reference_episodes = REFERENCE_EPISODES if reference_episodes is None else reference_episodes
        ref_min, ref_max = reference_returns_for(recipe, reference_episodes)
        dataset.metadata.update(ref_min_score=ref_min, ref_max_score=ref_max, reference_episodes=reference_episodes)
    return dataset, {"ref_min_score": ref_min, "ref_max_score": ref_max, "extra_metadata": {"collected_by": "seqrl collect"}}


def collect_command(
    recipe: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RECIPE")],
    transitions: int | None = None,
    seed: int = 0,
    zoo: str | None = None,
    n_envs: int = 8,
    noise: float | None = None,
    overwrite: bool = False,
) -> None:
    """Collect a named dataset (e.g. hopper-medium, lunarlander-expert) into the Minari store.

    Args:
        recipe: Dataset to build: {hopper,halfcheetah,walker2d}-{random,medium,expert,medium-expert,mixed}
            or lunarlander-{random,medium,expert,medium-expert}.
        transitions: Number of transitions (default 100k for MuJoCo recipes, 50k for lunarlander).
        seed: Collection seed (environments, random policy, action noise).
        zoo: Folder of rl-baselines3-zoo trained agents (default: $SEQRL_ZOO); MuJoCo recipes need it.
        n_envs: Environments stepped together, with one batched policy call per step.
        noise: Override the recipe's Gaussian action-noise std for every policy.
        overwrite: Replace an existing dataset of the same name.
    """
    from seqrl.data.scores import normalized_score, reference_returns
    from seqrl.data.sources import dataset_id_for, save_dataset
    from seqrl.paths import datasets_root

    spec = get_recipe(recipe)
    dataset_id = dataset_id_for(recipe)
    existing = datasets_root() / dataset_id
    if existing.exists() and not overwrite:
        # Checked before collecting (save_dataset checks again) so no minutes are wasted.
        raise DatasetError(f"dataset {dataset_id!r} already exists at {existing}; pass --overwrite to replace it")
    dataset, save_args = build_recipe(recipe, transitions, seed=seed, zoo=zoo, n_envs=n_envs, noise=noise, progress=True)
    path = save_dataset(dataset, dataset_id, spec.env_id, overwrite=overwrite, **save_args)
    summary = dataset.summary()
    low, high = reference_returns(spec.env_id, dataset.metadata)
    score = float(normalized_score(summary["return_mean"], low, high))
    print(f"{dataset_id}  ({spec.env_id}; {spec.description})")
    for s in dataset.metadata["sources"]:
        noise_note = f" + noise {s['noise_std']}" if s["noise_std"] else ""
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
    print(
        f"  total: {summary['episodes']} episodes, {summary['transitions']} transitions, "
        f"mean return {summary['return_mean']:.1f} ± {summary['return_std']:.1f}, "
        f"normalized score {score:.1f} (random {low:.1f}, expert {high:.1f}){finished_note}"
    )
    print(f"  saved to {path}")
