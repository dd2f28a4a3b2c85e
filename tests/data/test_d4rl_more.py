"""D4RL files: every key's length is checked, an episode ending one step before the data's end,
and what the metadata records (mutation testing survivors)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from seqrl.data.sources import load_d4rl_hdf5
from seqrl.errors import DatasetError

from .test_sources import write_d4rl


@pytest.mark.parametrize("key", ["actions", "rewards", "terminals", "timeouts"])
def test_every_keys_length_is_checked(tmp_path, key):
    short = {"actions": np.zeros((9, 2), np.float32), "rewards": np.zeros(9, np.float32),
             "terminals": np.zeros(9, bool), "timeouts": np.zeros(9, bool)}[key]
    write_d4rl(tmp_path / "d.hdf5", n=10)
    with h5py.File(tmp_path / "d.hdf5", "a") as f:  # (write_d4rl's own terminals= means indices)
        del f[key]
        f.create_dataset(key, data=short)
    with pytest.raises(DatasetError, match=rf"'observations' has 10 rows but '{key}' has 9"):
        load_d4rl_hdf5(tmp_path / "d.hdf5")


def test_an_episode_ending_at_the_second_to_last_step(tmp_path):
    write_d4rl(tmp_path / "x.hdf5", n=7, terminals=[1, 5])
    ds = load_d4rl_hdf5(tmp_path / "x.hdf5")
    assert ds.episode_starts.tolist() == [0, 2, 6]
    assert ds.episode_lengths.tolist() == [2, 4, 1]
    assert np.flatnonzero(ds.terminations).tolist() == [1, 5]
    assert np.flatnonzero(ds.truncations).tolist() == [6]  # the one-step trailing partial episode


def test_metadata_records_the_file(tmp_path):
    path = tmp_path / "walker2d-medium-v2.hdf5"
    write_d4rl(path, n=4)
    meta = load_d4rl_hdf5(path).metadata
    assert meta["path"] == str(path) and meta["source"] == "d4rl" and meta["name"] == "walker2d-medium-v2"
    assert meta["env_id"] == "Walker2d-v5"
    assert load_d4rl_hdf5(path, name="mine").metadata["name"] == "mine"
