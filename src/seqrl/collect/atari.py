"""Atari through ale-py, as the Decision Transformer paper evaluates it: `seqrl/Atari-v0`.

`gymnasium.make("seqrl/Atari-v0", game="Breakout")` is the one place an Atari environment is
built (the evaluation loop, `seqrl collect`, the DQN-replay reader's recorded env all name it):
- ALE's `ALE/<Game>-v5` with `frameskip=1` underneath gymnasium's `AtariPreprocessing`, which
  does the skipping (4 frames a step, the max over the last two), the 84x84 greyscale
  resize and up to 30 no-op actions at reset (Mnih et al. 2015). ALE's v5 default of skipping
  frames itself would skip twice;
- the minimal action set (ALE's default, and what the DQN-replay data's actions index);
- no sticky actions by default (`repeat_action_probability=0`, as the DT authors' evaluation);
  pass `sticky=0.25` for Machado et al.'s protocol (the DQN-replay data was collected with it);
- no terminal on life loss; episodes capped at 108,000 emulator frames (27,000 steps);
- frames stacked 4 deep by `FrameStackObservation` with ZERO padding at reset: the DQN-replay
  datasets' stacks start with zero frames (Dopamine's replay buffer adds blank frames before each
  episode), and so do the DT authors' evaluation stacks. Observations are (4, 84, 84) uint8.

The env's kwargs (`game` and the rest) travel with a dataset (`env_kwargs` in its metadata, then
the DataSpec), so `seqrl eval` builds the same env. Normalised scores use each game's random and
professional-gamer returns (seqrl.data.scores.ATARI_REFERENCE_RETURNS).

ale-py (which ships the ROMs) and OpenCV are the `atari` extra: `pip install 'seqrl[atari]'`.
Registering the id imports neither; making the env does.
"""

from __future__ import annotations

from typing import Any

from seqrl.data.scores import ATARI_ENV_ID as ENV_ID
from seqrl.errors import ConfigError

FRAME_STACK = 4
MAX_FRAMES = 108_000  # emulator frames an episode may last (30 minutes of play at 60 Hz)


def register_envs() -> None:
    """Register `seqrl/Atari-v0` with gymnasium (idempotent; ale-py is imported when one is made)."""
    import gymnasium as gym

    if ENV_ID not in gym.registry:
        # A string entry point: Minari stores the spec.
        gym.register(id=ENV_ID, entry_point="seqrl.collect.atari:make_atari")


def make_atari(game: str | None = None, sticky: float = 0.0, noop_max: int = 30, frame_skip: int = 4,
               frame_stack: int = FRAME_STACK, render_mode: str | None = None, **ale_kwargs: Any) -> Any:
    """The preprocessed, frame-stacked Atari env of `game` (ALE's name, e.g. Breakout, Pong)."""
    if not game:
        raise ConfigError(f"{ENV_ID} needs a game: --env-kwargs game=Breakout (ALE's name of the game)")
    try:
        import ale_py
        import gymnasium as gym
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation
    except ImportError as exc:
        raise ConfigError(f"{ENV_ID} needs ale-py: pip install 'seqrl[atari]' ({exc})") from None
    gym.register_envs(ale_py)
    ale_id = f"ALE/{game}-v5"
    if ale_id not in gym.registry:
        raise ConfigError(f"{game!r} is not an Atari game ale-py knows (no {ale_id}); names are ALE's, e.g. Breakout, "
                          "Pong, Qbert, Seaquest")
    try:
        env = gym.make(ale_id, frameskip=1, repeat_action_probability=float(sticky),
                       max_num_frames_per_episode=MAX_FRAMES, render_mode=render_mode, **ale_kwargs)
        env = AtariPreprocessing(env, noop_max=noop_max, frame_skip=frame_skip, screen_size=84)
    except gym.error.DependencyNotInstalled as exc:
        raise ConfigError(f"{ENV_ID} needs OpenCV for Atari preprocessing: pip install 'seqrl[atari]' ({exc})") from None
    return FrameStackObservation(env, frame_stack, padding_type="zero")
