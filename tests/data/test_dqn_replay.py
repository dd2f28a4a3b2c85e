"""The DQN-replay reader (seqrl.data.dqn_replay) on fixtures written in Dopamine's exact layout:
a replay buffer that adds transitions as `OutOfGraphReplayBuffer.add` does (3 blank transitions
before every episode, a circular array of `capacity` slots) and saves each array as a gzipped
.npy file named `$store$_<name>_ckpt.<N>.gz`, with `add_count_ckpt.<N>.gz` beside them."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from seqrl.data.dqn_replay import load_dqn_replay, parse_source
from seqrl.data.scores import reference_returns
from seqrl.data.sources import load_dataset
from seqrl.errors import DatasetError

STACK = 4


class DopamineBuffer:
    """Dopamine's circular replay buffer, reduced to what its checkpoints hold."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.store = {"observation": np.zeros((capacity, 84, 84), np.uint8), "action": np.zeros(capacity, np.int32),
                      "reward": np.zeros(capacity, np.float32), "terminal": np.zeros(capacity, np.uint8)}
        self.add_count = 0

    def _add(self, observation, action, reward, terminal) -> None:
        cursor = self.add_count % self.capacity
        for key, value in zip(self.store, (observation, action, reward, terminal)):
            self.store[key][cursor] = value
        self.add_count += 1

    def add(self, observation, action, reward, terminal) -> None:
        if self.add_count == 0 or self.store["terminal"][(self.add_count - 1) % self.capacity] == 1:
            for _ in range(STACK - 1):  # blank transitions before an episode
                self._add(np.zeros((84, 84), np.uint8), 0, 0.0, 0)
        self._add(observation, action, reward, terminal)

    def save(self, folder, n: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"$store$_{k}": v for k, v in self.store.items()}
        arrays["add_count"] = np.array(self.add_count)
        arrays["invalid_range"] = np.zeros(STACK)
        for name, array in arrays.items():
            with gzip.open(folder / f"{name}_ckpt.{n}.gz", "wb") as handle:
                np.save(handle, array, allow_pickle=False)


def play(buffer: DopamineBuffer, lengths, seed: int, last_unfinished: bool = True):
    """Episodes of distinct frames (each frame's pixels hold its own id), recorded as a list of dicts."""
    rng = np.random.default_rng(seed)
    episodes, frame_id = [], 1
    for e, length in enumerate(lengths):
        frames, actions, rewards = [], [], []
        for t in range(length):
            frame = rng.integers(0, 256, (84, 84), dtype=np.uint8)
            frame[0, :2] = (frame_id % 256, frame_id // 256)
            frame_id += 1
            action, reward = int(rng.integers(4)), float(rng.choice([0.0, 1.0]))
            terminal = int(t == length - 1 and not (last_unfinished and e == len(lengths) - 1))
            buffer.add(frame, action, reward, terminal)
            frames.append(frame), actions.append(action), rewards.append(reward)
        episodes.append({"frames": np.stack(frames), "actions": actions, "rewards": rewards,
                         "terminated": not (last_unfinished and e == len(lengths) - 1)})
    return episodes


def expected_stacks(frames: np.ndarray) -> np.ndarray:
    """Dopamine's stacks: the 4 frames ending at each step, zero frames before the episode's start."""
    padded = np.concatenate([np.zeros((STACK - 1, 84, 84), np.uint8), frames])
    return np.stack([padded[t : t + STACK] for t in range(len(frames))])


def folder_of(tmp_path, game="Breakout"):
    return tmp_path / game / "1" / "replay_logs"


def check(data, episodes):
    assert data.num_episodes == len(episodes)
    for i, episode in enumerate(episodes):
        got = data.episode(i)
        assert np.array_equal(got["observations"], expected_stacks(episode["frames"]))
        assert got["actions"][:, 0].tolist() == episode["actions"]
        assert got["rewards"].tolist() == episode["rewards"]
        assert got["terminations"][-1] == episode["terminated"] and got["truncations"][-1] == (not episode["terminated"])
        assert not got["terminations"][:-1].any() and not got["truncations"][:-1].any()
        start = data.episode_starts[i]
        rtg = data.returns_to_go()[start : start + len(episode["rewards"])]
        np.testing.assert_allclose(rtg, np.cumsum(episode["rewards"][::-1])[::-1])


def test_a_replay_checkpoint_reads_as_episodes_of_dopamine_stacks(tmp_path):
    buffer = DopamineBuffer(capacity=400)
    episodes = play(buffer, [37, 1, 120, 55], seed=0)  # the last one unfinished
    buffer.save(folder_of(tmp_path), 0)
    data = load_dataset(f"dqn-replay:{folder_of(tmp_path)}")
    assert data.image and data.observation_shape == (4, 84, 84) and data.num_transitions == 213
    assert data.num_actions == 4  # Breakout's minimal action set (ale-py), or the largest action seen + 1
    check(data, episodes)
    assert data.metadata["env_id"] == "seqrl/Atari-v0" and data.metadata["env_kwargs"] == {"game": "Breakout"}
    assert reference_returns(data.metadata["env_id"], data.metadata) == (1.7, 30.5)
    # The frames are the checkpoint's own array (one frame a slot), plus one zero frame.
    assert data.observations.frames.shape == (401, 84, 84)


def test_a_wrapped_buffer_drops_the_episode_that_lost_its_beginning(tmp_path):
    buffer = DopamineBuffer(capacity=150)
    episodes = play(buffer, [60, 50, 40, 30], seed=1)  # 192 slots added: the first episode is overwritten
    assert buffer.add_count > buffer.capacity
    buffer.save(folder_of(tmp_path), 3)
    data = load_dqn_replay(f"dqn-replay:{folder_of(tmp_path)}:3")
    check(data, episodes[1:])


def test_several_checkpoints_are_read_into_one_dataset(tmp_path):
    first, second = DopamineBuffer(200), DopamineBuffer(200)
    episodes = play(first, [30, 20], seed=2, last_unfinished=False) + play(second, [25], seed=3, last_unfinished=False)
    first.save(folder_of(tmp_path), 7)
    second.save(folder_of(tmp_path), 8)
    data = load_dqn_replay(f"dqn-replay:{folder_of(tmp_path)}:7-8")
    check(data, episodes)
    assert data.metadata["checkpoints"] == [7, 8] and data.name == "dqn-replay-Breakout-1-ckpt7-8"


def test_a_dqn_replay_dataset_too_big_for_memory_is_refused_before_reading_frames(tmp_path):
    buffer = DopamineBuffer(capacity=300)
    play(buffer, [40], seed=0)
    buffer.save(folder_of(tmp_path), 0)
    with pytest.raises(DatasetError, match=r"needs about 2\.\d MB in memory .* only 1\.0 MB is available"):
        load_dqn_replay(f"dqn-replay:{folder_of(tmp_path)}", available=2**20)


def test_bad_sources_are_named(tmp_path):
    assert parse_source("dqn-replay:/data/Pong/1/replay_logs:1,45-47") == (
        __import__("pathlib").Path("/data/Pong/1/replay_logs"), [1, 45, 46, 47])
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset(f"dqn-replay:{tmp_path / 'nothing'}")
    buffer = DopamineBuffer(capacity=100)
    play(buffer, [20], seed=0)
    buffer.save(folder_of(tmp_path), 0)
    with pytest.raises(DatasetError, match=r"no checkpoint 5 \(present: 0\)"):
        load_dataset(f"dqn-replay:{folder_of(tmp_path)}:5")
    (folder_of(tmp_path) / "$store$_reward_ckpt.0.gz").unlink()
    with pytest.raises(DatasetError, match=r"checkpoint 0 has no \$store\$_reward_ckpt\.0\.gz"):
        load_dataset(f"dqn-replay:{folder_of(tmp_path)}")


def test_a_dt_trains_on_a_replay_checkpoint(tmp_path):
    from seqrl.train import train
    from tests.helpers.dt import tiny_config

    buffer = DopamineBuffer(capacity=200)
    play(buffer, [30, 40], seed=4)
    buffer.save(folder_of(tmp_path), 0)
    source = f"dqn-replay:{folder_of(tmp_path)}"
    result = train(tiny_config(run_dir=str(tmp_path / "run"), dataset=source, steps=3, num_bins=256, warmup_steps=1,
                               context_len=4, batch_size=4, targets=(5.0,)))
    assert result.spec.obs_shape == (4, 84, 84) and result.spec.env_kwargs == {"game": "Breakout"}
    assert result.spec.ref_min_score == 1.7 and result.spec.ref_max_score == 30.5
