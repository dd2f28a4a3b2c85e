"""The TT model: causal within and across transitions, value masking, per-position heads, and a
loss normalised by the real tokens."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from seqrl.families.tt.data import TokenBatch

from tests.helpers.tt import random_prefix, tiny_tt


def perturb(tokens: torch.Tensor, model, position: int) -> torch.Tensor:
    """The same ids with the token at `position` moved to another bin of its dimension."""
    dim = position % model.transition_dim
    bins = int(model.discretizer.bins_per_feature[dim])
    out = tokens.clone()
    local = out[:, position] - model.discretizer.offsets[dim]
    out[:, position] = (local + 1) % bins + model.discretizer.offsets[dim]
    return out


@pytest.mark.parametrize("position", [0, 2, 3, 5, 6, 9, 13])  # state, action, reward and value tokens
def test_outputs_before_a_token_ignore_it_and_its_own_output_reads_it(position):
    model = tiny_tt()
    tokens = random_prefix(model, 2, transitions=2)[:, :15]  # crosses the transition boundary at 7 and 14
    base, moved = model(tokens), model(perturb(tokens, model, position))
    assert torch.equal(base[:, :position], moved[:, :position])  # exactly: causal within and across transitions
    assert not torch.allclose(base[:, position], moved[:, position])


def test_masked_values_are_invisible_to_every_later_position():
    model = tiny_tt(mask_values=True)
    T = model.transition_dim
    tokens = random_prefix(model, 2, transitions=2)[:, : 2 * T + 2]
    value = T - 1  # the first transition's value token
    base, moved = model(tokens), model(perturb(tokens, model, value))
    assert torch.equal(base[:, value + 1 :], moved[:, value + 1 :])
    assert torch.equal(base[:, :value], moved[:, :value])
    # without the option the value token is read by what follows
    plain = tiny_tt(mask_values=False)
    assert not torch.allclose(plain(tokens)[:, value + 1 :], plain(perturb(tokens, plain, value))[:, value + 1 :])


def test_each_position_predicts_the_next_dimension_over_that_dimensions_bins_only():
    model = tiny_tt(num_bins=8)
    T = model.transition_dim
    tokens = random_prefix(model, 1, transitions=1)[:, :T]
    logits = model(tokens)[0]  # (T, bins)
    for i in range(T):
        predicted = (i + 1) % T
        valid = int(model.discretizer.bins_per_feature[predicted])
        assert torch.isfinite(logits[i, :valid]).all() and torch.isinf(logits[i, valid:]).all()


def test_loss_is_the_weighted_cross_entropy_over_real_tokens_divided_by_their_count():
    model = tiny_tt()
    T = model.transition_dim
    tokens = random_prefix(model, 3, transitions=3)[:, : 3 * T]
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[0, 2 * T :] = False  # row 0: its last transition is padding
    mask[1, T:] = False
    loss, terms = model.loss_terms(TokenBatch(tokens, mask))
    # By hand: targets are tokens[1:], each predicted by the logits one position earlier.
    logits = model(tokens[:, :-1]).detach()
    total, count = 0.0, 0
    weights = {"state": 1.0, "action": 5.0, "reward": 1.0, "value": 1.0}
    for b in range(3):
        for i in range(1, 3 * T):
            if not mask[b, i]:
                continue
            dim = i % T
            kind = "state" if dim < model.observation_dim else "action" if dim < model.observation_dim + model.action_dim \
                else "reward" if dim == T - 2 else "value"
            target = int(tokens[b, i] - model.discretizer.offsets[dim])
            total += weights[kind] * float(F.cross_entropy(logits[b, i - 1][None], torch.tensor([target])))
            count += 1
    assert loss.item() == pytest.approx(total / count, rel=1e-5)
    # padding contents do not matter
    noisy = tokens.clone()
    noisy[~mask] = random_prefix(model, 3, transitions=3, seed=5)[:, : 3 * T][~mask]
    assert model.loss_terms(TokenBatch(noisy, mask))[0].item() == pytest.approx(loss.item(), rel=1e-6)
    assert set(terms) == {"state", "action", "reward", "value"} and all(torch.isfinite(v) for v in terms.values())


def test_cached_extension_equals_the_full_forward():
    model = tiny_tt(mask_values=True)
    tokens = random_prefix(model, 3, transitions=2)[:, :17]
    full = model(tokens)
    cache: list = []
    model(tokens[:, :10], cache=cache)
    capacity = model.block_size
    cache = [tuple(F.pad(t, (0, 0, 0, capacity - 10)) for t in kv) for kv in cache]
    for p in range(10, 17):
        step = model.extend(tokens[:, p], p, cache, capacity)
        torch.testing.assert_close(step, full[:, p], rtol=1e-5, atol=1e-5)


def test_weight_decay_applies_to_matrices_and_heads_only():
    model = tiny_tt()
    decay, no_decay = (group["params"] for group in model.param_groups(0.1))
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay}
    assert "head_weight" in decayed and "embed_tokens.weight" not in decayed and "embed_position.weight" not in decayed
    assert not any("ln" in n or n.endswith("bias") for n in decayed)
    assert len(decay) + len(no_decay) == len(list(model.parameters()))


def test_config_rejects_bad_values():
    from seqrl.errors import ConfigError
    from tests.helpers.tt import tiny_tt_config

    for bad in (dict(num_bins=1), dict(sequence_length=1), dict(action_weight=float("nan")), dict(discount=0.0),
                dict(embed_dim=30, n_heads=4), dict(family="dt")):
        with pytest.raises(ConfigError):
            tiny_tt_config(**bad)
    assert dataclasses.replace(tiny_tt_config(), num_bins=3).num_bins == 3
