"""Datasets in Minari's on-disk format: writing them atomically, reading them back, listing them.

Layout (Minari's): `<root>/<namespace>/<name>-v<N>/data/{metadata.json, main_data.hdf5}`, with
`<root>` = `seqrl.paths.datasets_root()` (MINARI_DATASETS_PATH or ~/.minari/datasets), so
`minari.load_dataset(...)` reads what seqrl writes. seqrl's own metadata (env id, reference
returns, action bounds, how the data was collected) goes into `metadata.json` under the key
`"seqrl"`; the reference returns are also written under Minari's own keys `ref_min_score` /
`ref_max_score`, so `minari.get_normalized_score` works on our datasets too.

Action spaces: a continuous dataset is written with a `Box` action space (its bounds from the
metadata); a discrete one (`dataset.discrete`) with Minari's `Discrete(n)` space and its actions
stored as Minari stores them, one int64 index per step (shape (T,) per episode). Reading
accepts both and gives the in-memory layout of `TrajectoryDataset` ((N, 1) int64 for Discrete);
a `MultiDiscrete` action space, and a `Discrete` one that does not start at 0, are refused by name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import h5py
import numpy as np

from seqrl.data.scores import normalized_score, reference_returns
from seqrl.data.frames import check_fits, check_image_shape, estimated_bytes, image_shape_of
from seqrl.data.minari_compress import compress_image_observations
from seqrl.data.trajectories import TrajectoryDataset, discrete_action_space
from seqrl.errors import DatasetError
from seqrl.paths import datasets_root

SEQRL_NAMESPACE = "seqrl"
SEQRL_METADATA_KEY = "seqrl"
# Hidden folders (Minari skips names starting with '.') inside the datasets root: building a
# dataset there keeps it on the same filesystem as its destination, so the final move is a
# single atomic rename; if the process dies midway, the leftover is never listed or loaded.
STAGING_PREFIX = ".seqrl-staging-"
TRASH_PREFIX = ".seqrl-trash-"


def dataset_id_for(name: str) -> str:
    """The Minari id of a seqrl dataset: 'hopper-medium' -> 'seqrl/hopper-medium-v0'."""
    from minari.dataset.minari_dataset import DATASET_ID_RE

    dataset_id = f"{SEQRL_NAMESPACE}/{name}-v0"
    if not name or "/" in name or not DATASET_ID_RE.fullmatch(dataset_id):
        raise DatasetError(
            f"invalid dataset name {name!r}: use letters, digits, '-' and '_' (no '/', no spaces)"
        )
    return dataset_id


def dataset_display_name(name: str) -> str:
    """How a dataset is named in tables: a seqrl dataset's Minari id by its bare name
    ('seqrl/hopper-medium-v0' -> 'hopper-medium', what `dataset_id_for` maps back), so one
    dataset typed either way is one name; any other name as given."""
    prefix = f"{SEQRL_NAMESPACE}/"
    if name.startswith(prefix) and name.endswith("-v0") and "/" not in name[len(prefix):]:
        return name[len(prefix):-len("-v0")]
    return name


def validate_dataset_id(dataset_id: str) -> None:
    """Raise DatasetError unless `dataset_id` has Minari's form `(namespace/)name-vN`."""
    from minari.dataset.minari_dataset import DATASET_ID_RE

    match = DATASET_ID_RE.fullmatch(dataset_id)
    if not match or match.group("version") is None:
        raise DatasetError(
            f"invalid Minari dataset id {dataset_id!r}: expected '(namespace/)name-vN', "
            "e.g. 'seqrl/hopper-medium-v0'"
        )


# ---------------------------------------------------------------------------------- writing
def save_dataset(
    dataset: TrajectoryDataset,
    dataset_id: str,
    env_id: str,
    *,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    overwrite: bool = False,
    extra_metadata: dict | None = None,
) -> Path:
    """Write `dataset` as Minari dataset `dataset_id` under `datasets_root()`; returns its folder.

    Minari stores T+1 observations per episode: the extra one is `dataset.final_observations`
    when known, otherwise the episode's last observation repeated (a placeholder: nothing in
    seqrl reads it, and D4RL-derived data has no true final observation to offer).

    The write is atomic: the dataset is built in a hidden staging folder in the same root and
    renamed into place only when complete, so an interrupted write leaves no dataset that
    lists or loads. An existing dataset with the same id is an error unless `overwrite=True`,
    in which case it is swapped out by renames (never left half-replaced).

    `dataset.metadata` and `extra_metadata` (e.g. policy, collection seed) must be
    JSON-serialisable (numpy arrays and scalars are converted); they come back in
    `load_minari(...).metadata`, where `name` is the dataset id.
    """
    import minari

    validate_dataset_id(dataset_id)
    root = datasets_root()
    final = root / dataset_id
    if final.exists() and not overwrite:
        raise DatasetError(
            f"dataset {dataset_id!r} already exists at {final}; pass overwrite=True to replace it"
        )
    seqrl_meta = _seqrl_metadata(dataset, dataset_id, env_id, ref_min_score, ref_max_score, extra_metadata)
    minari_meta: dict[str, Any] = {SEQRL_METADATA_KEY: seqrl_meta}
    # Written directly rather than passed to create_dataset_from_buffers: Minari stores them
    # only with ref_max_score present, and estimates a missing ref_min_score by running 100
    # random-policy episodes in the environment.
    if ref_min_score is not None:
        minari_meta["ref_min_score"] = float(ref_min_score)
    if ref_max_score is not None:
        minari_meta["ref_max_score"] = float(ref_max_score)
    env_spec = _registered_spec(env_id)
    if env_spec is not None:
        # Lets `MinariDataset.recover_environment()` work; added after creation because giving
        # `env=` to Minari would construct the environment just to read its spaces.
        minari_meta["env_spec"] = env_spec.to_json()

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    try:
        with _minari_root(staging), warnings.catch_warnings():
            # Minari warns about every optional field left empty (author, permalink, ...).
            warnings.simplefilter("ignore", UserWarning)
            created = minari.create_dataset_from_buffers(
                dataset_id=dataset_id,
                buffer=list(_episode_buffers(dataset)),
                env=None,
                observation_space=(gym.spaces.Box(0, 255, dataset.observation_shape, np.uint8) if dataset.image
                                   else gym.spaces.Box(-np.inf, np.inf, (dataset.obs_dim,), np.float32)),
                action_space=_action_space(seqrl_meta, dataset),
                algorithm_name=str(seqrl_meta.get("policy", "seqrl")),
                author="seqrl",
                description=str(seqrl_meta.get("description", f"seqrl dataset {dataset_id}")),
                data_format="hdf5",
            )
            if dataset.image:  # frame stacks, gzip-compressed; still a Minari dataset (seqrl.data.minari_compress)
                compress_image_observations(created.storage.data_path / "main_data.hdf5")
                minari_meta["dataset_size"] = created.storage.get_size()
            created.storage.update_metadata(minari_meta)
        _install(staging, root, dataset_id, overwrite=overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _seqrl_metadata(
    dataset: TrajectoryDataset,
    dataset_id: str,
    env_id: str,
    ref_min_score: float | None,
    ref_max_score: float | None,
    extra_metadata: dict | None,
) -> dict[str, Any]:
    meta = {**dataset.metadata, **(extra_metadata or {})}
    meta.update(name=dataset_id, env_id=env_id, source=meta.get("source", "seqrl"))
    if ref_min_score is not None:
        meta["ref_min_score"] = float(ref_min_score)
    if ref_max_score is not None:
        meta["ref_max_score"] = float(ref_max_score)
    return {key: _jsonable(value, key) for key, value in meta.items()}


def _jsonable(value: Any, key: str) -> Any:
    """Metadata value -> something json.dump writes and reads back equal."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, key) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise DatasetError(f"metadata {key!r} is a {type(value).__name__}, which cannot be stored as JSON")


def _action_space(meta: dict[str, Any], dataset: TrajectoryDataset) -> gym.spaces.Box | gym.spaces.Discrete:
    if dataset.discrete:
        return gym.spaces.Discrete(dataset.num_actions)
    act_dim = dataset.act_dim
    low, high = meta.get("action_low"), meta.get("action_high")
    if low is None or high is None:
        low, high = -np.inf, np.inf
    low = np.broadcast_to(np.asarray(low, np.float32), (act_dim,))
    high = np.broadcast_to(np.asarray(high, np.float32), (act_dim,))
    return gym.spaces.Box(low, high, (act_dim,), np.float32)


def _registered_spec(env_id: str) -> gym.envs.registration.EnvSpec | None:
    try:
        return gym.spec(env_id)
    except Exception:  # not registered (or its module is not installed): no spec to record
        return None


def _episode_buffers(dataset: TrajectoryDataset) -> Iterator[Any]:
    from minari.data_collector import EpisodeBuffer

    for i, ep in enumerate(dataset.episodes()):
        if dataset.final_observations is not None:
            last = dataset.final_observations[i]
        else:
            last = ep["observations"][-1]  # placeholder, see save_dataset's docstring
        # Discrete: one index per step, (T,) int64, as Minari's own collector stores them.
        actions = ep["actions"].reshape(-1) if dataset.discrete else ep["actions"]
        yield EpisodeBuffer(
            id=i,
            observations=np.concatenate([ep["observations"], last[None]]),
            actions=actions,
            rewards=ep["rewards"],
            terminations=ep["terminations"],
            truncations=ep["truncations"],
        )


@contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    """Point Minari (which reads MINARI_DATASETS_PATH at call time) at `path` for a while.

    Changes the process environment, so two threads must not save datasets concurrently.
    """
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def _install(staging: Path, root: Path, dataset_id: str, *, overwrite: bool) -> None:
    """Move the finished dataset folder from `staging` into `root` with atomic renames."""
    built, final = staging / dataset_id, root / dataset_id
    final.parent.mkdir(parents=True, exist_ok=True)
    # Minari marks namespaces with a namespace_metadata.json per level; copy any missing ones.
    for parent in Path(dataset_id).parents:
        if str(parent) == ".":
            continue
        marker = root / parent / "namespace_metadata.json"
        if not marker.exists() and (staging / parent / marker.name).exists():
            shutil.copyfile(staging / parent / marker.name, marker)
    if not final.exists():
        try:
            os.rename(built, final)
        except OSError as exc:  # another process installed the same id meanwhile
            raise DatasetError(f"cannot install dataset {dataset_id!r} at {final}: {exc}") from exc
        return
    if not overwrite:
        raise DatasetError(f"dataset {dataset_id!r} already exists at {final}; pass overwrite=True")
    # A directory cannot be renamed over a non-empty one, so: old -> trash, new -> place.
    # Between the two renames the id is briefly absent, never half-written.
    trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=root))
    try:
        os.rename(final, trash / "old")
        try:
            os.rename(built, final)
        except BaseException:
            os.rename(trash / "old", final)  # put the old dataset back
            raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


# ---------------------------------------------------------------------------------- reading
def minari_data_dir(dataset_id_or_path: str | os.PathLike) -> Path | None:
    """The `data/` folder of a Minari dataset given as a folder path (dataset or its data/)."""
    path = Path(dataset_id_or_path).expanduser()
    if (path / "data" / "metadata.json").is_file():
        return path / "data"
    if (path / "metadata.json").is_file():
        return path
    return None


def stored_env(dataset_id_or_path: str | os.PathLike) -> dict[str, Any] | None:
    """The env a local Minari dataset records (`env_id`, `env_kwargs`), read from its metadata.json
    alone (no episode is read); None when there is no such dataset or its metadata is unreadable."""
    path = Path(dataset_id_or_path).expanduser()
    data_dir = minari_data_dir(path) or (None if path.is_absolute() else minari_data_dir(datasets_root() / path))
    if data_dir is None:
        return None
    try:
        raw = json.loads((data_dir / "metadata.json").read_text())
    except (OSError, ValueError):
        return None  # loading it will say what is wrong
    meta = dict(raw.get(SEQRL_METADATA_KEY) or {})
    return {"env_id": meta.get("env_id") or _env_id_from_spec(raw.get("env_spec")),
            "env_kwargs": dict(meta.get("env_kwargs") or {})}


def local_dataset_ids(root: Path | None = None) -> list[str]:
    """Ids of the Minari datasets under `root` (default: datasets_root()), all namespaces."""
    root = datasets_root() if root is None else root
    if not root.is_dir():
        return []
    ids = []
    for metadata_file in root.rglob("data/metadata.json"):
        relative = metadata_file.parent.parent.relative_to(root)
        # Hidden folders hold half-built datasets (staging) or ones being replaced (trash).
        if relative.parts and not any(part.startswith(".") for part in relative.parts):
            ids.append(relative.as_posix())
    return sorted(ids)


def load_minari(dataset_id_or_path: str | os.PathLike) -> TrajectoryDataset:
    """Load a local Minari dataset (by id, honouring MINARI_DATASETS_PATH, or by folder path).

    Never downloads. Observations must be a flat Box; actions a Box, whose finite bounds become
    `metadata['action_low'/'action_high']` (TrajectoryDataset checks them), or a Discrete(n),
    which becomes `metadata['action_space'] = {'type': 'Discrete', 'n': n}` with (N, 1) int64
    action indices.
    """
    import minari
    from minari import MinariDataset

    data_dir = minari_data_dir(dataset_id_or_path)
    label = str(dataset_id_or_path)
    try:
        if data_dir is not None:
            minari_dataset = MinariDataset(data_dir)
        elif Path(label).expanduser().exists() or Path(label).is_absolute():
            raise DatasetError(f"{label}: not a Minari dataset folder (no data/metadata.json)")
        else:
            validate_dataset_id(label)
            if minari_data_dir(datasets_root() / label) is None:
                raise DatasetError(
                    f"Minari dataset {label!r} not found in {datasets_root()}; "
                    f"local datasets: {', '.join(local_dataset_ids()) or 'none'}"
                )
            minari_dataset = minari.load_dataset(label, download=False)
        return _to_trajectories(minari_dataset)
    except DatasetError:
        raise
    except Exception as exc:  # json, h5py, Minari's asserts: the folder is not a sound dataset
        raise DatasetError(f"Minari dataset {label!r} is corrupt or unreadable: {exc!r}") from exc


def _to_trajectories(minari_dataset: Any) -> TrajectoryDataset:
    raw = minari_dataset.storage.metadata
    dataset_id = raw["dataset_id"]
    obs_space, act_space = minari_dataset.observation_space, minari_dataset.action_space
    if not isinstance(obs_space, gym.spaces.Box):
        raise DatasetError(f"{dataset_id}: observation space {obs_space} is not supported (only flat Box spaces are)")
    image = image_shape_of(obs_space.shape, obs_space.dtype)  # uint8 frames: kept as such, compactly
    if image is not None:
        check_image_shape(image, dataset_id)
        # Refused before any frame is read, with the estimate (seqrl.data.frames).
        check_fits(estimated_bytes(int(raw["total_steps"]), image), dataset_id)
    discrete = _check_action_space(dataset_id, act_space)
    meta: dict[str, Any] = dict(raw.get(SEQRL_METADATA_KEY) or {})
    meta.setdefault("source", "minari")
    if meta.get("env_id") is None:
        meta["env_id"] = minari_dataset.env_spec.id if minari_dataset.env_spec is not None else None
    for key in ("ref_min_score", "ref_max_score"):
        if meta.get(key) is None and raw.get(key) is not None:
            meta[key] = float(raw[key])
        meta.setdefault(key, None)
    if discrete:
        # The stored space is the authority; a Discrete dataset has no bounds.
        meta["action_space"] = discrete_action_space(int(act_space.n))
        meta.pop("action_low", None)
        meta.pop("action_high", None)
    elif meta.get("action_low") is None or meta.get("action_high") is None:
        finite = np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))
        meta["action_low"] = act_space.low.tolist() if finite else None
        meta["action_high"] = act_space.high.tolist() if finite else None
    meta["name"] = dataset_id
    meta["dataset_id"] = dataset_id
    # Image episodes are read one at a time (a generator) and compressed as they come.
    episodes = (
        {
            "observations": (np.asarray(ep.observations, np.uint8) if image is not None
                             else np.asarray(ep.observations).reshape(len(ep) + 1, -1)),
            "actions": np.asarray(ep.actions).reshape(len(ep), -1),
            "rewards": ep.rewards,
            "terminations": ep.terminations,
            "truncations": ep.truncations,
        }
        for ep in minari_dataset.iterate_episodes()
    )
    return TrajectoryDataset.from_episodes(episodes if image is not None else list(episodes), metadata=meta)


def _check_action_space(dataset_id: str, space: Any) -> bool:
    """True for a Discrete action space, False for a Box; DatasetError naming anything else."""
    if isinstance(space, gym.spaces.Box):
        return False
    if isinstance(space, gym.spaces.MultiDiscrete):
        raise DatasetError(
            f"{dataset_id}: MultiDiscrete action spaces ({space}) are not supported; "
            "seqrl reads Discrete(n) and Box action spaces"
        )
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise DatasetError(
                f"{dataset_id}: Discrete action space {space} starts at {int(space.start)}; "
                "seqrl reads Discrete(n) spaces whose actions are 0..n-1"
            )
        return True
    raise DatasetError(f"{dataset_id}: action space {space} is not supported (only Box and Discrete(n) are)")


# ---------------------------------------------------------------------------------- listing
def list_datasets() -> list[dict[str, Any]]:
    """Summaries of the local Minari datasets (all namespaces), read from metadata and rewards.

    Each row: id, env_id, episodes, transitions, return_mean/min/max, normalized_score (of the
    mean return; None without reference returns) and path. A dataset that cannot be read gets
    a row with `error` set instead of statistics, so one bad folder does not hide the rest.
    """
    root = datasets_root()
    return [_summarise(dataset_id, root / dataset_id / "data") for dataset_id in local_dataset_ids(root)]


def _summarise(dataset_id: str, data_dir: Path) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": dataset_id, "env_id": None, "episodes": None, "transitions": None,
        "return_mean": None, "return_min": None, "return_max": None,
        "normalized_score": None, "path": str(data_dir.parent), "error": None,
    }  # fmt: skip
    try:
        raw = json.loads((data_dir / "metadata.json").read_text())
        meta = dict(raw.get(SEQRL_METADATA_KEY) or {})
        for key in ("ref_min_score", "ref_max_score"):
            if meta.get(key) is None:
                meta[key] = raw.get(key)
        env_id = meta.get("env_id") or _env_id_from_spec(raw.get("env_spec"))
        returns = _episode_returns(data_dir, raw)
        row.update(env_id=env_id, episodes=len(returns), transitions=int(raw["total_steps"]))
        if len(returns):
            row.update(
                return_mean=float(returns.mean()),
                return_min=float(returns.min()),
                return_max=float(returns.max()),
            )
            try:
                low, high = reference_returns(env_id, meta)
                row["normalized_score"] = float(normalized_score(returns.mean(), low, high))
            except DatasetError:
                pass  # no reference returns for this task: the score stays None
    except Exception as exc:
        row["error"] = f"unreadable: {exc!r}"
    return row


def _episode_returns(data_dir: Path, raw: dict[str, Any]) -> np.ndarray:
    """Per-episode returns, reading only the rewards (HDF5) rather than building the dataset."""
    if raw.get("data_format", "hdf5") == "hdf5":
        with h5py.File(data_dir / "main_data.hdf5", "r") as f:
            n = int(raw["total_episodes"])
            return np.array([float(np.sum(f[f"episode_{i}/rewards"][()], dtype=np.float64)) for i in range(n)])
    from minari import MinariDataset  # other formats (arrow): let Minari read them

    return np.array([float(np.sum(ep.rewards, dtype=np.float64)) for ep in MinariDataset(data_dir).iterate_episodes()])


def _env_id_from_spec(env_spec_json: str | None) -> str | None:
    if not env_spec_json:
        return None
    try:
        return json.loads(env_spec_json).get("id")
    except (ValueError, AttributeError):
        return None
