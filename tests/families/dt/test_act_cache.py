"""The key/value cache of `DecisionTransformer.act`: generating a spread action feature by
feature from cached keys and values must give what re-running the whole context gives."""

from __future__ import annotations

import pytest
import torch

from seqrl.models.gpt import GPT

from tests.helpers.dt import VARIANT_CASES
from .test_dt import build

SPREAD_CASES = [case for case in VARIANT_CASES if "spread" in case.values[0]["model"]] + [
    pytest.param(dict(model="continuous-spread", head="categorical"), id="continuous-spread-categorical"),
]
POOLED_CASES = [case for case in VARIANT_CASES if "spread" not in case.values[0]["model"]]
T = 5  # the tiny config's context_len
LENGTHS = torch.tensor([1, T, 3, 2, T, 4, 1])  # right-padded rows: a single step and full contexts included


def randomized(model):
    """Eval mode, and weights moved well off the initialisation: GPT-2's N(0, 0.02) init gives
    near-uniform attention, which would hide a wrong mask or a stale cache entry."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.15)
    return model.eval()


def contexts(spec, lengths=LENGTHS, seed=2):
    """Random (returns_to_go, states, actions, timesteps); entries past each row's length are padding."""
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    rtg = torch.randn(B, T, 1, generator=g)
    states = torch.randn(B, T, spec.obs_dim, generator=g)
    actions = torch.rand(B, T, spec.act_dim, generator=g) * 2 - 1
    start = torch.randint(0, spec.max_timestep, (B, 1), generator=g)
    timesteps = start + torch.arange(T)  # some run past max_timestep: clamped, as in forward
    return rtg, states, actions, timesteps


def act_both_ways(model, spec, seed=0, **kw):
    inputs = contexts(spec)
    g_cached, g_plain = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    cached = model.act(*inputs, lengths=LENGTHS, generator=g_cached, **kw)
    plain = model.act(*inputs, lengths=LENGTHS, generator=g_plain, use_cache=False, **kw)
    return cached, plain, g_cached, g_plain


@pytest.mark.parametrize("overrides", SPREAD_CASES)
def test_cached_act_matches_uncached(tiny_dataset, overrides):
    model, cfg, spec = build(tiny_dataset, **overrides)
    model = randomized(model)
    cached, plain, _, _ = act_both_ways(model, spec)
    assert cached.shape == (len(LENGTHS), 3)
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-6)
    # Not a vacuous comparison: the rows really differ, within the action bounds.
    assert (cached.abs() <= 1).all() and cached.std(0).min() > 1e-3


@pytest.mark.parametrize("mode", ["argmax", "expectation", "sample"])
@pytest.mark.parametrize("model_name", ["tokenized-spread", "continuous-spread"])
def test_cached_act_matches_uncached_for_each_decoding(tiny_dataset, model_name, mode):
    """Categorical heads; sampling draws from the generator exactly as the uncached path does."""
    model, cfg, spec = build(tiny_dataset, model=model_name, head="categorical", decode=mode, temperature=0.7)
    model = randomized(model)
    cached, plain, g_cached, g_plain = act_both_ways(model, spec, seed=3)
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-6)
    assert torch.equal(g_cached.get_state(), g_plain.get_state())  # same number of draws
    if mode == "sample":
        other, _, _, _ = act_both_ways(model, spec, seed=4)
        assert not torch.equal(other, cached), "sampling should depend on the generator"


@pytest.mark.parametrize("overrides", POOLED_CASES)
def test_pooled_act_is_unchanged(tiny_dataset, overrides):
    """k = 1: one pass, nothing to cache; `use_cache` changes nothing, and act reads forward."""
    model, cfg, spec = build(tiny_dataset, **overrides)
    model = randomized(model)
    cached, plain, _, _ = act_both_ways(model, spec)
    assert torch.equal(cached, plain)
    rtg, states, actions, timesteps = contexts(spec)
    rows, last = torch.arange(len(LENGTHS)), LENGTHS - 1
    hidden, _ = model(rtg, states, actions, timesteps)  # every step; the last step's action is unseen by its state token
    prediction = model.codec.head(hidden[rows, last].unsqueeze(1))
    expected = model.codec.head.decode(prediction, mode=cfg.decode)[:, 0]
    torch.testing.assert_close(cached, expected, rtol=0, atol=1e-6)


def test_trunk_extend_matches_a_full_forward():
    """GPT.extend at per-row positions equals a forward over the sequence with the new token in,
    although the cache came from a sequence that differs at and after that position."""
    torch.manual_seed(0)
    B, L, D = 4, 9, 16
    trunk = GPT(D, 3, 2, 0.1)
    with torch.no_grad():
        for p in trunk.parameters():
            p.add_(torch.randn_like(p) * 0.15)
    trunk.eval()
    x = torch.randn(B, L, D)
    position = torch.tensor([0, 8, 3, 5])
    rows = torch.arange(B)
    cache: list = []
    with torch.no_grad():
        trunk(x, position[:, None], cache)  # with last-block pruning, as act's first pass
        changed = x.clone()
        changed[rows, position] = torch.randn(B, D)
        changed[:, -1] += 1.0  # later tokens (also stale in the cache) must not count
        out = trunk.extend(changed[rows, position].unsqueeze(1), position, cache)
        full = trunk(changed)
        torch.testing.assert_close(out[:, 0], full[rows, position], rtol=1e-5, atol=1e-5)
        # The cache now holds the new token's keys and values: extending at the next position works
        # too (row 1 is at the end already: extending there again with the same token is exact as well).
        nxt = (position + 1).clamp(max=L - 1)
        changed[rows, nxt] = torch.where((nxt > position)[:, None], torch.randn(B, D), changed[rows, nxt])
        out = trunk.extend(changed[rows, nxt].unsqueeze(1), nxt, cache)
        full = trunk(changed)
        torch.testing.assert_close(out[:, 0], full[rows, nxt], rtol=1e-5, atol=1e-5)
