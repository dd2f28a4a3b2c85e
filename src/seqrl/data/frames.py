"""Image observations kept as uint8 frames, with frame stacks rebuilt by index.

An Atari observation is a stack of the last S = 4 greyscale 84x84 frames. Consecutive steps of
an episode share S - 1 of those frames, so storing every step's stack keeps each frame S times:
a 1M-step dataset as stacks is 1M x 4 x 84 x 84 bytes = 28.2 GB, more than this 24 GB machine
has. A `FrameStore` keeps each distinct frame once, `frames` (M, H, W) uint8, and each step's
stack as S indices into it, `index` (N, S): 7,056 bytes a frame plus 4 x 4 bytes of index a step,
7.07 GB for 1M steps (docs/images.md).

How the indices are found (`FrameStoreBuilder.add_episode`): an episode's stacks are checked
against the two ways a frame stack starts, and kept compactly when one matches exactly:
- "reset" padding: gymnasium's `FrameStackObservation` (padding_type="reset", its default) fills
  the stack at reset with the first frame, so step t's stack is frames max(t-S+1, 0) .. t;
- "zero" padding: all-zero frames before the first one (Dopamine's replay buffer, and so the
  DQN-replay datasets; `padding_type="zero"`).
Stacks that match neither (another wrapper, or observations that are not frame stacks) are kept
whole: every step's S frames stored, still uint8, never wrong.

Single frames ((H, W) observations) are the S = 1 case, with the stack axis left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from seqrl.errors import DatasetError

# The smallest image the Nature-DQN encoder reads: 8x8 stride 4, 4x4 stride 2, 3x3 stride 1
# leave one pixel of a 36x36 image.
MIN_IMAGE_SIDE = 36
INDEX_DTYPE = np.int32  # 2**31 frames is more than any machine here holds
# Bytes a step costs besides its frames once loaded and sampled: the S indices, and the
# per-step arrays of the dataset and the context sampler (actions, rewards, flags, returns-to-go,
# timesteps, episode ends: counted array by array, about 80 bytes, rounded up).
PER_STEP_BYTES = 96


def image_shape_of(shape: tuple[int, ...], dtype: Any) -> tuple[int, ...] | None:
    """The observation's image shape if an observation of this shape and dtype is an image:
    uint8 and (H, W) or (C, H, W), channels first (frame stacks). None for anything else."""
    if np.dtype(dtype) != np.uint8 or len(shape) not in (2, 3):
        return None
    return tuple(int(s) for s in shape)


def check_image_shape(shape: tuple[int, ...], name: str) -> None:
    """Refuse image shapes the convolutional encoder cannot read, naming the problem."""
    height, width = shape[-2:]
    if len(shape) == 3 and shape[0] > 16 and shape[-1] <= 4:
        raise DatasetError(f"{name}: image observations of shape {shape} look channels-last; seqrl reads "
                           "(C, H, W) frame stacks or (H, W) frames (e.g. Atari's 4 x 84 x 84)")
    if min(height, width) < MIN_IMAGE_SIDE:
        raise DatasetError(f"{name}: images of {height}x{width} are smaller than the convolutional encoder's "
                           f"smallest input ({MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}; Atari's are 84x84)")


@dataclass(eq=False)
class FrameStore:
    """Image observations: step i is `frames[index[i]]`, shaped `shape` (see the module docstring).

    Indexing (`store[rows]`, rows an int, a slice or an integer array) returns uint8 arrays of
    shape rows.shape + shape; nothing is converted to float here (the model scales by 1/255).
    """

    frames: np.ndarray  # (M, H, W) uint8: every distinct frame once (and one zero frame if padded with it)
    index: np.ndarray  # (N, S) int32: step i's stack, oldest frame first
    shape: tuple[int, ...]  # one observation: (S, H, W), or (H, W) for single frames (S = 1)

    def __post_init__(self) -> None:
        if self.frames.dtype != np.uint8 or self.frames.ndim != 3:
            raise DatasetError(f"image frames must be (M, H, W) uint8, got {self.frames.dtype} {self.frames.shape}")
        stack = self.shape[0] if len(self.shape) == 3 else 1
        if self.index.ndim != 2 or self.index.shape[1] != stack:
            raise DatasetError(f"frame indices must be (N, {stack}), got {self.index.shape}")
        if tuple(self.shape[-2:]) != self.frames.shape[1:]:
            raise DatasetError(f"frames of {self.frames.shape[1:]} do not make observations of {self.shape}")

    def __len__(self) -> int:
        return len(self.index)

    @property
    def ndim(self) -> int:
        return 1 + len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def nbytes(self) -> int:
        """Bytes held (the frames and the indices)."""
        return int(self.frames.nbytes + self.index.nbytes)

    def __getitem__(self, rows: Any) -> np.ndarray:
        picked = self.index[rows]  # rows.shape + (S,)
        return self.frames[picked].reshape(picked.shape[:-1] + self.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # Whole-dataset arrays of images are what this class exists to avoid; code that asks for
        # one (a vector family's normalisation) should have refused image observations by name.
        raise DatasetError("image observations are kept as a FrameStore; this code path takes vector observations")

    @staticmethod
    def concatenate(stores: list["FrameStore"], finals: list["FrameStore | None"]) -> tuple["FrameStore", "FrameStore | None"]:
        """Several datasets' stores in one (their frames joined once, indices shifted), and their
        final-observation stores (each on its dataset's frames) likewise; None if any lacks them."""
        frames = np.concatenate([s.frames for s in stores])
        offsets = np.cumsum([0] + [len(s.frames) for s in stores[:-1]])
        joined = FrameStore(frames, np.concatenate([s.index + o for s, o in zip(stores, offsets)]), stores[0].shape)
        if any(f is None or f.frames is not s.frames for f, s in zip(finals, stores)):
            return joined, None
        return joined, FrameStore(frames, np.concatenate([f.index + o for f, o in zip(finals, offsets)]), stores[0].shape)

    def take(self, rows: np.ndarray) -> "FrameStore":
        """The store of steps `rows` only, sharing the frames (no copy of them)."""
        return FrameStore(self.frames, self.index[rows], self.shape)


class FrameStoreBuilder:
    """Compresses episodes of image observations one at a time (so a whole dataset's stacks are
    never held at once): `add_episode(stacks)` returns the new steps' indices."""

    def __init__(self, shape: tuple[int, ...], name: str = "dataset") -> None:
        check_image_shape(shape, name)
        self.shape = tuple(shape)
        self.stack = shape[0] if len(shape) == 3 else 1
        self.name = name
        self._chunks: list[np.ndarray] = [np.zeros((1,) + self.shape[-2:], np.uint8)]  # frame 0: the zero frame
        self._count = 1
        self.compact_episodes = 0
        self.whole_episodes = 0

    def add_episode(self, observations: np.ndarray) -> np.ndarray:
        """(T, *shape) uint8 observations of one episode -> (T, S) indices into the store's frames."""
        obs = np.asarray(observations)
        if obs.dtype != np.uint8 or obs.shape[1:] != self.shape:
            raise DatasetError(f"{self.name}: image observations must be uint8 of shape {self.shape}, got "
                               f"{obs.dtype} {obs.shape[1:]}")
        stacks = obs if len(self.shape) == 3 else obs[:, None]  # (T, S, H, W)
        steps, depth = len(stacks), self.stack
        newest = stacks[:, -1]  # (T, H, W): the frame each step adds
        # Candidate layout: step t, slot j holds frame t - (S-1) + j; before the episode, padding.
        position = np.arange(steps)[:, None] - (depth - 1) + np.arange(depth)[None, :]  # (T, S)
        before = position < 0
        for padding in ("reset", "zero"):
            frame_of = np.where(before, 0 if padding == "reset" else -1, position)  # -1: the zero frame
            rebuilt = np.where((frame_of < 0)[..., None, None], 0, newest[np.maximum(frame_of, 0)])
            if np.array_equal(rebuilt, stacks):
                base = self._append(newest)
                self.compact_episodes += 1
                return np.where(frame_of < 0, 0, base + frame_of).astype(INDEX_DTYPE)
        base = self._append(stacks.reshape((-1,) + self.shape[-2:]))  # every step's S frames
        self.whole_episodes += 1
        return (base + np.arange(steps * depth).reshape(steps, depth)).astype(INDEX_DTYPE)

    def _append(self, frames: np.ndarray) -> int:
        base = self._count
        self._chunks.append(np.ascontiguousarray(frames, dtype=np.uint8))
        self._count += len(frames)
        return base

    def frames(self) -> np.ndarray:
        """(M, H, W) every frame added (one copy, made once)."""
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0]


def frame_stack_index(positions: np.ndarray, episode_first: np.ndarray, stack: int,
                      zero_frame: int | None = None) -> np.ndarray:
    """(N, S) indices of stacks rebuilt from single frames: step at frame `positions[i]`, whose
    episode's first frame is `episode_first[i]`, stacks the S frames ending at it; those before the
    episode's start are `zero_frame` (zero padding) or the first frame (reset padding, None)."""
    slots = positions[:, None] - (stack - 1) + np.arange(stack)[None, :]  # (N, S)
    before = slots < episode_first[:, None]
    fill = episode_first[:, None] if zero_frame is None else zero_frame
    return np.where(before, fill, slots).astype(INDEX_DTYPE)


def estimated_bytes(steps: int, shape: tuple[int, ...]) -> int:
    """Memory a compactly stored image dataset of `steps` steps needs once loaded: one frame
    (H x W bytes) a step plus PER_STEP_BYTES (docs/images.md has the figure for 1M steps)."""
    height, width = shape[-2:]
    return int(steps) * (int(height) * int(width) + PER_STEP_BYTES)


def check_fits(estimate: int, name: str, available: int | None = None) -> None:
    """Refuse, before loading, an image dataset whose estimated size exceeds the memory available."""
    from seqrl.memory import available_memory, format_bytes

    available = available_memory() if available is None else available
    if available is not None and estimate > available:
        raise DatasetError(f"{name}: the image dataset needs about {format_bytes(estimate)} in memory (uint8 frames, "
                           f"stacks rebuilt by index) but only {format_bytes(available)} is available; load fewer "
                           "steps (e.g. fewer DQN-replay checkpoints) or use a machine with more memory")
