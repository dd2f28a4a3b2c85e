"""Codec details that mutation testing showed no test pinned: the action-index embedding of
spread models, weight decay of the categorical head's 2-D bias, initial scales, and the sampling
temperature reaching the head from `act`."""

from __future__ import annotations

import pytest
import torch

from .test_dt import batch_of, build


@pytest.mark.parametrize("model", ["tokenized", "tokenized-spread"])
def test_action_index_embedding_exists_exactly_when_asked_for(tiny_dataset, model):
    with_index, _, _ = build(tiny_dataset, model=model, token_offsets=False, action_index_embedding=True)
    without, _, _ = build(tiny_dataset, model=model, token_offsets=False)
    index = with_index.codec.embedding.index
    assert isinstance(index, torch.nn.Embedding) and index.weight.shape == (3, 32)
    assert without.codec.embedding.index is None
    assert "codec.embedding.index.weight" in dict(with_index.named_parameters())


def test_spread_index_embedding_tells_features_apart(tiny_dataset):
    """Same token on every feature: with the index embedding the spread action tokens differ."""
    model, _, _ = build(tiny_dataset, model="tokenized-spread", token_offsets=False, action_index_embedding=True)
    tokens = torch.zeros(1, 1, 3, dtype=torch.long)
    x = model.codec.embedding(None, tokens)  # (1, 1, 3, D)
    assert not torch.allclose(x[0, 0, 0], x[0, 0, 1]) and not torch.allclose(x[0, 0, 1], x[0, 0, 2])


@pytest.mark.parametrize("model", ["tokenized", "tokenized-spread", "continuous"])
def test_categorical_heads_bias_is_not_decayed(tiny_dataset, model):
    net, _, _ = build(tiny_dataset, model=model, head="categorical")
    decay, no_decay = net.param_groups(0.1)
    decayed = {id(p) for p in decay["params"]}
    assert net.codec.head.bias.dim() == 2  # (classifiers, bins): 2-D, but a bias
    assert id(net.codec.head.bias) not in decayed
    assert id(net.codec.head.weight) in decayed


@pytest.mark.parametrize("head", ["regression", "categorical"])
def test_head_weights_start_at_gpt2_scale(tiny_dataset, head):
    net, _, _ = build(tiny_dataset, model="tokenized", head=head)
    w = net.codec.head.weight
    assert 0.015 < w.std().item() < 0.025  # N(0, 0.02)
    assert torch.equal(net.codec.head.bias, torch.zeros_like(net.codec.head.bias))


def test_act_samples_with_the_configured_temperature(tiny_dataset):
    cold, cfg, spec = build(tiny_dataset, model="tokenized", head="categorical", decode="sample", temperature=0.05)
    warm, _, _ = build(tiny_dataset, model="tokenized", head="categorical", decode="sample", temperature=1.0)
    warm.load_state_dict(cold.state_dict())  # the same weights; only the temperature differs
    cold.eval(), warm.eval()
    batch = batch_of(tiny_dataset, cfg, spec, size=64, seed=1)
    args = (batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
    hidden, _ = cold(*args, step=batch.mask.sum(1) - 1)
    logits = cold.codec.head(hidden)[:, 0]  # (B, d, bins)
    expected = cold.codec.head.decode(logits, mode="sample", temperature=0.05,
                                      generator=torch.Generator().manual_seed(5))
    got = cold.act(*args, lengths=batch.mask.sum(1), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, expected)
    hot = warm.act(*args, lengths=batch.mask.sum(1), generator=torch.Generator().manual_seed(5))
    assert not torch.equal(hot, got)
