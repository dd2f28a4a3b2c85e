"""`seqrl finetune` between image and vector observations: the trunk is shape-independent, so
rebuilding the state branch (a Nature-DQN encoder for frames, a linear map for vectors) is the
whole transfer; the kept branches and the trunk travel unchanged.

Both datasets are the same band task (tests/helpers/images.py): as (4, 36, 36) frames, and as the
lit band's one-hot vector, with the same Discrete(3) actions, so `--rebuild state` can keep the
action codec, the return and the timestep embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqrl.cli import main
from seqrl.data.sources import dataset_id_for, save_dataset
from seqrl.data.trajectories import TrajectoryDataset, discrete_action_space
from seqrl.loading import load_run
from seqrl.models.encoders import NatureEncoder
from seqrl.train import train
from seqrl.transfer import finetune
from tests.helpers.dt import tiny_config
from tests.helpers.images import ACTIONS, band_of, image_dataset, image_episodes

KEPT_BY_REBUILD_STATE = ("trunk.", "embed_ln.", "embed_return.", "embed_timestep.", "codec.")


def vector_dataset(episodes: int = 8) -> TrajectoryDataset:
    """The band task's episodes with each frame stack replaced by its lit band, one-hot."""
    eps = [dict(ep, observations=np.eye(ACTIONS, dtype=np.float32)[[band_of(s) for s in ep["observations"]]])
           for ep in image_episodes(episodes)]
    return TrajectoryDataset.from_episodes(eps, {"name": "bandvector", "env_id": None,
                                                 "action_space": discrete_action_space(ACTIONS)})


def source_run(tmp_path, name, dataset, data):
    cfg = tiny_config(run_dir=str(tmp_path / name), dataset=dataset, steps=4, context_len=4, batch_size=4,
                      num_bins=256, targets=(7.0,), rtg_scale=0.1, warmup_steps=1, embed_dim=16, n_layers=1,
                      n_heads=1, checkpoint_every=4)
    return train(cfg, dataset=data)


def params(model, prefixes=KEPT_BY_REBUILD_STATE):
    return {k: v.detach().clone() for k, v in model.named_parameters() if k.startswith(prefixes)}


def test_an_image_run_finetunes_on_vector_observations_with_the_cli(tmp_path, minari_root):
    save_dataset(image_dataset(episodes=8), dataset_id_for("bandimage"), "seqrl-test/BandImage-v0")
    save_dataset(vector_dataset(), dataset_id_for("bandvector"), "seqrl-test/BandVector-v0")
    source = source_run(tmp_path, "image", "bandimage", None)
    assert isinstance(source.model.embed_state, NatureEncoder)
    main(["finetune", "--from", str(tmp_path / "image"), "--dataset", "bandvector", "--steps", "3",
          "--rebuild", "state", "--run-dir", str(tmp_path / "ft"), "--no-progress"])
    tuned = load_run(tmp_path / "ft", "cpu")
    assert isinstance(tuned.model.embed_state, torch.nn.Linear) and tuned.model.embed_state.in_features == ACTIONS
    assert tuned.spec.obs_shape is None and tuned.spec.obs_dim == ACTIONS
    # --train embeddings (the default): everything kept is the source's, bit for bit.
    kept = params(source.model)
    assert kept and all(torch.equal(params(tuned.model)[k], v) for k, v in kept.items())
    record = json.loads((tmp_path / "ft" / "metadata.json").read_text())["finetune"]
    assert record["rebuilt"] == ["state"] and "codec" in record["transferred"]


@pytest.mark.parametrize("rebuild", [("state",), ("state", "return", "timestep", "action")])
def test_a_vector_run_finetunes_on_frames_through_a_fresh_conv_encoder(tmp_path, rebuild):
    source = source_run(tmp_path, "vector", "bandvector", vector_dataset())
    assert isinstance(source.model.embed_state, torch.nn.Linear)
    tuned = finetune(tmp_path / "vector", "bandimage", data=image_dataset(episodes=8), steps=3, train_mode="all",
                     rebuild=rebuild, run_dir=tmp_path / "ft", progress=False)
    assert isinstance(tuned.model.embed_state, NatureEncoder)
    assert tuned.model.embed_state.project[0].out_features == 16  # the source trunk's width
    assert tuned.spec.obs_shape == (4, 36, 36) and tuned.step == 3
    losses = [json.loads(line)["loss"] for line in (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line]
    assert losses and np.isfinite(losses).all()
    run = load_run(tmp_path / "ft", "cpu")
    assert isinstance(run.model.embed_state, NatureEncoder) and run.spec.image
