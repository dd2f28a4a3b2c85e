"""Image observations of a Minari dataset stored gzip-compressed, the format unchanged.

Minari's HDF5 writer stores each step's observation as it is: an Atari frame stack is 4 x 84 x 84
uint8, 28,224 bytes a step, three quarters of it the frames of the step before. HDF5 compresses a
dataset's chunks transparently: whoever reads it (Minari, h5py, any HDF5 build, since deflate is
HDF5's standard filter) gets the same arrays back, so the dataset stays a Minari dataset.

The chunks hold whole stacks of `CHUNK_STEPS` consecutive steps, so a frame repeated in the next
stack lies 3 frames (21,168 bytes) back, inside deflate's 32 KB window: it is stored about once.
On the 3,000-step random Breakout dataset of docs/results/atari_smoke this takes the observations
from 28,400 to ~340 bytes a step (docs/images.md). LZF (h5py's own filter) is faster but only h5py
reads it, and its 8 KB window cannot reach the repeated frame.

Minari writes the file first; `compress_image_observations` then rewrites it once with the
observations compressed (HDF5 does not give back a deleted dataset's space, so the file is copied,
not edited in place). Everything else is copied as Minari wrote it, attributes included.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

CHUNK_STEPS = 16  # 16 Atari stacks: a 451 KB chunk, inside h5py's 1 MB chunk cache
COMPRESSION = "gzip"
LEVEL = 4  # h5py's default deflate level; 9 saves ~30% more on Atari at twice the write time


def compress_image_observations(path: Path) -> None:
    """Rewrite the Minari HDF5 file at `path` with every episode's `observations` gzip-compressed in
    chunks of whole steps; the arrays read back are unchanged."""
    path = Path(path)
    packed = path.with_name(path.name + ".packed")
    with h5py.File(path, "r") as src, h5py.File(packed, "w", track_order=True) as dst:
        dst.attrs.update(src.attrs)
        for name, episode in src.items():
            if not isinstance(episode, h5py.Group) or "observations" not in episode:
                src.copy(episode, dst, name)
                continue
            group = dst.create_group(name, track_order=True)
            group.attrs.update(episode.attrs)
            for key, member in episode.items():
                if key == "observations" and isinstance(member, h5py.Dataset):
                    frames = member[()]
                    group.create_dataset(key, data=frames, chunks=(min(CHUNK_STEPS, len(frames)), *frames.shape[1:]),
                                         maxshape=(None, *frames.shape[1:]), compression=COMPRESSION,
                                         compression_opts=LEVEL)
                else:
                    src.copy(member, group, key)
    os.replace(packed, path)
