"""Record one evaluation episode as a GIF (pure Python, via Pillow) or MP4 (needs imageio-ffmpeg).

A separate single env with `render_mode="rgb_array"` runs the reference loop of evaluate.py
(`run_episode`), so the recorded episode is the one `evaluate_sequential` would score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqrl.errors import ConfigError
from seqrl.evaluation.evaluate import _check_spaces, _generator, resolve_env_id, run_episode
from seqrl.models.dt import DecisionTransformer
from seqrl.models.spec import DataSpec


def record_episode(
    model: DecisionTransformer,
    spec: DataSpec,
    path: str | Path,
    *,
    context_len: int,
    target: float,
    seed: int = 0,
    device: str | torch.device = "cpu",
    env_id: str | None = None,
    frame_skip: int = 1,
) -> dict[str, Any]:
    """Run one episode (seed `seed`, conditioned on `target`) and write its frames to `path`.

    `frame_skip` keeps every n-th frame (long episodes make large GIFs). Returns the episode's
    return, length and the number of frames written.
    """
    import gymnasium as gym
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ConfigError(f"video path {path} must end in .gif or .mp4")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ConfigError("MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); or write a .gif") from None
    env_id = resolve_env_id(spec, env_id)
    device = torch.device(device)
    env = gym.make(env_id, render_mode="rgb_array")
    frames: list[np.ndarray] = []
    was_training = model.training
    model.eval()
    try:
        low, high = _check_spaces(spec, env_id, env.observation_space, env.action_space)
        episode_return, length = run_episode(
            model, spec, env, context_len, target, seed, device, low, high, _generator(seed, device),
            on_step=lambda: frames.append(env.render()),
        )
        fps = float(env.metadata.get("render_fps", 30)) / frame_skip
    finally:
        env.close()
        model.train(was_training)
    frames = frames[::frame_skip]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        imageio.mimsave(path, frames, duration=1000.0 / fps, loop=0)  # duration in ms per frame
    else:
        imageio.mimsave(path, frames, fps=fps)
    return {"return": episode_return, "length": length, "frames": len(frames), "path": str(path)}
