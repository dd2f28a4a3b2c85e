"""Image observations through the one loop (issue 28, section 2): the Nature-DQN encoder is chosen
from the observation space, the DT (discrete actions, the Atari case) and BC train on uint8 frame
stacks, evaluate in vector envs, save and load through seqrl.load; the DT takes an LM-initialised
trunk; the families that cannot read images refuse them by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import seqrl
from seqrl.errors import ConfigError
from seqrl.evaluation.rollout import evaluate
from seqrl.families.bc import BCConfig
from seqrl.loading import load_run
from seqrl.models.encoders import NatureEncoder
from seqrl.train import train
from tests.helpers.dt import tiny_config
from tests.helpers.images import ACTIONS, SIDE, image_dataset, make_env, register

RANDOM_RETURN = 2.5  # a third of the 6-9 steps pay 1 under random actions


@pytest.fixture(scope="module")
def data():
    register()
    return image_dataset(episodes=16)


def dt_config(tmp_path, name="dt", **overrides):
    base = dict(dataset="bandimage", steps=80, context_len=4, batch_size=16, num_bins=256, targets=(7.0,),
                rtg_scale=0.1, learning_rate=1e-3, warmup_steps=5, log_every=20, checkpoint_every=80)
    return tiny_config(run_dir=str(tmp_path / name), **{**base, **overrides})


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if '"loss"' in line]


def test_the_encoder_is_the_nature_dqn_convolutions_on_frames_scaled_by_255():
    encoder = NatureEncoder((4, 84, 84), 128)
    convs = [m for m in encoder.conv if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (8, 8), (4, 4)), (64, (4, 4), (2, 2)),
                                                                         (64, (3, 3), (1, 1))]
    assert encoder.flat == 3136 and isinstance(encoder.project[1], torch.nn.Tanh)
    frames = torch.randint(0, 256, (2, 3, 4, 84, 84), dtype=torch.uint8)
    out = encoder(frames)
    assert out.shape == (2, 3, 128)
    expected = encoder.project(encoder.conv(frames.reshape(6, 4, 84, 84).float() / 255.0)).reshape(2, 3, 128)
    torch.testing.assert_close(out, expected)


def test_the_dt_learns_an_image_task_evaluates_in_vector_envs_and_acts_through_seqrl_load(tmp_path, data):
    result = train(dt_config(tmp_path), dataset=data)
    assert isinstance(result.model.embed_state, NatureEncoder)
    curve = losses(tmp_path / "dt")
    assert curve[-1] < 0.6 * curve[0]
    # The acting record says the observations are images, not normalised.
    acting = json.loads((tmp_path / "dt" / "config.json").read_text())["acting"]["spec"]
    assert acting["obs_shape"] == [4, SIDE, SIDE] and acting["state_mean"] == [] and acting["state_std"] == []
    run = load_run(tmp_path / "dt", "cpu")
    assert run.spec.image and run.spec.obs_shape == (4, SIDE, SIDE)
    [report] = evaluate(run.model, run.spec, config=run.config, episodes=8, progress=False)
    assert report["return_mean"] > 2 * RANDOM_RETURN  # it reads the band off the frame
    # seqrl.load acts on the env's uint8 stacks as the evaluation loop does.
    policy = seqrl.load(tmp_path / "dt")
    env = make_env()
    obs, _ = env.reset(seed=0)
    policy.reset(1)
    total, done = 0.0, False
    while not done:
        action = policy.act(obs)
        assert 0 <= int(action) < ACTIONS
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(reward)
        total += reward
        done = terminated or truncated
    assert total > RANDOM_RETURN
    with pytest.raises(seqrl.errors.CheckpointError, match="expected uint8 image observations"):
        policy.act(obs.astype(np.float32))


def test_bc_learns_an_image_task(tmp_path, data):
    cfg = BCConfig(dataset="bandimage", steps=60, batch_size=16, learning_rate=1e-3, warmup_steps=5, log_every=20,
                   hidden_dim=32, history_len=2, progress=False, precision="fp32", run_dir=str(tmp_path / "bc"),
                   checkpoint_every=60)
    result = train(cfg, dataset=data)
    assert isinstance(result.model.encoder, NatureEncoder)
    run = load_run(tmp_path / "bc", "cpu")
    [report] = evaluate(run.model, run.spec, config=run.config, episodes=8, progress=False)
    assert report["return_mean"] > 2 * RANDOM_RETURN


def test_an_lm_initialised_trunk_reads_frames_through_the_conv_encoder(tmp_path, data):
    """--init run:RUN (a trunk of another run) under the conv encoder, as the LM-init paper's Atari runs."""
    source = train(dt_config(tmp_path, "source", steps=2, warmup_steps=1, embed_dim=16, n_layers=1, n_heads=1),
                   dataset=data)
    # The trunk frozen: after training it is still exactly the source's, while the encoder learned.
    result = train(dt_config(tmp_path, "init", steps=20, log_every=5, embed_dim=16, n_layers=1, n_heads=1,
                             init=f"run:{tmp_path / 'source'}", freeze_trunk=True), dataset=data)
    assert isinstance(result.model.embed_state, NatureEncoder)
    metadata = json.loads((tmp_path / "init" / "metadata.json").read_text())
    assert metadata["init"]["kind"] == "run"
    for key, value in source.model.trunk.state_dict().items():
        assert torch.equal(result.model.trunk.state_dict()[key], value), key
    curve = losses(tmp_path / "init")
    assert curve[-1] < curve[0]


def test_a_gpt2_trunk_with_the_conv_encoder(tmp_path, data, tiny_gpt2):
    pytest.importorskip("transformers")
    result = train(dt_config(tmp_path, "gpt2", steps=6, init=f"gpt2:{tiny_gpt2}"), dataset=data)
    assert isinstance(result.model.embed_state, NatureEncoder)
    assert result.model.embed_state.project[0].out_features == 16  # the GPT-2's width
    assert np.isfinite(losses(tmp_path / "gpt2")).all()


@pytest.mark.parametrize("family, message", [
    ("tt", "the Trajectory Transformer tokenizes every observation dimension"),
    ("dynamics", "the dynamics ensemble predicts the next observation"),
])
def test_families_that_cannot_read_images_refuse_them_by_name(tmp_path, data, family, message):
    from seqrl.families import get_family

    cfg = get_family(family).config_class(dataset="bandimage", run_dir=str(tmp_path / family), progress=False)
    with pytest.raises(ConfigError, match=f"bandimage has image observations \\(4, 36, 36\\): {message}"):
        train(cfg, dataset=data)
    assert not (tmp_path / family / "config.json").exists()


def test_export_refuses_an_image_run_by_name(tmp_path, data):
    from seqrl.export import export_run

    train(dt_config(tmp_path, steps=1), dataset=data)
    with pytest.raises(ConfigError, match="trained on image observations"):
        export_run(tmp_path / "dt", tmp_path / "out", format="torchscript")


def test_an_env_of_other_observations_is_refused_by_name(tmp_path, data):
    train(dt_config(tmp_path, steps=1), dataset=data)
    run = load_run(tmp_path / "dt", "cpu")
    with pytest.raises(ConfigError, match=r"CartPole-v1 has observations Box\(4,\).*uint8 images \(4, 36, 36\)"):
        evaluate(run.model, run.spec, config=run.config, episodes=2, env_id="CartPole-v1", progress=False)


def test_a_trunk_pretrained_on_text_lm_run_with_the_conv_encoder(tmp_path, data, corpus_dir):
    """--init lm:RUN_DIR (a `seqrl pretrain-lm` run) under the conv encoder, with the LM-init paper's
    alignment and co-training objectives: the encoder projects to the LM's width, the trunk starts
    as the LM's blocks, and every loss term is finite."""
    from seqrl.cli import main
    from tests.helpers.lm import LM_TINY

    lm_dir = tmp_path / "lm"
    main(["pretrain-lm", "--dataset", str(corpus_dir), "--steps", "2", "--run-dir", str(lm_dir), "--dropout", "0",
          *LM_TINY])
    lm = load_run(lm_dir, "cpu").model
    result = train(dt_config(tmp_path, "lm-init", steps=4, warmup_steps=1, log_every=1, init=f"lm:{lm_dir}", freeze_trunk=True,
                             align_weight=0.1, align_clusters=5, cotrain_weight=0.1, cotrain_context=8), dataset=data)
    assert isinstance(result.model.embed_state, NatureEncoder)
    assert result.model.embed_state.project[0].out_features == 16  # the LM's width, not --embed-dim
    metadata = json.loads((tmp_path / "lm-init" / "metadata.json").read_text())
    assert metadata["init"]["kind"] == "lm"
    # The frozen trunk is still exactly the LM's blocks after training on frames.
    lm_blocks = {k.removeprefix("trunk."): v for k, v in lm.state_dict().items() if k.startswith("trunk.")}
    trunk = result.model.trunk.state_dict()
    assert lm_blocks and all(torch.equal(trunk[k], v) for k, v in lm_blocks.items())
    rows = [json.loads(line) for line in (tmp_path / "lm-init" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss" in r]
    assert len(logged) == 4
    for key in ("loss", "loss/action", "loss/align", "loss/cotrain"):  # both objectives ran on every step
        assert all(np.isfinite(r[key]) for r in logged), key
