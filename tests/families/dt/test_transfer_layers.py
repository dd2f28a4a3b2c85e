"""`finetune --train embeddings`, layer by layer: which parameters train and which stay frozen.

The rule (seqrl/transfer.py's docstring): the transformer trunk (every causal block and the
final LayerNorm) and `embed_ln` come from the source run and are frozen; the state, return-to-go
and timestep embeddings and the whole action codec (action embedding and head) are built fresh
for the new task and trained. The lists below are written out by hand from that rule, for the
2-layer tiny model, and both are checked: names, requires_grad, what the optimizer holds, and
what training did to each tensor.
"""

from __future__ import annotations

import json

import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.train import train
from seqrl.transfer import finetune

from tests.helpers.dt import make_dataset, tiny_config

FROZEN = {"embed_ln.weight", "embed_ln.bias", "trunk.ln_f.weight", "trunk.ln_f.bias"} | {
    f"trunk.blocks.{i}.{layer}.{kind}"
    for i in range(2)  # tiny_config's n_layers
    for layer in ("ln_1", "attn.qkv", "attn.proj", "ln_2", "mlp.fc", "mlp.proj")
    for kind in ("weight", "bias")
}
TASK_EMBEDDINGS = {
    "embed_return.weight", "embed_return.bias", "embed_state.weight", "embed_state.bias", "embed_timestep.weight",
}
HEAD = {"codec.head.weight", "codec.head.bias"}  # regression or categorical: both a weight and a bias
TRAINABLE = {
    "continuous": TASK_EMBEDDINGS | HEAD | {"codec.embedding.linear.weight", "codec.embedding.linear.bias"},
    "tokenized": TASK_EMBEDDINGS | HEAD | {"codec.embedding.token.weight"},
    "tokenized-spread": TASK_EMBEDDINGS | HEAD | {"codec.embedding.token.weight"},
    "continuous-spread": TASK_EMBEDDINGS | HEAD | {
        "codec.embedding.value.weight", "codec.embedding.value.bias", "codec.embedding.feature.weight",
    },
}
TARGET = dict(obs_dim=7, act_dim=2, name="other", seed=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("source")
    return train(tiny_config(tmp, run_dir=str(tmp / "source"), steps=4, model="tokenized"),
                 dataset=make_dataset(obs_dim=4, act_dim=3))


@pytest.mark.parametrize("model", sorted(TRAINABLE))
def test_embeddings_mode_trains_exactly_the_task_layers(tmp_path, source, model):
    data = make_dataset(**TARGET)
    kw = dict(train_mode="embeddings", data=data, model=model, progress=False, warmup_steps=1)
    one = finetune(source.run_dir, "other", steps=1, run_dir=tmp_path / "one", **kw)
    four = finetune(source.run_dir, "other", steps=4, run_dir=tmp_path / "four", **kw)

    names = {n for n, _ in four.model.named_parameters()}
    trainable = {n for n, p in four.model.named_parameters() if p.requires_grad}
    frozen = names - trainable
    assert trainable == TRAINABLE[model], f"trainable: extra {trainable - TRAINABLE[model]}, missing {TRAINABLE[model] - trainable}"
    assert frozen == FROZEN, f"frozen: extra {frozen - FROZEN}, missing {FROZEN - frozen}"

    pretrained = load_checkpoint(source.run_dir)["model"]
    after_one, after_four = load_checkpoint(one.run_dir), load_checkpoint(four.run_dir)
    for name in sorted(FROZEN):
        # Bit-identical to the source run's weights, at every step of fine-tuning.
        assert torch.equal(after_one["model"][name], pretrained[name]), name
        assert torch.equal(after_four["model"][name], pretrained[name]), name
    for name in sorted(TRAINABLE[model]):
        # Same start (same seed) and then moved by the three further updates.
        assert not torch.equal(after_one["model"][name], after_four["model"][name]), f"{name} did not train"
    # The optimizer holds the trainable tensors only (one AdamW state per tensor it stepped).
    assert len(after_four["optimizer"]["state"]) == len(TRAINABLE[model])
    meta = json.loads((four.run_dir / "metadata.json").read_text())
    params = dict(four.model.named_parameters())
    assert meta["trainable_parameters"] == sum(params[n].numel() for n in TRAINABLE[model])
    assert meta["parameters"] == sum(p.numel() for p in params.values())


def test_fresh_task_layers_have_the_new_tasks_shapes(tmp_path, source):
    result = finetune(source.run_dir, "other", train_mode="embeddings", steps=1, run_dir=tmp_path / "ft",
                      data=make_dataset(**TARGET), model="continuous", progress=False)
    params = dict(result.model.named_parameters())
    assert params["embed_state.weight"].shape == (32, 7)  # the new obs_dim
    assert params["codec.embedding.linear.weight"].shape == (32, 2)  # the new act_dim
    assert params["codec.head.weight"].shape == (2, 32)
    for name in FROZEN:
        assert params[name].shape == dict(source.model.named_parameters())[name].shape


def test_all_mode_trains_every_layer(tmp_path, source):
    data = make_dataset(**TARGET)
    kw = dict(train_mode="all", data=data, model="tokenized-spread", progress=False, warmup_steps=1)
    one = finetune(source.run_dir, "other", steps=1, run_dir=tmp_path / "one", **kw)
    three = finetune(source.run_dir, "other", steps=3, run_dir=tmp_path / "three", **kw)
    assert all(p.requires_grad for p in three.model.parameters())
    a, b = load_checkpoint(one.run_dir)["model"], load_checkpoint(three.run_dir)["model"]
    for name in sorted(FROZEN | TRAINABLE["tokenized-spread"]):
        assert not torch.equal(a[name], b[name]), f"{name} did not train"
    assert len(load_checkpoint(three.run_dir)["optimizer"]["state"]) == len(FROZEN | TRAINABLE["tokenized-spread"])
