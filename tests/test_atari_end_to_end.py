"""The Atari path end to end at tiny scale (issue 28, section 3): `seqrl collect` on seqrl/Atari-v0
(Breakout through ale-py, the DQN preprocessing, 4 stacked frames), a Decision Transformer trained
on it through the one loop, evaluated in vector envs with the DT paper's gamer-normalised score.
The measured run at a larger size is in docs/results/atari_smoke/."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from seqrl.collect.recipes import collect_command  # noqa: E402
from seqrl.data.sources import load_dataset  # noqa: E402
from seqrl.evaluation.rollout import evaluate, make_eval_envs  # noqa: E402
from seqrl.loading import load_run  # noqa: E402
from seqrl.train import train  # noqa: E402
from tests.helpers.dt import tiny_config  # noqa: E402


def test_the_preprocessed_env_stacks_zero_padded_84x84_frames():
    import gymnasium as gym

    from seqrl.collect.envs import register_envs

    register_envs()
    env = gym.make("seqrl/Atari-v0", game="Breakout", noop_max=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and env.action_space.n == 4
    assert not obs[:3].any() and obs[3].any()  # zero padding before the first frame, as DQN-replay's stacks
    following, *_ = env.step(1)
    assert np.array_equal(following[2], obs[3])  # the stack shifts by one frame a step
    env.close()


@pytest.mark.slow
def test_collect_train_and_evaluate_on_breakout(tmp_path, minari_root):
    collect_command(env="seqrl/Atari-v0", env_kwargs=("game=Breakout",), policy=("random",), transitions=400,
                    n_envs=2, name="breakout-tiny")
    data = load_dataset("breakout-tiny")
    assert data.image and data.observation_shape == (4, 84, 84) and data.num_actions == 4
    assert data.metadata["ref_min_score"] == 1.7 and data.metadata["ref_max_score"] == 30.5
    # Zero-padded stacks, each frame held once.
    assert len(data.observations.frames) <= data.num_transitions + data.num_episodes + 2
    cfg = tiny_config(run_dir=str(tmp_path / "run"), dataset="breakout-tiny", steps=6, warmup_steps=1, num_bins=256,
                      context_len=4, batch_size=4, embed_dim=32, rtg_scale=1.0, targets=(2.0,))
    train(cfg)
    run = load_run(tmp_path / "run", "cpu")
    envs = make_eval_envs(run.spec, 2, max_episode_steps=30)
    try:
        [report] = evaluate(run.model, run.spec, config=run.config, episodes=2, envs=envs, progress=False)
    finally:
        envs.close()
    assert report["episodes"] == 2 and max(report["lengths"]) <= 30
    expected = 100 * (np.asarray(report["returns"]) - 1.7) / (30.5 - 1.7)
    assert report["score_mean"] == pytest.approx(expected.mean())
