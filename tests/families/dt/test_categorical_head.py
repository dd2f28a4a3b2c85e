"""The categorical head's decoding and the shared-range ablation, by hand (mutation testing
showed these were only checked for reproducibility and bounds)."""

from __future__ import annotations

import math

import pytest
import torch

from seqrl.families.dt.actions import CategoricalHead, RegressionHead

from tests.helpers.dt import VARIANT_CASES  # noqa: F401
from .test_dt import build
from .test_loss_normalisation import MASK, two_bin_tokenizer


def head_and_logits():
    tokenizer = two_bin_tokenizer()  # feature 0: values (-0.5, 0.5); feature 1: (-0.75, 0, 0.75)
    head = CategoricalHead(4, tokenizer, shared=False)
    logits = torch.zeros(1, 1, 2, 3)
    logits[..., 0, 2] = float("-inf")  # feature 0 has two bins
    logits[0, 0, 0, :2] = torch.tensor([math.log(3.0), 0.0])  # p = (3/4, 1/4)
    logits[0, 0, 1] = torch.tensor([0.0, 0.0, math.log(2.0)])  # p = (1/4, 1/4, 1/2)
    return head, logits


def test_argmax_is_the_default_and_picks_the_most_likely_bins_value():
    head, logits = head_and_logits()
    expected = torch.tensor([[[-0.5, 0.75]]])
    torch.testing.assert_close(head.decode(logits), expected)
    torch.testing.assert_close(head.decode(logits, mode="argmax"), expected)


def test_expectation_is_the_probability_weighted_mean_of_the_bins_values():
    head, logits = head_and_logits()
    # feature 0: 3/4 * -0.5 + 1/4 * 0.5 = -0.25; feature 1: 1/4 * -0.75 + 1/4 * 0 + 1/2 * 0.75 = 0.1875
    torch.testing.assert_close(head.decode(logits, mode="expectation"), torch.tensor([[[-0.25, 0.1875]]]))


def sample_frequencies(head, logits, n=4000, **kw):
    batch = logits.expand(n, 1, 2, 3)
    draws = head.decode(batch, mode="sample", generator=torch.Generator().manual_seed(0), **kw)[:, 0]  # (n, 2)
    return (draws[:, 0] == -0.5).float().mean().item(), (draws[:, 1] == 0.75).float().mean().item()


def test_sampling_draws_each_bin_with_its_softmax_probability():
    head, logits = head_and_logits()
    p0, p1 = sample_frequencies(head, logits)  # default temperature 1: p = 3/4 and 1/2
    assert p0 == pytest.approx(0.75, abs=0.03) and p1 == pytest.approx(0.5, abs=0.03)
    # Temperature divides the logits: at 0.5, feature 0's odds 3:1 become 9:1 (p = 0.9),
    # feature 1's (1, 1, 2) become (1, 1, 4) (p = 2/3).
    p0, p1 = sample_frequencies(head, logits, temperature=0.5)
    assert p0 == pytest.approx(0.9, abs=0.03) and p1 == pytest.approx(2 / 3, abs=0.03)
    # Default temperature is 1.0 exactly: the same draws as passing it.
    g = dict(mode="sample")
    a = head.decode(logits.expand(50, 1, 2, 3), generator=torch.Generator().manual_seed(3), **g)
    b = head.decode(logits.expand(50, 1, 2, 3), generator=torch.Generator().manual_seed(3), temperature=1.0, **g)
    assert torch.equal(a, b)


def test_unknown_decode_mode_is_named():
    head, logits = head_and_logits()
    with pytest.raises(ValueError, match="unknown decode mode 'beam'"):
        head.decode(logits, mode="beam")


def test_invalid_bins_get_minus_infinity_logits():
    head, _ = head_and_logits()
    logits = head(torch.randn(2, 3, 2, 4))
    assert logits.shape == (2, 3, 2, 3)
    assert torch.isneginf(logits[:, :, 0, 2]).all() and torch.isfinite(logits[:, :, 1]).all()
    assert torch.isfinite(logits[:, :, 0, :2]).all()


@pytest.mark.parametrize("model", ["tokenized", "tokenized-spread"])
def test_shared_range_shares_one_classifier_and_offsets_give_one_per_feature(tiny_dataset, model):
    shared, _, _ = build(tiny_dataset, model=model, head="categorical", token_offsets=False)
    per_feature, _, _ = build(tiny_dataset, model=model, head="categorical")
    assert shared.codec.head.weight.shape[0] == 1 and shared.codec.head.bias.shape[0] == 1
    assert per_feature.codec.head.weight.shape[0] == 3 and per_feature.codec.head.bias.shape[0] == 3


def test_a_batch_with_one_real_step_averages_over_that_step_only():
    head = RegressionHead(4, 2, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    prediction = torch.full((2, 3, 2), 0.9)
    prediction[0, 0] = torch.tensor([0.2, 0.4])  # the one real step: (0.04 + 0.16) / 2 = 0.1
    mask = torch.zeros_like(MASK)
    mask[0, 0] = True
    assert head.loss(prediction, torch.zeros(2, 3, 2), None, mask).item() == pytest.approx(0.1)
    # No real step at all: zero loss, not NaN.
    assert head.loss(prediction, torch.zeros(2, 3, 2), None, torch.zeros_like(MASK)).item() == 0.0


def test_categorical_loss_with_one_real_step():
    head, logits = head_and_logits()  # (1, 1, 2, 3)
    tokens = torch.tensor([[[0, 2 + 2]]])  # feature 0 bin 0 (p 3/4), feature 1 bin 2 (p 1/2)
    loss = head.loss(logits, torch.zeros(1, 1, 2), tokens, torch.ones(1, 1, dtype=torch.bool))
    assert loss.item() == pytest.approx((math.log(4 / 3) + math.log(2)) / 2)
