"""The Decision Transformer with each action representation: causality, masking, gradients,
fitting, and autoregressive decoding of spread actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrl.loading import build_model
from seqrl.data.sampler import ContextSampler
from seqrl.data.tokenizer import ActionTokenizer
from seqrl.models.gpt import GPT
from seqrl.models.spec import DataSpec

from tests.helpers.dt import VARIANT_CASES, tiny_config


def build(dataset, **overrides):
    cfg = tiny_config(**overrides)
    spec = DataSpec.from_dataset(dataset, rtg_scale=cfg.rtg_scale, targets=cfg.targets)
    tokenizer = None
    if cfg.uses_tokenizer:
        tokenizer = ActionTokenizer.fit(dataset.actions, cfg.num_bins, strategy=cfg.binning,
                                        shared_range=not cfg.token_offsets, low=-np.ones(3), high=np.ones(3))
    torch.manual_seed(0)
    return build_model(cfg, spec, tokenizer), cfg, spec


def batch_of(dataset, cfg, spec, size=8, seed=0):
    sampler = ContextSampler(dataset, cfg.context_len, rtg_scale=spec.rtg_scale)
    return sampler.sample(size, np.random.default_rng(seed)).to_torch()


def all_hidden(model, batch):
    """Hidden states at every action-predicting position, (B, T, k, D)."""
    hidden, _ = model(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
    return hidden


@pytest.mark.parametrize("overrides", VARIANT_CASES)
def test_later_tokens_do_not_change_earlier_outputs(tiny_dataset, overrides):
    model, cfg, spec = build(tiny_dataset, **overrides)
    model.eval()
    batch = batch_of(tiny_dataset, cfg, spec)
    base = all_hidden(model, batch)
    k = model.codec.tokens_per_step
    m = 2 + k
    T = cfg.context_len
    # Prediction slot (t, i) sits at flat token index t*m + 1 + i.
    slot_index = (torch.arange(T)[:, None] * m + 1 + torch.arange(k)[None, :])  # (T, k)
    t = 2
    perturbations = {"rtg": t * m, "state": t * m + 1}
    for j in range(3):  # each action feature of step t
        perturbations[f"action{j}"] = t * m + 2 + (j if k > 1 else 0)
    for what, token_index in perturbations.items():
        rtg, states, actions = batch.returns_to_go.clone(), batch.states.clone(), batch.actions.clone()
        if what == "rtg":
            rtg[:, t] += 5.0
        elif what == "state":
            states[:, t] += 3.0
        else:
            j = int(what[-1])
            actions[:, t, j] = -actions[:, t, j] + 0.5  # moves it to another bin as well
        out, _ = model(rtg, states, actions, batch.timesteps)
        earlier = slot_index < token_index
        assert torch.equal(out[:, earlier], base[:, earlier]), f"{what} at step {t} leaked into earlier outputs"
        assert not torch.allclose(out[:, ~earlier], base[:, ~earlier]), f"{what} had no effect at all"


@pytest.mark.parametrize("overrides", VARIANT_CASES)
def test_padded_positions_contribute_no_loss(tiny_dataset, overrides):
    model, cfg, spec = build(tiny_dataset, **overrides)
    model.eval()
    batch = batch_of(tiny_dataset, cfg, spec, size=16, seed=3)
    assert (~batch.mask).any(), "the batch should contain padding"
    loss = model.loss(batch)
    pad = ~batch.mask
    batch.actions[pad] = torch.rand_like(batch.actions[pad]) * 2 - 1
    batch.states[pad] = 7.0
    batch.returns_to_go[pad] = -3.0
    assert torch.equal(model.loss(batch), loss)


@pytest.mark.parametrize("overrides", VARIANT_CASES)
def test_every_parameter_receives_gradient(tiny_dataset, overrides):
    model, cfg, spec = build(tiny_dataset, **overrides)
    batch = batch_of(tiny_dataset, cfg, spec, size=16)
    model.loss(batch).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"


@pytest.mark.parametrize("overrides", VARIANT_CASES)
def test_overfits_a_single_batch(tiny_dataset, overrides):
    model, cfg, spec = build(tiny_dataset, dropout=0.0, **overrides)
    batch = batch_of(tiny_dataset, cfg, spec, size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = model.loss(batch)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first, f"loss went from {first:.4f} only to {loss.item():.4f}"


@pytest.mark.parametrize("overrides", VARIANT_CASES)
def test_act_matches_teacher_forced_outputs(tiny_dataset, overrides):
    """Generating the action (feature by feature for spread) and then feeding it back as a
    teacher-forced input must give the same per-feature predictions."""
    model, cfg, spec = build(tiny_dataset, **overrides)
    model.eval()
    batch = batch_of(tiny_dataset, cfg, spec, size=6, seed=5)
    lengths = batch.mask.sum(1)  # right-padded rows of different lengths
    action = model.act(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, lengths=lengths)
    assert action.shape == (6, 3)
    assert (action >= -1).all() and (action <= 1).all()
    rows, last = torch.arange(6), lengths - 1
    forced = batch.actions.clone()
    forced[rows, last] = action
    hidden, _ = model(batch.returns_to_go, batch.states, forced, batch.timesteps)
    prediction = model.codec.head(hidden[rows, last].unsqueeze(1))
    teacher = model.codec.head.decode(prediction, mode=cfg.decode)[:, 0]
    torch.testing.assert_close(teacher, action, rtol=0, atol=1e-6)


def test_act_ignores_padding_and_is_batch_independent(tiny_dataset):
    model, cfg, spec = build(tiny_dataset, model="tokenized-spread")
    model.eval()
    batch = batch_of(tiny_dataset, cfg, spec, size=6, seed=5)
    lengths = batch.mask.sum(1)
    together = model.act(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, lengths=lengths)
    for i in range(6):
        n = int(lengths[i])
        alone = model.act(batch.returns_to_go[i:i + 1, :n], batch.states[i:i + 1, :n],
                          batch.actions[i:i + 1, :n], batch.timesteps[i:i + 1, :n])
        torch.testing.assert_close(alone[0], together[i], rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["argmax", "sample", "expectation"])
def test_categorical_decoding_modes(tiny_dataset, mode):
    model, cfg, spec = build(tiny_dataset, model="tokenized", head="categorical", decode=mode, temperature=0.5)
    model.eval()
    batch = batch_of(tiny_dataset, cfg, spec, size=4)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a1 = model.act(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, generator=g1)
    a2 = model.act(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, generator=g2)
    torch.testing.assert_close(a1, a2)  # reproducible from the generator
    assert (a1.abs() <= 1).all()
    if mode != "expectation":
        # Discrete decodes land exactly on a bin's representative value.
        values = model.codec.head.values  # (d, bins)
        for j in range(3):
            assert torch.isin(a1[:, j], values[j]).all()


def test_trunk_has_no_position_embeddings():
    """Hugging Face's DT once kept GPT-2's position embeddings next to the timestep embedding."""
    trunk = GPT(16, 2, 2, 0.0)
    assert not any(isinstance(m, torch.nn.Embedding) for m in trunk.modules())
    trunk.eval()
    x = torch.randn(1, 6, 16)
    # Without position embeddings the first output depends only on the first input.
    y1, y2 = trunk(x), trunk(torch.cat([x[:, :1], torch.randn(1, 5, 16)], 1))
    torch.testing.assert_close(y1[:, 0], y2[:, 0])


def test_weight_decay_skips_norms_biases_and_embeddings(tiny_dataset):
    model, _, _ = build(tiny_dataset, model="tokenized")
    decay, no_decay = model.param_groups(0.1)
    decayed = {id(p) for p in decay["params"]}
    for name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.Embedding)) or pname == "bias":
                assert id(p) not in decayed, f"{name}.{pname} should not be decayed"
            elif isinstance(module, torch.nn.Linear):
                assert id(p) in decayed, f"{name}.{pname} should be decayed"
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.1
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_pooled_action_index_embedding_is_only_a_constant_shift():
    # Documented in --action-index-embedding's help and RESULTS.md: mean-pooling the feature
    # tokens turns the index embedding into one bias vector for the pooled model.
    from seqrl.families.dt.actions import ActionTokenizedEmbedding

    torch.manual_seed(0)
    tokens = torch.randint(0, 10, (2, 5, 3))
    pooled = ActionTokenizedEmbedding(10, 3, 8, index_embedding=True)
    without = pooled.token(tokens).mean(dim=2, keepdim=True)
    shift = pooled.index.weight.mean(0)
    assert torch.allclose(pooled(None, tokens), without + shift, atol=1e-6)
    # Same bins on different features pool to the same token: the features cannot be told apart.
    swapped = tokens[..., [2, 0, 1]]
    assert torch.allclose(pooled(None, tokens), pooled(None, swapped), atol=1e-6)
