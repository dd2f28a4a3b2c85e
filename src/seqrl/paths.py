"""Where seqrl keeps things on disk. Read at call time (never at import), so tests can redirect."""

from __future__ import annotations

import os
from pathlib import Path


def datasets_root() -> Path:
    """Root of the local Minari dataset store.

    seqrl writes its own datasets in Minari's on-disk format into Minari's own store, so
    `minari.load_dataset(...)` reads them too. Honours `MINARI_DATASETS_PATH` like Minari does.
    """
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env).expanduser() if env else Path("~/.minari/datasets").expanduser()


def d4rl_root() -> Path:
    """Directory where D4RL keeps its downloaded HDF5 files (`D4RL_DATASET_DIR` or ~/.d4rl/datasets)."""
    env = os.environ.get("D4RL_DATASET_DIR")
    return Path(env).expanduser() if env else Path("~/.d4rl/datasets").expanduser()


def zoo_default_places() -> list[Path]:
    """Where a zoo is looked for when neither --zoo nor SEQRL_ZOO names one, in this order: the
    working directory's `zoo/`, a `shared/zoo` beside it (this project's layout, which the tests
    and CI use), and ~/.seqrl/zoo."""
    cwd = Path.cwd()
    return [cwd / "zoo", cwd.parent / "shared" / "zoo", Path("~/.seqrl/zoo").expanduser()]


def zoo_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """Folder of rl-baselines3-zoo style trained agents: `--zoo DIR`, else `SEQRL_ZOO`, else the
    first of `zoo_default_places()` that exists, else None."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("SEQRL_ZOO")
    if env:
        return Path(env).expanduser()
    return next((place for place in zoo_default_places() if place.is_dir()), None)
