"""The DQN-replay Atari datasets (Agarwal et al. 2020), read from the files users download.

`gs://atari-replay-datasets/dqn/<Game>/<run>/replay_logs/` holds Dopamine's replay-buffer
checkpoints (`dopamine/replay_memory/circular_replay_buffer.py`, `OutOfGraphReplayBuffer.save`):
for each checkpoint N, one gzipped `.npy` file per array,

    $store$_observation_ckpt.N.gz   (C, 84, 84) uint8: ONE greyscale frame per slot
    $store$_action_ckpt.N.gz        (C,) int32: the action taken after that frame (minimal action set)
    $store$_reward_ckpt.N.gz        (C,) float32: the reward that followed (clipped to [-1, 1] by
                                    Dopamine's runner before it was stored)
    $store$_terminal_ckpt.N.gz      (C,) uint8: 1 on an episode's last step
    add_count_ckpt.N.gz             0-d: transitions ever added (a circular buffer of capacity C)
    invalid_range_ckpt.N.gz, ...    (not needed here)

Dopamine stacks the 4 frames ending at a slot, and adds 3 blank (all-zero) transitions before
every episode, so an episode's first stacks start with zero frames. The reader keeps the
observation array as it is (7 GB for a 1M-slot checkpoint) and rebuilds each step's stack by
index (seqrl.data.frames): the frames of the step's episode, zero frames before its start, as
Dopamine's `get_observation_stack` returns them. The padding transitions are not steps.

When the buffer has wrapped (add_count > C), the slot at the cursor (add_count mod C) is the
oldest: the episode there lost its beginning and is dropped; the newest episode may be unfinished
and is kept, truncated.

`load_dqn_replay("dqn-replay:PATH[:CKPTS]")`: PATH is a `replay_logs` folder (the game is the
folder two above it, as the bucket lays them out); CKPTS picks checkpoints, `49`, `45-49` or
`1,7,9` (default: every checkpoint in the folder). The dataset records `seqrl/Atari-v0` with its
game, so evaluation builds the matching env (seqrl.collect.atari).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np

from seqrl.data.frames import FrameStore, check_fits, estimated_bytes, frame_stack_index
from seqrl.data.scores import ATARI_ENV_ID, atari_reference_returns
from seqrl.data.trajectories import TrajectoryDataset, discrete_action_space
from seqrl.errors import DatasetError

PREFIX = "dqn-replay:"
STACK = 4  # Dopamine's stack_size for Atari
STORE = "$store${}_ckpt.{}.gz"  # $store$_observation_ckpt.N.gz
ARRAYS = ("observation", "action", "reward", "terminal")
_CHECKPOINTS = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_source(text: str) -> tuple[Path, list[int] | None]:
    """`dqn-replay:PATH[:CKPTS]` -> (the replay_logs folder, the checkpoints asked for or None: all)."""
    body = text[len(PREFIX):] if text.startswith(PREFIX) else text
    path, checkpoints = body, None
    head, _, tail = body.rpartition(":")
    if head and _CHECKPOINTS.match(tail):
        path, checkpoints = head, []
        for part in tail.split(","):
            first, _, last = part.partition("-")
            checkpoints += list(range(int(first), int(last or first) + 1))
    return Path(path).expanduser(), checkpoints


def checkpoints_in(folder: Path) -> list[int]:
    """Checkpoint numbers with an observation file in `folder`."""
    found = (re.fullmatch(r"\$store\$_observation_ckpt\.(\d+)\.gz", p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def _npy_header(handle: Any, name: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"{name}: not a gzipped .npy array ({exc})") from None
    if fortran:
        raise DatasetError(f"{name}: Fortran-ordered arrays are not read")
    return tuple(shape), np.dtype(dtype)


def read_array(path: Path, out: np.ndarray | None = None) -> np.ndarray:
    """A gzipped .npy file (what Dopamine writes), streamed into `out` when given (no second copy)."""
    try:
        with gzip.open(path, "rb") as handle:
            shape, dtype = _npy_header(handle, path.name)
            array = np.empty(shape, dtype) if out is None else out
            if array.shape != shape or array.dtype != dtype:
                raise DatasetError(f"{path.name}: holds {dtype} {shape}, expected {array.dtype} {array.shape}")
            view = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
            read = 0
            while read < len(view):
                n = handle.readinto(view[read:])
                if not n:
                    raise DatasetError(f"{path.name}: ends after {read} of {len(view)} bytes (truncated download?)")
                read += n
            return array
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path.name}: unreadable ({exc})") from None


def observation_shape(path: Path) -> tuple[int, ...]:
    """The observation array's shape, from its header alone (nothing else is decompressed)."""
    with gzip.open(path, "rb") as handle:
        return _npy_header(handle, path.name)[0]


def _ordered_slots(add_count: int, capacity: int) -> np.ndarray:
    """Slots from oldest to newest (a wrapped buffer's oldest slot is at the cursor)."""
    if add_count < capacity:
        return np.arange(add_count)
    return (add_count % capacity + np.arange(capacity)) % capacity


def _episodes(terminal: np.ndarray, wrapped: bool) -> list[tuple[int, int, bool]]:
    """(first, end, terminated) of each episode, in positions of the ordered slots, padding left out.

    Every episode is preceded by STACK - 1 blank transitions; a wrapped buffer's first episode lost
    its beginning (dropped); the last one may be unfinished (kept, not terminated)."""
    ends = np.flatnonzero(terminal) + 1  # one past each episode's last step
    starts = np.concatenate([[0], ends]) + (STACK - 1)  # after the padding
    stops = np.concatenate([ends, [len(terminal)]])
    episodes = []
    for i, (first, end) in enumerate(zip(starts, stops)):
        if i == 0 and wrapped:
            continue
        if end > first:
            episodes.append((int(first), int(end), i < len(ends)))
    return episodes


def game_of_folder(folder: Path) -> str | None:
    """The game of a `replay_logs` folder: the folder two above it, as the bucket lays them out
    (`<Game>/<run>/replay_logs`); None for a folder not named replay_logs."""
    return (folder.parent.parent.name or None) if folder.name == "replay_logs" else None


def source_env(source: str) -> dict[str, Any] | None:
    """The env a `dqn-replay:PATH[:CKPTS]` dataset records (`env_id`, `env_kwargs` with its game),
    told from the path alone, nothing read; None when the path names no game."""
    game = game_of_folder(parse_source(str(source))[0])
    return None if game is None else {"env_id": ATARI_ENV_ID, "env_kwargs": {"game": game}}


def load_dqn_replay(source: str | Path, available: int | None = None) -> TrajectoryDataset:
    """The dataset `dqn-replay:PATH[:CKPTS]` names (see the module docstring); an estimate above the
    memory available (`available`, default: the machine's) is refused before any frame is read."""
    folder, wanted = parse_source(str(source))
    if not folder.is_dir():
        raise DatasetError(f"{source}: no such folder (expected a DQN-replay replay_logs folder)")
    present = checkpoints_in(folder)
    if not present:
        raise DatasetError(f"{folder}: no $store$_observation_ckpt.N.gz files (not a DQN-replay replay_logs folder)")
    checkpoints = present if wanted is None else wanted
    missing = sorted(set(checkpoints) - set(present))
    if missing:
        raise DatasetError(f"{folder}: no checkpoint {', '.join(map(str, missing))} (present: "
                           f"{', '.join(map(str, present))})")
    game = game_of_folder(folder)
    if not game:
        raise DatasetError(f"{folder}: cannot tell the game; keep the bucket's layout <Game>/<run>/replay_logs")
    for n in checkpoints:
        for name in ARRAYS:
            if not (folder / STORE.format("_" + name, n)).is_file():
                raise DatasetError(f"{folder}: checkpoint {n} has no {STORE.format('_' + name, n)}")
        if not (folder / f"add_count_ckpt.{n}.gz").is_file():
            raise DatasetError(f"{folder}: checkpoint {n} has no add_count_ckpt.{n}.gz")
    shapes = [observation_shape(folder / STORE.format("_observation", n)) for n in checkpoints]
    if any(len(s) != 3 for s in shapes) or len({s[1:] for s in shapes}) != 1:
        raise DatasetError(f"{folder}: observation arrays must be (slots, H, W) frames, got {shapes}")
    frame_shape = shapes[0][1:]
    name = f"dqn-replay-{game}-{folder.parent.name}-ckpt{'-'.join(map(str, checkpoints))}"
    check_fits(estimated_bytes(sum(s[0] for s in shapes), frame_shape), name, available)

    # One array of every checkpoint's frames, and one zero frame after them for padding.
    frames = np.empty((sum(s[0] for s in shapes) + 1, *frame_shape), np.uint8)
    frames[-1] = 0
    zero = len(frames) - 1
    index, actions, rewards, terms, truncs, starts = [], [], [], [], [], []
    offset = total = 0
    for n, shape in zip(checkpoints, shapes):
        capacity = shape[0]
        read_array(folder / STORE.format("_observation", n), frames[offset:offset + capacity])
        arrays = {k: read_array(folder / STORE.format("_" + k, n)) for k in ARRAYS[1:]}
        for key, array in arrays.items():
            if array.shape != (capacity,):
                raise DatasetError(f"{folder}: checkpoint {n}'s {key} has shape {array.shape}, expected ({capacity},)")
        add_count = int(read_array(folder / f"add_count_ckpt.{n}.gz"))
        slots = _ordered_slots(add_count, capacity)  # (S,) oldest first
        for first, end, terminated in _episodes(arrays["terminal"][slots], add_count > capacity):
            steps = slots[first:end]
            # Stacks by position in the ordered slots; before the episode's first step, the zero frame.
            position = np.arange(first, end)
            stack = frame_stack_index(position, np.full(len(position), first), STACK, zero_frame=-1)
            index.append(np.where(stack < 0, zero, offset + slots[np.maximum(stack, 0)]))
            actions.append(arrays["action"][steps])
            rewards.append(arrays["reward"][steps])
            done = np.zeros(len(steps), bool)
            done[-1] = True
            terms.append(done & terminated)
            truncs.append(done & (not terminated))
            starts.append(total)
            total += len(steps)
        offset += capacity
    if not starts:
        raise DatasetError(f"{folder}: checkpoints {checkpoints} hold no complete step")
    actions = np.concatenate(actions).astype(np.int64)
    n_actions = _action_count(game, int(actions.max()) + 1, name)
    ref = atari_reference_returns(game)
    metadata = {
        "name": name, "env_id": ATARI_ENV_ID, "env_kwargs": {"game": game}, "source": "dqn-replay",
        "action_space": discrete_action_space(n_actions), "checkpoints": checkpoints, "path": str(folder),
        "ref_min_score": ref[0] if ref else None, "ref_max_score": ref[1] if ref else None,
        "rewards": "clipped to [-1, 1] (Dopamine's runner clips before storing)",
    }
    return TrajectoryDataset(
        observations=FrameStore(frames, np.concatenate(index).astype(np.int32), (STACK, *frame_shape)),
        actions=actions, rewards=np.concatenate(rewards), terminations=np.concatenate(terms),
        truncations=np.concatenate(truncs), episode_starts=np.asarray(starts, np.int64), metadata=metadata,
    )


def _action_count(game: str, seen: int, name: str) -> int:
    """The size of the game's minimal action set (what the data's actions index), from ale-py when
    installed; otherwise the largest action seen + 1."""
    try:
        import ale_py
        import gymnasium as gym
    except ImportError:
        return seen
    gym.register_envs(ale_py)
    if f"ALE/{game}-v5" not in gym.registry:
        return seen
    env = gym.make(f"ALE/{game}-v5")  # ALE's default is the minimal action set, as Dopamine's
    n = int(env.action_space.n)
    env.close()
    if seen > n:
        raise DatasetError(f"{name}: action {seen - 1} is outside {game}'s minimal action set of {n} actions")
    return n
