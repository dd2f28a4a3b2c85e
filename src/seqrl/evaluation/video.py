"""Record one evaluation episode as a GIF (pure Python, via Pillow) or MP4 (needs imageio-ffmpeg).

One env with `render_mode="rgb_array"` runs evaluate.py's rollout loop with the run's family
policy, so the recorded episode is the one `evaluate` scores for that seed (for deterministic
decoding).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqrl.errors import ConfigError
from seqrl.evaluation.rollout import ContextOnly, check_spaces, resolve_env_id, rollout
from seqrl.families import family_of
from seqrl.models.spec import DataSpec


def record_episode(
    model: torch.nn.Module,
    spec: DataSpec,
    path: str | Path,
    *,
    context_len: int | None = None,
    config: Any = None,
    target: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    env_id: str | None = None,
    frame_skip: int = 1,
    settings: Any = None,
) -> dict[str, Any]:
    """Run one episode (seed `seed`; a DT conditioned on `target`) and write its frames to `path`.

    Any family: the episode is driven by the family's policy, as `evaluate` drives it (`config`
    is the run's; a DT may pass `context_len` alone; `settings` are the family's own, e.g. the TT's
    planner). `frame_skip` keeps every n-th frame (long
    episodes make large GIFs). Returns the episode's return, length and the number of frames written.
    """
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise ConfigError("videos need the imageio package: pip install 'seqrl[video]'") from None

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ConfigError(f"video path {path} must end in .gif or .mp4")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ConfigError("MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); or write a .gif") from None
    if config is None:
        if context_len is None:
            raise ConfigError("record_episode needs the run's config (or a DT's context_len)")
        config = ContextOnly(int(context_len))
    env_id = resolve_env_id(spec, env_id)
    device = torch.device(device)
    from seqrl.collect.rollout import make_vector_env

    envs = make_vector_env(env_id, 1, autoreset_mode="same_step", vectorization="sync",
                           env_kwargs={**(spec.env_kwargs or {}), "render_mode": "rgb_array"})
    frames: list[np.ndarray] = []
    was_training = model.training
    model.eval()
    try:
        env_actions = check_spaces(spec, env_id, envs.single_observation_space, envs.single_action_space)
        family = family_of(config)
        condition = target if target is not None else family.conditions(config, spec, None)[0]
        policy = family.make_policy(model, spec, config, condition, settings=settings, device=device)
        returns, lengths = rollout(policy, envs, seed, env_actions,
                                   on_step=lambda live: frames.append(envs.envs[0].render()))
        episode_return, length = float(returns[0]), int(lengths[0])
        fps = float(envs.envs[0].metadata.get("render_fps", 30)) / frame_skip
    finally:
        envs.close()
        model.train(was_training)
    frames = frames[::frame_skip]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        imageio.mimsave(path, frames, duration=1000.0 / fps, loop=0)  # duration in ms per frame
    else:
        # macro_block_size=1: keep the frame size (600x400 LunarLander frames are otherwise resized)
        imageio.mimsave(path, frames, fps=fps, macro_block_size=1)
    return {"return": episode_return, "length": length, "frames": len(frames), "path": str(path)}
