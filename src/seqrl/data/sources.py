"""Where datasets come from: one resolver for every name a user may type, and `seqrl datasets`.

The readers and writers live in `seqrl.data.d4rl` (D4RL HDF5 files), `seqrl.data.dqn_replay`
(the DQN-replay Atari checkpoints) and `seqrl.data.minari_io` (Minari's format, which seqrl also
writes); this module re-exports them so callers need one import.
"""

from __future__ import annotations

import os
from pathlib import Path

from seqrl.data.d4rl import HDF5_SUFFIXES, load_d4rl_hdf5, resolve_d4rl_path
from seqrl.data.dqn_replay import PREFIX as DQN_REPLAY_PREFIX, load_dqn_replay, source_env
from seqrl.data.minari_io import (
    dataset_id_for,
    list_datasets,
    load_minari,
    local_dataset_ids,
    minari_data_dir,
    save_dataset,
    stored_env,
)
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import DatasetError
from seqrl.paths import d4rl_root, datasets_root

__all__ = [
    "dataset_env",
    "dataset_id_for",
    "datasets_command",
    "list_datasets",
    "load_d4rl_hdf5",
    "load_dataset",
    "load_minari",
    "save_dataset",
]


def load_dataset(name: str | os.PathLike) -> TrajectoryDataset:
    """Load a dataset from whatever the user typed, trying in this order:

    - `d4rl:NAME`: a D4RL HDF5 file under `d4rl_root()` (or a path);
    - `dqn-replay:PATH[:CKPTS]`: a DQN-replay Atari `replay_logs` folder (seqrl.data.dqn_replay);
    - an existing path: an `.hdf5`/`.h5` file is read as D4RL, a folder as a Minari dataset;
    - a Minari id with a version (`ns/name-v0`, `name-v2`) under `datasets_root()`;
    - a bare seqrl name (`hopper-medium` -> `seqrl/hopper-medium-v0`), or a namespaced id
      without version (`ns/name` -> its highest local version);
    - a D4RL file of that name under `d4rl_root()` (`hopper-medium-v2` -> `hopper-medium-v2.hdf5`).

    Unknown names raise DatasetError saying what was tried and which datasets exist locally.
    """
    text = str(name)
    if text.startswith("d4rl:"):
        return load_d4rl_hdf5(text)
    if text.startswith(DQN_REPLAY_PREFIX):
        return load_dqn_replay(text)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_file() and path.suffix in HDF5_SUFFIXES:
            return load_d4rl_hdf5(path)
        if path.is_dir():
            return load_minari(path)
        raise DatasetError(
            f"{text}: not a dataset (expected a D4RL .hdf5/.h5 file or a Minari dataset folder)"
        )
    if path.suffix in HDF5_SUFFIXES and len(path.parts) == 1:
        return load_d4rl_hdf5(path)  # a bare file name: looked up under d4rl_root()
    if path.suffix in HDF5_SUFFIXES or path.is_absolute() or text.startswith((".", "~")):
        raise DatasetError(f"{text}: no such file or folder")

    tried = []
    for dataset_id in _minari_candidates(text):
        tried.append(f"Minari dataset {dataset_id!r} in {datasets_root()}")
        if minari_data_dir(datasets_root() / dataset_id) is not None:
            return load_minari(dataset_id)
    d4rl_file = resolve_d4rl_path(text)
    tried.append(f"D4RL file {d4rl_file}")
    if d4rl_file.is_file():
        return load_d4rl_hdf5(d4rl_file)
    raise DatasetError(
        f"unknown dataset {text!r}; tried: {'; '.join(tried)}. "
        f"Local Minari datasets: {', '.join(local_dataset_ids()) or 'none'}. "
        f"D4RL files in {d4rl_root()}: {', '.join(_local_d4rl_files()) or 'none'}"
    )


def dataset_env(name: str | os.PathLike) -> dict | None:
    """The env a dataset records (`{"env_id": ..., "env_kwargs": {...}}`), told without loading it:
    a DQN-replay path names its game, a Minari dataset's metadata.json names its env. What a
    config's presets need before the data is read (the DT's Atari settings). None when it cannot be
    told this cheaply (D4RL files, which name their task, and names that match nothing)."""
    text = str(name)
    if text.startswith("d4rl:"):
        return None
    if text.startswith(DQN_REPLAY_PREFIX):
        return source_env(text)
    path = Path(text).expanduser()
    if path.exists():
        return stored_env(path) if path.is_dir() else None
    for dataset_id in _minari_candidates(text):
        found = stored_env(datasets_root() / dataset_id)
        if found is not None:
            return found
    return None


def _minari_candidates(text: str) -> list[str]:
    """Minari ids that `text` may mean, most specific first."""
    from minari.dataset.minari_dataset import DATASET_ID_RE

    match = DATASET_ID_RE.fullmatch(text)
    if match is None:
        return []
    if match.group("version") is not None:
        return [text]
    if "/" not in text:
        return [dataset_id_for(text)]
    # 'ns/name' without a version: the highest version present locally.
    versions = [i for i in local_dataset_ids() if i.rsplit("-v", 1)[0] == text]
    return sorted(versions, key=lambda i: int(i.rsplit("-v", 1)[1]), reverse=True)[:1] or [f"{text}-v0"]


def _local_d4rl_files() -> list[str]:
    root = d4rl_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.suffix in HDF5_SUFFIXES)


def datasets_command(json: bool = False) -> None:
    """List the local datasets (Minari format, all namespaces) with their size and returns.

    Args:
        json: Print a JSON list (one object per dataset) instead of a table.
    """
    import json as json_module

    rows = list_datasets()
    if json:
        print(json_module.dumps(rows, indent=2))
        return

    from seqrl.console import make_console
    from rich.table import Table

    def fmt(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    table = Table(title=f"Datasets in {datasets_root()}")
    for column in ("id", "env", "episodes", "steps", "return", "min", "max", "score"):
        if column in ("id", "env"):
            table.add_column(column, no_wrap=True, overflow="fold")
        else:
            table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for row in rows:
        if row["error"]:
            table.add_row(row["id"], f"[red]{row['error']}[/red]", *["-"] * 6)
            continue
        table.add_row(
            row["id"],
            row["env_id"] or "-",
            str(row["episodes"]),
            str(row["transitions"]),
            fmt(row["return_mean"]),
            fmt(row["return_min"]),
            fmt(row["return_max"]),
            fmt(row["normalized_score"]),
        )
    # Piped output (CI logs, `| less`) gets no terminal width from rich; give the table room
    # instead of letting it squeeze the numeric columns to nothing.
    console = make_console()
    if not rows:
        console.print(f"No datasets in {datasets_root()} (set MINARI_DATASETS_PATH, or run `seqrl collect`).")
        return
    console.print(table)
