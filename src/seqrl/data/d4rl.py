"""Reading D4RL's HDF5 files (`~/.d4rl/datasets/hopper-medium-v2.hdf5` and friends).

A D4RL file is one flat run of transitions; episodes end where `terminals` (the agent reached
a terminal state) or `timeouts` (the time limit cut it off) is set. D4RL does not store the
observation after an episode's last action unless the file has `next_observations`, so
`final_observations` is only filled in from that key.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import DatasetError
from seqrl.paths import d4rl_root

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
HDF5_SUFFIXES = (".hdf5", ".h5")

# D4RL's MuJoCo tasks were recorded on the -v2 gym environments; gymnasium's -v5 tasks keep
# the same observation and action layouts, so that is where a policy trained on the data runs.
D4RL_ENV_IDS = {
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
}


def resolve_d4rl_path(name: str | os.PathLike) -> Path:
    """`d4rl:hopper-medium-v2`, `hopper-medium-v2`, `hopper-medium-v2.hdf5` or a path -> a file path.

    Bare names are looked up in `seqrl.paths.d4rl_root()`; the file is not required to exist.
    """
    text = str(name)
    if text.startswith("d4rl:"):
        text = text[len("d4rl:") :]
    path = Path(text).expanduser()
    if path.is_absolute() or len(path.parts) > 1:
        return path
    if path.suffix not in HDF5_SUFFIXES:
        path = path.with_name(path.name + ".hdf5")
    # A bare file name in the working directory wins over the D4RL store, like any CLI path.
    return path if path.exists() else d4rl_root() / path


def env_id_for_d4rl(name: str) -> str | None:
    """'hopper-medium-v2' -> 'Hopper-v5'; None for tasks without a gymnasium counterpart here."""
    family = Path(name).name.lower().split("-")[0]
    return D4RL_ENV_IDS.get(family)


def load_d4rl_hdf5(path: str | os.PathLike, name: str | None = None) -> TrajectoryDataset:
    """Load a D4RL-style HDF5 file into a TrajectoryDataset.

    `path` may be a file path, a bare file name or `d4rl:NAME` (resolved under `d4rl_root()`).
    `terminals` become terminations and `timeouts` truncations; a final episode that ends
    with neither is kept and marked truncated (the data simply stops there).
    """
    file = resolve_d4rl_path(path)
    name = name or file.stem
    if not file.is_file():
        raise DatasetError(f"{name}: D4RL file not found: {file}")
    if not h5py.is_hdf5(file):
        raise DatasetError(f"{name}: {file} is not an HDF5 file")
    try:
        with h5py.File(file, "r") as f:
            missing = [key for key in REQUIRED_KEYS if key not in f]
            if missing:
                raise DatasetError(
                    f"{name}: {file} is missing the key(s) {', '.join(repr(k) for k in missing)} "
                    f"(a D4RL file needs {', '.join(REQUIRED_KEYS)})"
                )
            arrays = {key: np.asarray(f[key][()]) for key in REQUIRED_KEYS}
            next_obs = np.asarray(f["next_observations"][()]) if "next_observations" in f else None
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError) as exc:  # truncated or damaged file
        raise DatasetError(f"{name}: cannot read {file}: {exc}") from exc

    n = len(arrays["observations"])
    for key in REQUIRED_KEYS[1:]:
        if len(arrays[key]) != n:
            raise DatasetError(
                f"{name}: length mismatch in {file}: 'observations' has {n} rows but "
                f"'{key}' has {len(arrays[key])}"
            )
    if n == 0:
        raise DatasetError(f"{name}: {file} is empty (0 transitions)")

    terminals = arrays["terminals"].astype(bool).reshape(-1)
    timeouts = arrays["timeouts"].astype(bool).reshape(-1)
    ends = terminals | timeouts
    truncations = timeouts.copy()
    if not ends[-1]:
        truncations[-1] = True  # the trailing partial episode: cut off by the end of the data
    # An episode starts at 0 and after every step that ended one (except past the last step).
    starts = np.concatenate([[0], np.flatnonzero(ends[:-1]) + 1])

    final_observations = None
    if next_obs is not None and len(next_obs) == n:
        final_observations = next_obs[np.append(starts[1:], n) - 1]

    metadata = {"name": name, "source": "d4rl", "path": str(file)}
    env_id = env_id_for_d4rl(name)
    if env_id is not None:
        metadata["env_id"] = env_id
    return TrajectoryDataset(
        observations=arrays["observations"],
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        terminations=terminals,
        truncations=truncations,
        episode_starts=starts,
        metadata=metadata,
        final_observations=final_observations,
    )
