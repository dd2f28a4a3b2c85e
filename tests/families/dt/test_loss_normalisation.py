"""The masked action losses equal hand-computed values on a small padded batch.

The definition (action_codecs.py): the per-step loss is the mean over action features (squared
error, or cross-entropy of each feature's bin), and the batch loss is the mean of that over the
real (unpadded) steps. Averaging over padded positions, summing over features, or averaging over
all B x T positions gives another number here, and fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqrl.data.tokenizer import ActionTokenizer, TorchActionTokenizer
from seqrl.families.dt.actions import CategoricalHead, RegressionHead

from .test_dt import batch_of, build
from tests.helpers.dt import VARIANT_CASES

# Two rows of three steps; row 0 is real at steps 0-2, row 1 at step 0 only (right-padded).
MASK = torch.tensor([[True, True, True], [True, False, False]])


def test_regression_loss_by_hand():
    head = RegressionHead(4, 2, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    actions = torch.zeros(2, 3, 2)
    prediction = torch.tensor([
        [[0.1, 0.3], [0.2, 0.0], [0.0, 0.4]],
        [[0.5, 0.5], [0.9, 0.9], [0.9, 0.9]],  # the last two steps are padding: large errors
    ])
    # Per real step, mean over the 2 features of the squared error:
    #   row 0: (0.01 + 0.09) / 2 = 0.05, (0.04 + 0) / 2 = 0.02, (0 + 0.16) / 2 = 0.08
    #   row 1: (0.25 + 0.25) / 2 = 0.25
    # Mean over the 4 real steps: (0.05 + 0.02 + 0.08 + 0.25) / 4 = 0.1
    loss = head.loss(prediction, actions, None, MASK)
    assert loss.item() == pytest.approx(0.1, abs=1e-7)
    # What the wrong normalisations would give, so the value above is not an accident:
    assert ((prediction - actions) ** 2).mean().item() != pytest.approx(0.1, abs=1e-3)  # over padding too
    assert ((prediction - actions) ** 2).sum(-1)[MASK].mean().item() == pytest.approx(0.2)  # summed features


def test_regression_loss_as_float_mask():
    head = RegressionHead(4, 2, torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    prediction = torch.full((2, 3, 2), 0.5)
    prediction[1, 1:] = 5.0
    loss = head.loss(prediction, torch.zeros(2, 3, 2), None, MASK.float())
    assert loss.item() == pytest.approx(0.25, abs=1e-7)


def two_bin_tokenizer() -> TorchActionTokenizer:
    """Feature 0 with 2 bins, feature 1 with 3 (so the per-feature offsets are 0 and 2)."""
    tok = ActionTokenizer(
        [np.array([-1.0, 0.0, 1.0]), np.array([-1.0, -0.5, 0.5, 1.0])],
        [np.array([-0.5, 0.5]), np.array([-0.75, 0.0, 0.75])],
        num_bins=3,
    )
    assert tok.offsets.tolist() == [0, 2]
    return TorchActionTokenizer(tok)


def test_categorical_loss_by_hand():
    tokenizer = two_bin_tokenizer()
    head = CategoricalHead(4, tokenizer, shared=False)
    ln = math.log
    # logits (B=2, T=3, d=2, max_bins=3); feature 0's third bin does not exist (-inf).
    logits = torch.zeros(2, 3, 2, 3)
    logits[..., 0, 2] = float("-inf")
    logits[0, 0, 0, :2] = torch.tensor([ln(3.0), 0.0])  # p = (3/4, 1/4)
    logits[0, 1, 1] = torch.tensor([ln(2.0), 0.0, 0.0])  # p = (1/2, 1/4, 1/4)
    logits[1, 1:] = 10.0  # padding (and wrong): must not count
    # Local bins of the data's actions; tokens carry the offsets (feature 1's ids are 2 + local).
    local = torch.tensor([
        [[0, 2], [1, 0], [1, 1]],
        [[0, 1], [1, 2], [0, 0]],
    ])
    tokens = local + tokenizer.offsets
    # Cross-entropy per (step, feature) = -log p(true bin):
    #   row 0 step 0: feature 0 bin 0: ln(4/3); feature 1 bin 2 of 3 equal: ln 3
    #   row 0 step 1: feature 0 bin 1 of 2 equal: ln 2; feature 1 bin 0 with p 1/2: ln 2
    #   row 0 step 2: ln 2; ln 3
    #   row 1 step 0: ln 2; ln 3
    per_step = [(ln(4 / 3) + ln(3)) / 2, (ln(2) + ln(2)) / 2, (ln(2) + ln(3)) / 2, (ln(2) + ln(3)) / 2]
    expected = sum(per_step) / 4
    loss = head.loss(logits, torch.zeros(2, 3, 2), tokens, MASK)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.794513, abs=1e-6)  # the same, written out


@pytest.mark.parametrize("overrides", VARIANT_CASES)
def test_model_loss_is_the_mean_over_real_steps_of_the_mean_over_features(tiny_dataset, overrides):
    """DecisionTransformer.loss against the definition computed independently, with boolean
    indexing of the real steps, on a sampled batch that contains padding."""
    model, cfg, spec = build(tiny_dataset, **overrides)
    model.eval()
    batch = batch_of(tiny_dataset, cfg, spec, size=16, seed=3)
    mask = batch.mask.bool()
    assert (~mask).any() and mask.any()
    hidden, tokens = model(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
    prediction = model.codec.head(hidden)
    if cfg.head == "regression":
        per_step_feature = (prediction - batch.actions) ** 2  # (B, T, d)
    else:
        log_p = torch.log_softmax(prediction, -1)  # (B, T, d, bins)
        local = tokens - model.codec.tokenizer.offsets
        per_step_feature = -log_p.gather(-1, local.unsqueeze(-1)).squeeze(-1)  # (B, T, d)
    expected = per_step_feature.mean(-1)[mask].mean()
    torch.testing.assert_close(model.loss(batch), expected, rtol=1e-5, atol=1e-7)
