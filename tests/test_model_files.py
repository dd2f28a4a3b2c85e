"""Self-contained run directories: model.safetensors (weights and what acting needs, hashed),
the README.md model card, and `seqrl.load`."""

from __future__ import annotations

import json
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqrl
from seqrl.errors import CheckpointError
from seqrl.evaluation.evaluate import evaluate_run
from seqrl.evaluation.rollout import evaluate
from seqrl.loading import load_run
from seqrl.model_files import MODEL_CARD, MODEL_FILE, read_model_file
from seqrl.train import train
from tests.helpers.dt import make_dataset, tiny_config
from tests.helpers.envs import ENV_ID, register, trained
from tests.helpers.tt import tiny_tt_config


@pytest.fixture(autouse=True)
def _env():
    register()


def test_a_run_holds_its_model_as_safetensors_with_everything_acting_needs(tmp_path):
    result = trained(tmp_path, model="tokenized-spread")
    header = json.loads(_safetensors_header(result.run_dir / MODEL_FILE)["__metadata__"]["seqrl"])
    assert header["family"] == "dt" and header["step"] == 4 and header["config"]["model"] == "tokenized-spread"
    for key in ("state_mean", "state_std", "action_low", "action_high", "targets", "rtg_scale", "obs_dim", "act_dim"):
        assert key in header["spec"], key
    assert header["artefacts_key"] == "tokenizer" and len(header["artefacts"]["edges"]) == result.spec.act_dim  # bins
    # Only the model file, in a directory of its own: the same model, acting the same.
    alone = tmp_path / "shared"
    alone.mkdir()
    shutil.copy(result.run_dir / MODEL_FILE, alone / MODEL_FILE)
    from_file, from_checkpoint = load_run(alone), load_run(result.run_dir)
    assert from_file.config == from_checkpoint.config and from_file.spec == from_checkpoint.spec
    for key, value in from_checkpoint.model.state_dict().items():
        assert torch.equal(from_file.model.state_dict()[key], value), key
    kw = dict(episodes=3, seed=5, targets=(-1.0,), progress=False)
    assert (evaluate(from_file.model, from_file.spec, config=from_file.config, **kw)
            == evaluate(from_checkpoint.model, from_checkpoint.spec, config=from_checkpoint.config, **kw))


def test_a_changed_truncated_or_missing_model_file_is_refused_at_load(tmp_path):
    result = trained(tmp_path)
    alone = tmp_path / "alone"
    alone.mkdir()
    path = alone / MODEL_FILE
    shutil.copy(result.run_dir / MODEL_FILE, path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # one byte of the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the SHA-256 they were written with"):
        load_run(alone)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError, match="corrupt or not a safetensors file"):
        read_model_file(alone)
    path.unlink()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_run(alone)


def test_other_families_and_a_multi_task_run_write_loadable_model_files(tmp_path):
    data = make_dataset(obs_dim=3, act_dim=2)
    tt = train(tiny_tt_config(tmp_path, steps=2), dataset=data)
    shutil.copy(tt.run_dir / MODEL_FILE, tmp_path / "tt.safetensors")
    run = load_run(tmp_path / "tt.safetensors")
    assert run.family == "tt" and run.artefacts is not None
    for key, value in tt.model.state_dict().items():
        assert torch.equal(run.model.state_dict()[key], value.cpu()), key


def test_the_model_card_says_what_the_run_is_and_its_scores_after_eval(tmp_path):
    result = trained(tmp_path)
    card = (result.run_dir / MODEL_CARD).read_text()
    assert "family `dt`, model `continuous`" in card and f"`{result.config.dataset}`" in card
    assert "Not evaluated yet" in card
    assert "seqrl.load(" in card and "torch " in card
    assert f"torch kernels {torch.backends.cpu.get_cpu_capability()}" in card  # which CPU kernels made it
    evaluate_run(result.run_dir, episodes=2, device="cpu")
    card = (result.run_dir / MODEL_CARD).read_text()
    assert "| target | return | normalized score | length |" in card and "episode i seeded 10000 + i" in card


def test_seqrl_load_acts_episode_by_episode_as_the_evaluation_loop_does(tmp_path):
    result = trained(tmp_path, steps=6, checkpoint_every=6)
    policy = seqrl.load(result.run_dir)
    assert policy.target == result.spec.targets[0]
    reference = evaluate(result.model, result.spec, config=result.config, episodes=1, seed=7,
                         targets=(policy.target,), progress=False)[0]
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=7)
    policy.reset()
    total, done = 0.0, False
    while not done:
        action = policy.act(obs)
        assert action.shape == (result.spec.act_dim,)
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(reward)
        total += reward
        done = terminated or truncated
    assert total == pytest.approx(reference["return_mean"], rel=1e-6)
    with pytest.raises(CheckpointError, match="expected observations of shape"):
        policy.act(np.zeros(result.spec.obs_dim + 1, np.float32))
    with pytest.raises(CheckpointError, match="observe\\(\\) follows act\\(\\)"):
        policy.observe(0.0)


def _safetensors_header(path) -> dict:
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + size])


def test_config_json_holds_what_acting_needs_beside_the_config(tmp_path):
    from seqrl.families import config_from_dict

    result = trained(tmp_path, model="tokenized")
    saved = json.loads((result.run_dir / "config.json").read_text())
    acting = saved["acting"]
    assert acting["family"] == "dt" and acting["artefacts_key"] == "tokenizer"
    assert acting["spec"]["state_mean"] == pytest.approx(list(result.spec.state_mean))
    assert acting["spec"]["targets"] == list(result.spec.targets) and acting["spec"]["act_dim"] == result.spec.act_dim
    assert len(acting["artefacts"]["edges"]) == result.spec.act_dim  # the action tokenizer's bins, per feature
    assert config_from_dict(saved) == result.config  # the record is not a config field


def test_seqrl_load_acts_with_action_indices_on_a_discrete_run(tmp_path):
    """A Discrete(n) run: the policy hands back an index, as the evaluation loop gives its envs one."""
    from tests.helpers.discrete import ENV_ID as CARTPOLE, MAX_STEPS, cartpole_dataset

    result = train(tiny_config(tmp_path, run_dir=str(tmp_path / "cartpole"), num_bins=256, targets=(40.0,), rtg_scale=0.05, steps=20,
                               checkpoint_every=20), dataset=cartpole_dataset())
    reference = evaluate(result.model, result.spec, config=result.config, episodes=1, seed=4, progress=False)[0]
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(result.run_dir / MODEL_FILE, alone / MODEL_FILE)
    policy = seqrl.load(alone)
    env = gym.make(CARTPOLE, max_episode_steps=MAX_STEPS)
    obs, _ = env.reset(seed=4)
    policy.reset()
    total, done = 0.0, False
    while not done:
        action = policy.act(obs)
        assert isinstance(action, np.integer) and 0 <= action < 2
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe(reward)
        total += reward
        done = terminated or truncated
    assert total == reference["return_mean"]
