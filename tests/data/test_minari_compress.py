"""Image observations are written gzip-compressed in chunks of whole stacks, and the dataset stays
one Minari itself reads: the same arrays back, through Minari's reader and seqrl's."""

from __future__ import annotations

import h5py
import numpy as np
from minari import MinariDataset

from seqrl.data.sources import dataset_id_for, load_dataset, save_dataset
from tests.helpers.images import ENV_ID, image_dataset, image_episodes


def test_frame_stacks_are_stored_compressed_and_read_back_unchanged_by_minari_and_seqrl(minari_root):
    episodes = image_episodes(10)
    data = image_dataset(episodes=10)
    folder = save_dataset(data, dataset_id_for("bandimage"), ENV_ID)
    path = folder / "data" / "main_data.hdf5"
    with h5py.File(path, "r") as f:
        obs = f["episode_0/observations"]
        assert obs.compression == "gzip" and obs.chunks == (min(16, obs.shape[0]), 4, 36, 36)
        assert obs.maxshape == (None, 4, 36, 36)  # resizable, as Minari makes it (its update_episodes appends)
        assert f["episode_0"].attrs["total_steps"] == len(episodes[0]["actions"])
    # Minari's own reader: every stack, action and reward exactly as collected.
    minari_data = MinariDataset(folder / "data")
    read = list(minari_data.iterate_episodes())
    assert len(read) == len(episodes)
    for got, want in zip(read, episodes):
        assert np.array_equal(got.observations, want["observations"])
        assert np.array_equal(got.actions, want["actions"]) and np.array_equal(got.rewards, want["rewards"])
    assert minari_data.storage.metadata["dataset_size"] * 1e6 < 2 * path.stat().st_size + 1e6  # the packed size
    # Compressed far below the stacks' bytes (mostly dark frames, each repeated in 3 later stacks).
    with h5py.File(path, "r") as f:
        stored = sum(f[f"episode_{i}/observations"].id.get_storage_size() for i in range(len(episodes)))
    assert stored < sum(ep["observations"].nbytes for ep in episodes) / 4  # 8x here; 70x on Breakout
    # seqrl's reader rebuilds the same stacks.
    loaded = load_dataset("bandimage")
    stacks = np.concatenate([ep["observations"][:-1] for ep in episodes])
    assert np.array_equal(loaded.observations[np.arange(len(stacks))], stacks)


def test_vector_observations_are_written_as_minari_writes_them(minari_root, make_dataset):
    folder = save_dataset(make_dataset(), dataset_id_for("toy"), "LunarLanderContinuous-v3")
    with h5py.File(folder / "data" / "main_data.hdf5", "r") as f:
        assert f["episode_0/observations"].compression is None
