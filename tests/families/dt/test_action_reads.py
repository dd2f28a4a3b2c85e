"""Each action is read from the right token, for every action representation.

The prediction of step t (the head's output: the continuous action, or each feature's logits)
must depend on R_t and s_t, on the action features of step t that come before it (spread
variants only) and on nothing else of step t or later. The causality test in test_dt.py only
asks that *some* later output moves; these tests name the exact output that must move and
the exact ones that must not, so a model that reads step t's action from its own action token
(or from the return token) fails.
"""

from __future__ import annotations

import pytest
import torch

from tests.helpers.dt import VARIANT_CASES
from .test_dt import batch_of, build

T = 5  # tiny_config's context_len
D = 3  # the tiny dataset's action features


def predictions(model, rtg, states, actions, timesteps) -> torch.Tensor:
    """The head's output per step and feature: (B, T, d) actions or (B, T, d, bins) logits."""
    hidden, _ = model(rtg, states, actions, timesteps)
    return model.codec.head(hidden)


def per_step_feature(x: torch.Tensor) -> torch.Tensor:
    """(B, T, d[, bins]) -> (B, T, d[, bins]) with -inf (masked bins) made comparable."""
    return torch.nan_to_num(x, neginf=-1e9)


def moved(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True if the (B, ...) outputs differ in every row. (Untrained attention is near uniform, so a
    real dependence can move an output by only ~1e-6; outputs that must not move are compared
    with torch.equal, so there is no float noise to tell apart.)"""
    diff = (per_step_feature(a) - per_step_feature(b)).abs().reshape(len(a), -1).amax(1)
    return bool((diff > 0).all())


def far(a: torch.Tensor) -> torch.Tensor:
    """Action values across zero from `a` (0.9 or -0.9): surely another bin of every tokenizer here."""
    return torch.where(a > 0, -0.9, 0.9)


SPREAD_CASES = [case for case in VARIANT_CASES if "spread" in case.id]


def make_setup(dataset, overrides):
    model, cfg, spec = build(dataset, **overrides)
    model.eval()
    batch = batch_of(dataset, cfg, spec, size=8, seed=2)
    base = predictions(model, batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
    return model, batch, base


@pytest.fixture(params=VARIANT_CASES)
def setup(request, tiny_dataset):
    return make_setup(tiny_dataset, request.param)


@pytest.fixture(params=SPREAD_CASES)
def spread_setup(request, tiny_dataset):
    return make_setup(tiny_dataset, request.param)


@pytest.mark.parametrize("t", range(T))
def test_state_t_changes_the_prediction_at_t_and_nothing_before(setup, t):
    model, batch, base = setup
    states = batch.states.clone()
    states[:, t] += 2.0
    out = predictions(model, batch.returns_to_go, states, batch.actions, batch.timesteps)
    assert torch.equal(out[:, :t], base[:, :t]), f"perturbing s_{t} changed a prediction before step {t}"
    for j in range(D):  # every feature of step t reads s_t (spread ones through attention)
        assert moved(out[:, t, j], base[:, t, j]), f"perturbing s_{t} left feature {j} of step {t} unchanged"


@pytest.mark.parametrize("t", range(T))
def test_return_t_changes_the_prediction_at_t_and_nothing_before(setup, t):
    model, batch, base = setup
    rtg = batch.returns_to_go.clone()
    rtg[:, t] += 3.0
    out = predictions(model, rtg, batch.states, batch.actions, batch.timesteps)
    assert torch.equal(out[:, :t], base[:, :t])
    assert moved(out[:, t], base[:, t]), f"the prediction at step {t} ignores R_{t}"


@pytest.mark.parametrize("t", range(T))
def test_the_action_of_step_t_is_not_visible_to_its_own_prediction(setup, t):
    """Changing every feature of a_t leaves step t's prediction of feature 0 (and, pooled, of
    every feature) exactly as it was: the model never sees the action it is asked for."""
    model, batch, base = setup
    actions = batch.actions.clone()
    actions[:, t] = far(actions[:, t])
    out = predictions(model, batch.returns_to_go, batch.states, actions, batch.timesteps)
    spread = model.codec.tokens_per_step > 1
    assert torch.equal(out[:, :t], base[:, :t])
    if spread:
        assert torch.equal(out[:, t, 0], base[:, t, 0]), f"feature 0 of step {t} saw a_{t}"
        for j in range(1, D):  # feature j reads a_t^0 .. a_t^{j-1}
            assert moved(out[:, t, j], base[:, t, j]), f"feature {j} of step {t} ignores a_{t}'s earlier features"
    else:
        assert torch.equal(out[:, t], base[:, t]), f"the pooled prediction at step {t} saw a_{t}"
    if t + 1 < T:
        assert moved(out[:, t + 1], base[:, t + 1]), f"step {t + 1} ignores a_{t}"


@pytest.mark.parametrize("j", range(D))
def test_spread_feature_j_sees_exactly_the_features_before_it(spread_setup, j):
    model, batch, base = spread_setup
    assert model.codec.tokens_per_step == D
    t = 2
    actions = batch.actions.clone()
    actions[:, t, j] = far(actions[:, t, j])
    out = predictions(model, batch.returns_to_go, batch.states, actions, batch.timesteps)
    assert torch.equal(out[:, :t], base[:, :t])
    assert torch.equal(out[:, t, : j + 1], base[:, t, : j + 1]), f"a_t^{j} leaked into the prediction of features <= {j}"
    for later in range(j + 1, D):
        assert moved(out[:, t, later], base[:, t, later]), f"feature {later} ignores a_t^{j}"


@pytest.mark.parametrize("overrides", VARIANT_CASES)
def test_act_reads_the_last_real_step(tiny_dataset, overrides):
    """`act` answers for each row's last real step: changing that step's state changes it,
    and anything in the padded steps after it does not."""
    model, cfg, spec = build(tiny_dataset, **overrides)
    model.eval()
    batch = batch_of(tiny_dataset, cfg, spec, size=8, seed=3)
    lengths = torch.full((8,), 3)  # steps 3 and 4 are treated as padding
    args = (batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
    base = model.act(*args, lengths=lengths)
    later = [x.clone() for x in args]
    later[0][:, 3:] += 4.0
    later[1][:, 3:] += 4.0
    later[2][:, 3:] = far(later[2][:, 3:])
    assert torch.equal(model.act(*later, lengths=lengths), base)
    # The raw head output at step 2 (the decoded action of a categorical head may stay in its bin).
    states = batch.states.clone()
    states[:, 2] += 2.0
    hidden, _ = model(batch.returns_to_go, states, batch.actions, batch.timesteps, step=lengths - 1)
    hidden_base, _ = model(*args, step=lengths - 1)
    assert moved(model.codec.head(hidden), model.codec.head(hidden_base))
