"""Load the Trajectory Transformer authors' code (jannerm/trajectory-transformer) for comparison tests.

The code is third party and is never copied into seqrl: it is imported, file by file, from the
peers folder (../shared/peers beside the checkout, or $SEQRL_PEERS). Its package `__init__`
files import gym, mujoco_py, d4rl and tap, so the packages are stand-ins registered here and
only the modules that need torch and numpy alone are executed: the model (`models/ein.py`,
`models/transformers.py`), the search (`search/sampling.py`, `search/utils.py`, `search/core.py`)
and the discretizer (`utils/arrays.py`, `utils/discretization.py`).

The stand-in packages live under a private top-level name (`_tt_authors`), not `trajectory`:
the faster-trajectory-transformer peer is also called `trajectory`, and a test process may load
both. Every import inside the loaded files is relative, so their names resolve the same way.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np

PACKAGE = "_tt_authors"
# (module name under PACKAGE, file under trajectory/), in dependency order.
MODULES = (
    ("utils.arrays", "utils/arrays.py"),
    ("utils.discretization", "utils/discretization.py"),
    ("models.ein", "models/ein.py"),
    ("models.transformers", "models/transformers.py"),
    ("search.sampling", "search/sampling.py"),
    ("search.utils", "search/utils.py"),
    ("search.core", "search/core.py"),
)


def peers_root() -> Path:
    """$SEQRL_PEERS, else ../shared/peers beside the repository checkout."""
    override = os.environ.get("SEQRL_PEERS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3].parent / "shared" / "peers"


def authors_root() -> Path:
    return peers_root() / "trajectory-transformer"


class _Silent:
    """What `search/core.py` calls `utils.Silent()` for when verbose=False: a progress bar that does nothing."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _package(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []  # a package, but with nothing to find on disk: every module is loaded below
    sys.modules[name] = module
    return module


def load_authors() -> SimpleNamespace:
    """The authors' modules: `.transformers`, `.ein`, `.sampling`, `.core`, `.discretization`, `.arrays`.

    Loaded once per process. Raises FileNotFoundError if the peers folder has no copy.
    """
    if f"{PACKAGE}.search.core" in sys.modules:
        return _namespace()
    source = authors_root() / "trajectory"
    missing = [path for _, path in MODULES if not (source / path).is_file()]
    if missing:
        raise FileNotFoundError(f"the authors' code is not in {source}: missing {', '.join(missing)}")
    packages = {"": _package(PACKAGE)}
    for sub in ("models", "search", "utils"):
        packages[sub] = _package(f"{PACKAGE}.{sub}")
        setattr(packages[""], sub, packages[sub])
    packages["utils"].Silent = _Silent  # `from .. import utils` in search/core.py reads it
    try:
        for name, path in MODULES:
            full = f"{PACKAGE}.{name}"
            spec = importlib.util.spec_from_file_location(full, source / path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[full] = module
            spec.loader.exec_module(module)
            parent, _, leaf = name.rpartition(".")
            setattr(packages[parent], leaf, module)
    except BaseException:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        raise
    return _namespace()


def _namespace() -> SimpleNamespace:
    get = sys.modules.__getitem__
    return SimpleNamespace(
        arrays=get(f"{PACKAGE}.utils.arrays"),
        discretization=get(f"{PACKAGE}.utils.discretization"),
        ein=get(f"{PACKAGE}.models.ein"),
        transformers=get(f"{PACKAGE}.models.transformers"),
        sampling=get(f"{PACKAGE}.search.sampling"),
        search_utils=get(f"{PACKAGE}.search.utils"),
        core=get(f"{PACKAGE}.search.core"),
    )


def quantile_discretizer(authors: SimpleNamespace, data: np.ndarray, N: int):
    """The authors' `QuantileDiscretizer(data, N)`, its self-test's print silenced and the global
    numpy RNG its self-test draws from restored."""
    import contextlib
    import io

    state = np.random.get_state()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return authors.discretization.QuantileDiscretizer(data, N)
    finally:
        np.random.set_state(state)
