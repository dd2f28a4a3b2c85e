"""Shared fixtures.

Every test runs with MINARI_DATASETS_PATH and D4RL_DATASET_DIR pointing at fresh temporary
folders (autouse), so no test reads or writes the user's real ~/.minari or ~/.d4rl.
`minari_root` / `d4rl_dir` give those folders; `make_dataset` builds small synthetic
TrajectoryDatasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pytest

from seqrl.data.trajectories import TrajectoryDataset


@pytest.fixture(autouse=True)
def _isolated_data_roots(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    roots = {
        "minari": tmp_path_factory.mktemp("minari_datasets"),
        "d4rl": tmp_path_factory.mktemp("d4rl_datasets"),
    }
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(roots["minari"]))
    monkeypatch.setenv("D4RL_DATASET_DIR", str(roots["d4rl"]))
    return roots


@pytest.fixture
def minari_root(_isolated_data_roots: dict[str, Path]) -> Path:
    """The (empty, per-test) Minari datasets root that MINARI_DATASETS_PATH points at."""
    return _isolated_data_roots["minari"]


@pytest.fixture
def d4rl_dir(_isolated_data_roots: dict[str, Path]) -> Path:
    """The (empty, per-test) folder that D4RL_DATASET_DIR points at."""
    return _isolated_data_roots["d4rl"]


def make_trajectory_dataset(
    lengths: Sequence[int] = (5, 3, 4),
    obs_dim: int = 3,
    act_dim: int = 2,
    *,
    seed: int = 0,
    with_final_observations: bool = True,
    terminated: Sequence[bool] | None = None,
    metadata: dict[str, Any] | None = None,
) -> TrajectoryDataset:
    """Random episodes of the given lengths; actions in [-1, 1] (declared in the metadata).

    `terminated[i]` says whether episode i ends in a terminal state (default: all truncated).
    """
    rng = np.random.default_rng(seed)
    terminated = list(terminated) if terminated is not None else [False] * len(lengths)
    episodes = []
    for length, term in zip(lengths, terminated):
        terminations = np.zeros(length, bool)
        terminations[-1] = term
        truncations = np.zeros(length, bool)
        truncations[-1] = not term
        n_obs = length + 1 if with_final_observations else length
        episodes.append(
            {
                "observations": rng.normal(size=(n_obs, obs_dim)).astype(np.float32),
                "actions": rng.uniform(-1, 1, size=(length, act_dim)).astype(np.float32),
                "rewards": rng.normal(size=length).astype(np.float32),
                "terminations": terminations,
                "truncations": truncations,
            }
        )
    meta = {"name": "synthetic", "action_low": [-1.0] * act_dim, "action_high": [1.0] * act_dim}
    meta.update(metadata or {})
    return TrajectoryDataset.from_episodes(episodes, metadata=meta)


@pytest.fixture
def make_dataset() -> Callable[..., TrajectoryDataset]:
    """Factory for small synthetic datasets: `make_dataset(lengths=(5, 3), obs_dim=4, seed=1)`."""
    return make_trajectory_dataset


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests use tiny models, where a second intra-op thread only adds synchronisation, and on
    a shared 2-core machine (or under pytest-xdist) it oversubscribes the cores badly."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def tiny_dataset() -> TrajectoryDataset:
    from tests.helpers.dt import make_dataset

    return make_dataset()


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    from tests.helpers.lm import save_tiny_gpt2

    return save_tiny_gpt2(tmp_path_factory.mktemp("gpt2") / "tiny-gpt2")


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    from tests.helpers.lm import CORPUS

    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text(CORPUS)
    import gzip

    with gzip.open(root / "sub" / "b.txt.gz", "wt") as f:  # Debian ships its text gzip-compressed
        f.write(CORPUS.upper())
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Caches (k-means centres, tokenized corpora) in the test's own directory."""
    monkeypatch.setenv("SEQRL_CACHE", str(tmp_path / "cache"))
