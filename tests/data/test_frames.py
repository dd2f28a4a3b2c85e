"""Image observations kept as uint8 frames (seqrl.data.frames): the compact store rebuilds exactly
the stacks gymnasium's FrameStackObservation emitted, holds each frame once, survives Minari's
format, feeds the sampler uint8 batches, and an image dataset too big for memory is refused
before loading, with the estimate."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import seqrl.memory
from seqrl.data.frames import FrameStore, FrameStoreBuilder, check_fits, estimated_bytes, frame_stack_index
from seqrl.data.sampler import ContextSampler
from seqrl.data.sources import load_dataset, save_dataset
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.errors import DatasetError
from tests.conftest import make_trajectory_dataset
from tests.helpers.images import SIDE, image_dataset, image_episodes


@pytest.mark.parametrize("padding", ["reset", "zero"])
def test_the_store_rebuilds_exactly_the_stacks_the_env_emitted_from_one_frame_a_step(padding):
    episodes = image_episodes(episodes=5, seed=1, padding=padding)
    data = TrajectoryDataset.from_episodes(episodes, {"name": "bands", "action_space": {"type": "Discrete", "n": 3}})
    assert data.image and data.observation_shape == (4, SIDE, SIDE) and data.obs_dim == 4 * SIDE * SIDE
    start = 0
    for i, episode in enumerate(episodes):
        emitted = episode["observations"]  # (T + 1, 4, 36, 36) as FrameStackObservation gave them
        steps = len(episode["actions"])
        got = data.observations[start : start + steps]
        assert got.dtype == np.uint8 and np.array_equal(got, emitted[:-1])
        assert np.array_equal(data.final_observations[i], emitted[-1])
        start += steps
    # One frame a step (and one per episode's final observation), plus the shared zero frame:
    # a quarter of what the stacks hold.
    assert len(data.observations.frames) == data.num_transitions + data.num_episodes + 1
    stacked_bytes = sum(e["observations"].nbytes for e in episodes)
    assert data.observations.nbytes < stacked_bytes / 3.5


def test_observations_that_are_not_frame_stacks_are_kept_whole_and_exact():
    rng = np.random.default_rng(0)
    stacks = rng.integers(0, 255, (7, 4, SIDE, SIDE), dtype=np.uint8)  # no shared frames
    builder = FrameStoreBuilder((4, SIDE, SIDE))
    index = builder.add_episode(stacks)
    store = FrameStore(builder.frames(), index, (4, SIDE, SIDE))
    assert np.array_equal(store[np.arange(7)], stacks) and builder.whole_episodes == 1


def test_single_frames_and_rebuilding_stacks_from_frames_by_index():
    frames = np.arange(6 * SIDE * SIDE, dtype=np.int64).reshape(6, SIDE, SIDE).astype(np.uint8)
    single = TrajectoryDataset.from_episodes([{"observations": frames, "actions": np.zeros(6, np.int64),
                                               "rewards": np.zeros(6)}], {"action_space": {"type": "Discrete", "n": 2}})
    assert single.observation_shape == (SIDE, SIDE) and np.array_equal(single.observations[2], frames[2])
    # Steps 0..5 of an episode whose first frame is 0, zero frame at index 6 (as the DQN-replay reader builds them).
    positions = np.arange(6)
    index = frame_stack_index(positions, np.zeros(6, np.int64), 4, zero_frame=6)
    assert index[0].tolist() == [6, 6, 6, 0] and index[5].tolist() == [2, 3, 4, 5]
    assert frame_stack_index(positions, np.zeros(6, np.int64), 4)[1].tolist() == [0, 0, 0, 1]  # reset padding


def test_images_the_encoder_cannot_read_are_refused_by_name():
    with pytest.raises(DatasetError, match="smaller than the convolutional encoder's smallest input"):
        FrameStoreBuilder((4, 20, 20), "small")
    with pytest.raises(DatasetError, match="look channels-last"):
        FrameStoreBuilder((84, 84, 3), "rgb")


def test_an_image_dataset_has_no_per_pixel_statistics():
    data = image_dataset(episodes=2)
    with pytest.raises(DatasetError, match="not normalised per pixel"):
        data.observation_mean
    joined = TrajectoryDataset.concatenate([data, image_dataset(episodes=3, seed=5)])
    other = image_dataset(episodes=3, seed=5)
    assert joined.num_episodes == 5 and joined.image
    assert np.array_equal(joined.observations[data.num_transitions:], other.observations[:])
    assert np.array_equal(joined.final_observations[2], other.final_observations[0])
    with pytest.raises(DatasetError, match=r"different observations: image \(4, 36, 36\), vector \(3,\)"):
        TrajectoryDataset.concatenate([data, make_trajectory_dataset()])


def test_minari_keeps_frames_uint8_on_disk_and_reads_them_back_compactly(minari_root):
    data = image_dataset(episodes=4)
    folder = save_dataset(data, "seqrl/bandimage-v0", data.metadata["env_id"])
    with h5py.File(folder / "data" / "main_data.hdf5") as f:
        stored = f["episode_0/observations"]
        assert stored.dtype == np.uint8 and stored.shape[1:] == (4, SIDE, SIDE)
    back = load_dataset("seqrl/bandimage-v0")
    assert back.image and back.num_actions == 3
    assert np.array_equal(back.observations[np.arange(back.num_transitions)], data.observations[np.arange(data.num_transitions)])
    assert len(back.observations.frames) == len(data.observations.frames)


def test_an_image_dataset_too_big_for_memory_is_refused_before_loading_with_the_estimate(minari_root, monkeypatch):
    data = image_dataset(episodes=4)
    save_dataset(data, "seqrl/bandimage-v0", data.metadata["env_id"])
    monkeypatch.setattr(seqrl.memory, "available_memory", lambda: 10_000)
    read = []
    monkeypatch.setattr(FrameStoreBuilder, "add_episode", lambda self, obs: read.append(obs))
    estimate = estimated_bytes(data.num_transitions, (4, SIDE, SIDE))  # one 36x36 frame a step, plus 96 bytes
    assert estimate == data.num_transitions * (SIDE * SIDE + 96)
    with pytest.raises(DatasetError, match=rf"needs about {seqrl.memory.format_bytes(estimate)} in memory .* "
                                           r"only 9\.8 KB is available"):
        load_dataset("seqrl/bandimage-v0")
    assert not read  # refused before a frame was read
    # A 1M-step Atari dataset: 7,056 bytes a frame plus the per-step arrays, about 7.1 GB.
    assert 7.0e9 < estimated_bytes(1_000_000, (4, 84, 84)) < 7.2e9
    with pytest.raises(DatasetError, match="GB in memory"):
        check_fits(estimated_bytes(1_000_000, (4, 84, 84)), "atari", available=4 * 2**30)


def test_the_sampler_gathers_uint8_stacks_per_batch_and_zeroes_padding():
    data = image_dataset(episodes=6)
    sampler = ContextSampler(data, 5, rtg_scale=0.1)
    assert not hasattr(sampler, "_states")  # no float copy of the observations
    batch = sampler.sample(32, np.random.default_rng(0))
    assert batch.states.dtype == np.uint8 and batch.states.shape == (32, 5, 4, SIDE, SIDE)
    assert not batch.mask.all()  # some windows run past their episode's end
    assert (batch.states[~batch.mask] == 0).all()
    # Each window's first position is the transition the sampler drew (uniformly, with this rng).
    first = np.random.default_rng(0).integers(0, data.num_transitions, size=32)
    assert np.array_equal(batch.states[:, 0], data.observations[first])
