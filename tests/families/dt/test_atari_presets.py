"""The DT paper's Atari settings (kzl/decision-transformer's atari/run.sh and trainer_atari.py):
an Atari dataset's run gets return scale 1, context 30 (50 for Pong) and the game's target
return, told from the env the dataset records, whatever its name; a flag given wins."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqrl.data.sources import dataset_env, dataset_id_for, save_dataset
from seqrl.families.dt.config import TrainConfig, resolve_presets
from tests.helpers.images import image_dataset


def atari_like(name: str, game: str):
    """A small image dataset that records seqrl/Atari-v0 and `game`, saved in Minari's format
    (what `seqrl collect --env seqrl/Atari-v0 --env-kwargs game=...` records; the frames do not matter here)."""
    data = image_dataset(episodes=2, name=name)
    data.metadata.update(env_kwargs={"game": game})
    save_dataset(data, dataset_id_for(name), "seqrl/Atari-v0")


@pytest.mark.parametrize("game, context, targets", [("Breakout", 30, (90.0,)), ("Qbert", 30, (14000.0,)),
                                                    ("Pong", 50, (20.0,)), ("Seaquest", 30, (1150.0,))])
def test_an_atari_dataset_gets_the_dt_papers_settings_for_its_game(minari_root, game, context, targets):
    atari_like("frames", game)  # a name that says nothing of the game: the metadata does
    cfg = resolve_presets(TrainConfig(dataset="frames"))
    assert (cfg.rtg_scale, cfg.context_len, cfg.targets) == (1.0, context, targets)


def test_another_atari_game_gets_the_context_and_scale_and_the_datasets_own_targets(minari_root):
    atari_like("asterix-data", "Asterix")
    cfg = resolve_presets(TrainConfig(dataset="asterix-data"))
    assert (cfg.rtg_scale, cfg.context_len, cfg.targets) == (1.0, 30, None)  # None: best return and half


def test_flags_given_win_over_the_atari_preset_even_at_the_generic_defaults(minari_root):
    atari_like("pong-frames", "Pong")
    cfg = resolve_presets(TrainConfig(dataset="pong-frames", context_len=20, rtg_scale=0.001, targets=(5.0,)))
    assert (cfg.rtg_scale, cfg.context_len, cfg.targets) == (0.001, 20, (5.0,))


def test_a_dqn_replay_path_names_its_game_without_reading_a_file():
    assert dataset_env("dqn-replay:/nowhere/Pong/1/replay_logs:49") == {
        "env_id": "seqrl/Atari-v0", "env_kwargs": {"game": "Pong"}}
    cfg = resolve_presets(TrainConfig(dataset="dqn-replay:/nowhere/Pong/1/replay_logs:49"))
    assert (cfg.rtg_scale, cfg.context_len, cfg.targets) == (1.0, 50, (20.0,))


def test_a_vector_dataset_keeps_the_generic_defaults(minari_root, make_dataset):
    save_dataset(make_dataset(), dataset_id_for("toy-medium"), "LunarLanderContinuous-v3")
    assert dataset_env("toy-medium") == {"env_id": "LunarLanderContinuous-v3", "env_kwargs": {}}
    cfg = resolve_presets(TrainConfig(dataset="toy-medium"))
    assert (cfg.rtg_scale, cfg.context_len, cfg.targets) == (0.001, 20, None)
    # A name that matches nothing on disk: the name's task decides, as before.
    assert resolve_presets(TrainConfig(dataset="hopper-medium")).context_len == 20
    assert dataset_env("no-such-dataset") is None


def test_an_atari_run_records_the_presets_in_its_config(tmp_path, minari_root):
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from seqrl.collect.recipes import collect_command
    from seqrl.train import train
    from tests.helpers.dt import tiny_config

    collect_command(env="seqrl/Atari-v0", env_kwargs=("game=Breakout",), policy=("random",), transitions=120,
                    n_envs=1, name="random-play")
    cfg = tiny_config(run_dir=str(tmp_path / "run"), dataset="random-play", steps=1, warmup_steps=1, batch_size=2,
                      embed_dim=16, n_layers=1, n_heads=1, num_bins=256, context_len=None, rtg_scale=None, targets=None,
                      checkpoint_every=1)
    result = train(cfg)
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (written["rtg_scale"], written["context_len"], written["targets"]) == (1.0, 30, [90.0])
    assert result.spec.rtg_scale == 1.0 and tuple(result.spec.targets) == (90.0,)
    assert np.isfinite(result.step)
