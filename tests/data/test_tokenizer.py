"""Tests for the action tokenizers (seqrl.data.tokenizer).

Property tests draw datasets that are hard for binning on purpose: clipped actions with a large
share of exact +-1, constant features, a handful of distinct values, fewer actions than bins,
and arbitrary float32 values. Every fitted tokenizer must satisfy `_check_invariants`.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seqrl.data.tokenizer import ActionTokenizer, TorchActionTokenizer
from seqrl.errors import CheckpointError, ConfigError

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FEATURE_KINDS = ("continuous", "clipped", "constant", "few_values", "half_at_bounds")


def _feature(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "continuous":
        return rng.normal(size=n) * rng.uniform(0.01, 10)
    if kind == "clipped":  # a Gaussian policy's actions clipped to the space, as in D4RL
        return np.clip(rng.normal(scale=1.5, size=n), -1, 1)
    if kind == "constant":
        return np.full(n, rng.uniform(-2, 2))
    if kind == "few_values":
        return rng.choice(rng.uniform(-1, 1, size=3), size=n)
    # half_at_bounds: 50% of values exactly -1 or +1, the rest uniform in between
    return np.where(rng.random(n) < 0.5, rng.choice([-1.0, 1.0], size=n), rng.uniform(-1, 1, size=n))


@st.composite
def seeded_actions(draw) -> np.ndarray:
    """(N, d) float32 actions built from a mix of feature kinds."""
    n = draw(st.integers(1, 400))
    kinds = draw(st.lists(st.sampled_from(FEATURE_KINDS), min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return np.stack([_feature(kind, n, rng) for kind in kinds], axis=1).astype(np.float32)


BIG = float(np.float32(1e30))
# Arbitrary float32 arrays, biased towards repeats and +-1, for adversarial small cases.
raw_actions = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=30),
    elements=st.one_of(
        st.sampled_from([-1.0, 1.0, 0.0]),
        st.floats(-BIG, BIG, width=32, allow_nan=False, allow_infinity=False),
    ),
)
actions_strategy = st.one_of(seeded_actions(), raw_actions)
fit_options = st.fixed_dictionaries(
    {
        "num_bins": st.integers(2, 64),
        "strategy": st.sampled_from(["quantile", "uniform"]),
        "shared_range": st.booleans(),
    }
)


def _all_token_ids(tok: ActionTokenizer) -> np.ndarray:
    """(max_bins, d) ids: row k holds bin min(k, |Q_i| - 1) of every feature i."""
    local = np.minimum(np.arange(tok.bins_per_feature.max())[:, None], tok.bins_per_feature - 1)
    return local + tok.offsets


def _check_invariants(tok: ActionTokenizer, actions: np.ndarray) -> None:
    """What every fitted tokenizer must satisfy, whatever its data."""
    assert 1 <= tok.bins_per_feature.min() and tok.bins_per_feature.max() <= tok.num_bins
    for i, (edges, values) in enumerate(zip(tok.edges, tok.values)):
        assert edges.dtype == np.float32 and np.all(np.isfinite(edges))
        assert np.all(np.diff(edges) > 0), f"feature {i}: bins collapsed"
        assert len(values) == len(edges) - 1 == tok.bins_per_feature[i]
        # decoded values lie in their bin: [lo, hi) and the last bin [lo, hi]
        assert np.all(values >= edges[:-1])
        assert np.all(values[:-1] < edges[1:-1]) and values[-1] <= edges[-1]
        if tok.strategy == "quantile":
            # quantile bins never hold zero training actions (empty ones are merged away)
            local = np.searchsorted(edges[1:-1], actions[:, i], side="right")
            assert np.all(np.bincount(local, minlength=len(values)) > 0)
    ids = _all_token_ids(tok)
    np.testing.assert_array_equal(tok.encode(tok.decode(ids)), ids)
    if tok.shared_range:
        assert tok.vocab_size == tok.bins_per_feature.max() and not tok.offsets.any()
    else:
        assert tok.vocab_size == tok.bins_per_feature.sum()


@PROPERTY_SETTINGS
@given(actions=actions_strategy, options=fit_options)
def test_fitted_tokenizer_invariants(actions, options):
    tok = ActionTokenizer.fit(actions, **options)
    _check_invariants(tok, actions)


@PROPERTY_SETTINGS
@given(actions=seeded_actions(), options=fit_options, seed=st.integers(0, 2**32 - 1))
def test_ids_in_range_and_monotone_per_feature(actions, options, seed):
    tok = ActionTokenizer.fit(actions, **options)
    rng = np.random.default_rng(seed)
    # Queries reach well past the fitted range: they must clamp to the end bins.
    lo, hi = actions.min(axis=0), actions.max(axis=0)
    span = np.maximum(hi - lo, 1.0)
    queries = np.sort(rng.uniform(lo - span, hi + span, size=(300, tok.action_dim)), axis=0)
    queries = np.concatenate([queries[:1] * 0 - 1e30, queries, queries[:1] * 0 + 1e30]).astype(np.float32)
    ids = tok.encode(queries)
    assert ids.dtype == np.int64
    assert np.all((ids >= 0) & (ids < tok.vocab_size))
    assert np.all(ids >= tok.offsets) and np.all(ids < tok.offsets + tok.bins_per_feature)
    assert np.all(np.diff(ids, axis=0) >= 0), "encoding must be monotone in each feature"
    np.testing.assert_array_equal(ids[0], tok.offsets)
    np.testing.assert_array_equal(ids[-1], tok.offsets + tok.bins_per_feature - 1)
    # every id is one that the feature mask allows
    assert tok.feature_mask[np.arange(tok.action_dim), ids].all()


@PROPERTY_SETTINGS
@given(actions=actions_strategy, options=fit_options, seed=st.integers(0, 2**32 - 1))
def test_numpy_and_torch_agree(actions, options, seed):
    tok = ActionTokenizer.fit(actions, **options)
    module = TorchActionTokenizer(tok)
    rng = np.random.default_rng(seed)
    # Training actions (which sit exactly on quantile edges), the edges themselves, values a hair
    # either side of them, and float64 values between float32 neighbours.
    edges = np.stack([np.resize(e, 50) for e in tok.edges], axis=1)
    up, down = np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(-np.inf))
    near = np.concatenate([edges, up, down])
    finite = np.concatenate([actions, near, tok.decode(_all_token_ids(tok))]).astype(np.float32)
    infinities = np.full((2, tok.action_dim), np.inf) * np.array([[-1.0], [1.0]])  # clamp to the end bins
    queries32 = np.concatenate([finite, infinities]).astype(np.float32)
    half_ulp = rng.uniform(-1, 1, size=finite.shape) * np.spacing(finite) / 2
    queries64 = np.concatenate([finite + half_ulp, near, infinities])
    for queries in (queries32, queries64.astype(np.float64)):
        expected = tok.encode(queries)
        got = module.encode(torch.from_numpy(queries))
        assert got.dtype == torch.int64
        np.testing.assert_array_equal(got.numpy(), expected)
    ids = _all_token_ids(tok)
    np.testing.assert_array_equal(module.decode(torch.from_numpy(ids)).numpy(), tok.decode(ids))
    # batch shapes (B, K, d) survive both ways
    batch = torch.from_numpy(np.resize(queries32, (2, 3, tok.action_dim)).copy())
    assert module.encode(batch).shape == (2, 3, tok.action_dim)
    assert module.decode(module.encode(batch)).shape == (2, 3, tok.action_dim)


@PROPERTY_SETTINGS
@given(actions=actions_strategy, options=fit_options)
def test_state_dict_round_trip_gives_identical_tokenizer(actions, options):
    tok = ActionTokenizer.fit(actions, **options)
    buffer = io.BytesIO()
    torch.save({"action_tokenizer": tok.state_dict()}, buffer)
    buffer.seek(0)
    # weights_only=True is torch.load's default since 2.6: the state must load under it.
    state = torch.load(buffer, weights_only=True)["action_tokenizer"]
    via_json = json.loads(json.dumps(state))  # run directories may keep it as JSON
    for restored in (ActionTokenizer.from_state_dict(state), ActionTokenizer.from_state_dict(via_json)):
        assert repr(restored) == repr(tok)
        for a, b in zip(restored.edges + restored.values, tok.edges + tok.values):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(restored.encode(actions), tok.encode(actions))
        np.testing.assert_array_equal(restored.offsets, tok.offsets)


def test_repeated_values_get_their_own_bins_and_never_collapse():
    rng = np.random.default_rng(0)
    n = 10_000
    actions = np.stack(
        [
            _feature("half_at_bounds", n, rng),  # 50% exactly +-1
            np.full(n, 0.25),  # constant
            _feature("clipped", n, rng),
            _feature("continuous", n, rng),
        ],
        axis=1,
    ).astype(np.float32)
    tok = ActionTokenizer.fit(actions, num_bins=100)
    _check_invariants(tok, actions)
    # The atoms at +-1 each own a bin, so they decode to exactly +-1.
    decoded = tok.decode(tok.encode(actions))
    for i in (0, 2):
        at_bound = np.abs(actions[:, i]) == 1
        np.testing.assert_array_equal(decoded[at_bound, i], actions[at_bound, i])
        assert tok.bins_per_feature[i] < 100  # the +-1 mass merged many quantile bins
    # The constant feature has one bin, decoding to the constant.
    assert tok.bins_per_feature[1] == 1
    np.testing.assert_array_equal(decoded[:, 1], 0.25)
    # Continuous data keeps every bin, and the offsets use the real per-feature counts.
    assert tok.bins_per_feature[3] == 100
    np.testing.assert_array_equal(tok.offsets, np.concatenate([[0], np.cumsum(tok.bins_per_feature)[:-1]]))


def test_uniform_constant_feature_gets_one_bin():
    actions = np.stack([np.full(50, -3.0), np.linspace(-1, 1, 50)], axis=1)
    tok = ActionTokenizer.fit(actions, num_bins=10, strategy="uniform")
    _check_invariants(tok, actions.astype(np.float32))
    np.testing.assert_array_equal(tok.bins_per_feature, [1, 10])
    np.testing.assert_array_equal(tok.decode(tok.encode(actions))[:, 0], -3.0)


def test_fewer_actions_than_bins():
    actions = np.array([[0.1, 5.0], [0.3, 5.0], [-0.2, 6.0]], dtype=np.float32)
    tok = ActionTokenizer.fit(actions, num_bins=100)
    _check_invariants(tok, actions)
    # Each distinct value is recovered exactly: its bin holds only it.
    np.testing.assert_array_equal(tok.decode(tok.encode(actions)), actions)


def test_extreme_float32_values():
    big = np.finfo(np.float32).max
    actions = np.array([[big, -big], [big, -big]], dtype=np.float32)
    for strategy in ("quantile", "uniform"):
        tok = ActionTokenizer.fit(actions, num_bins=4, strategy=strategy)
        _check_invariants(tok, actions)
        np.testing.assert_array_equal(tok.decode(tok.encode(actions)), actions)


@pytest.mark.parametrize("num_bins", [100, 300, 1000, 3000])
@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_paper_bin_counts(num_bins, strategy):
    rng = np.random.default_rng(num_bins)
    actions = np.tanh(rng.normal(size=(20 * num_bins, 3))).astype(np.float32)
    tok = ActionTokenizer.fit(actions, num_bins=num_bins, strategy=strategy, low=-1, high=1)
    np.testing.assert_array_equal(tok.bins_per_feature, [num_bins] * 3)
    assert tok.vocab_size == 3 * num_bins
    _check_invariants(tok, actions)
    module = TorchActionTokenizer(tok)
    batch = actions[: 64 * 20].reshape(64, 20, 3)  # a CORL-sized batch
    np.testing.assert_array_equal(module.encode(torch.from_numpy(batch)).numpy(), tok.encode(batch))


def test_quantile_bins_have_equal_occupancy_on_continuous_data():
    rng = np.random.default_rng(1)
    n, num_bins = 50_000, 100
    train = rng.standard_normal((n, 2)).astype(np.float32)
    tok = ActionTokenizer.fit(train, num_bins=num_bins)
    counts = np.stack([np.bincount(col, minlength=num_bins) for col in (tok.encode(train) - tok.offsets).T])
    # On its own training data the split is exact to within one action (+1 for the maximum).
    assert counts.min() >= n // num_bins - 1 and counts.max() <= n // num_bins + 2
    # On fresh data from the same distribution, roughly equal (500 +- 30% is > 6 sigma).
    test = rng.standard_normal((n, 2)).astype(np.float32)
    counts = np.stack([np.bincount(col, minlength=num_bins) for col in (tok.encode(test) - tok.offsets).T])
    assert counts.min() > 0.7 * n / num_bins and counts.max() < 1.3 * n / num_bins


def test_uniform_bins_have_equal_width_and_clamp_outside_the_bounds():
    rng = np.random.default_rng(2)
    actions = rng.uniform(-0.5, 0.8, size=(1000, 2)).astype(np.float32)
    tok = ActionTokenizer.fit(
        actions, num_bins=200, strategy="uniform", low=[-1.0, -np.inf], high=[1.0, np.inf]
    )
    # Feature 0 spans the given bounds; feature 1's infinite bounds fall back to the data range.
    assert tok.edges[0][0] == -1 and tok.edges[0][-1] == 1
    assert tok.edges[1][0] == actions[:, 1].min() and tok.edges[1][-1] == actions[:, 1].max()
    for edges in tok.edges:
        widths = np.diff(edges.astype(np.float64))
        np.testing.assert_allclose(widths, (edges[-1] - edges[0]) / 200, rtol=1e-4)
    # Empty uniform bins decode to their centre.
    empty = tok.edges[0][:-1] < -0.5
    centres = (tok.edges[0][:-1] + tok.edges[0][1:]) / 2
    np.testing.assert_allclose(tok.values[0][empty], centres[empty], rtol=1e-6)
    ids = tok.encode(np.array([[-5.0, -5.0], [5.0, 5.0]]))
    np.testing.assert_array_equal(ids, [tok.offsets, tok.offsets + tok.bins_per_feature - 1])


def test_offsets_follow_the_token_formula():
    rng = np.random.default_rng(3)
    n = 2_000
    features = [rng.normal(size=n), np.full(n, 1.0), _feature("few_values", n, rng), rng.normal(size=n)]
    actions = np.stack(features, axis=1)
    tok = ActionTokenizer.fit(actions, num_bins=50)
    sizes = tok.bins_per_feature
    assert sizes[1] == 1 and sizes[2] == 3  # different |Q_i| per feature
    ids = tok.encode(actions)
    for i in range(tok.action_dim):
        # Q_i alone: a tokenizer fitted on feature i by itself
        q_i = ActionTokenizer.fit(actions[:, [i]], num_bins=50).encode(actions[:, [i]])[:, 0]
        np.testing.assert_array_equal(ids[:, i], q_i + sizes[:i].sum())
    np.testing.assert_array_equal(tok.feature_of_token, np.repeat(np.arange(4), sizes))
    assert tok.feature_mask.sum(axis=0).tolist() == [1] * tok.vocab_size  # one feature per token


def test_shared_range_ids_lie_below_max_bins():
    rng = np.random.default_rng(4)
    actions = np.stack([rng.normal(size=500), np.full(500, 2.0), rng.normal(size=500)], axis=1)
    tok = ActionTokenizer.fit(actions, num_bins=40, shared_range=True)
    assert tok.vocab_size == 40 and not tok.offsets.any()
    ids = tok.encode(actions)
    assert ids.min() >= 0 and ids.max() < 40
    np.testing.assert_array_equal(ids[:, 1], 0)
    # the constant feature has one valid token; the others all 40
    np.testing.assert_array_equal(tok.feature_mask.sum(axis=1), [40, 1, 40])
    with pytest.raises(ConfigError, match="shared_range"):
        tok.feature_of_token
    module = TorchActionTokenizer(tok)
    with pytest.raises(ConfigError, match="value_table"):
        module.bin_values
    # value_table[i, t] is token t's value for feature i
    t = torch.arange(40)
    ids = torch.stack([t, t * 0, t], dim=1).numpy()  # (40, 3)
    np.testing.assert_array_equal(module.value_table[0].numpy(), tok.decode(ids)[:, 0])


def test_torch_module_buffers_devices_and_dtypes():
    rng = np.random.default_rng(5)
    actions = np.stack([rng.normal(size=300), np.full(300, 1.0)], axis=1).astype(np.float32)
    tok = ActionTokenizer.fit(actions, num_bins=16)
    module = TorchActionTokenizer(tok)
    d, vocab = 2, tok.vocab_size
    assert module.boundaries.shape == (d, 15) and module.boundaries[1].isinf().all()
    assert module.value_table.shape == (d, 16) and module.feature_mask.shape == (d, vocab)
    assert module.num_bins.tolist() == [16, 1] and module.offsets.tolist() == [0, 16]
    assert module.vocab_size == vocab == 17
    # bin_values is indexed by token id and agrees with decode
    np.testing.assert_array_equal(module.bin_values.numpy(), np.concatenate(tok.values))
    # Saved in a parent model's state_dict, and reloaded into a freshly built one.
    parent = torch.nn.Module()
    parent.codec = module
    state = parent.state_dict()
    assert {"codec.boundaries", "codec.value_table", "codec.feature_mask", "codec.offsets"} <= set(state)
    fresh = torch.nn.Module()
    fresh.codec = TorchActionTokenizer(tok)
    fresh.load_state_dict(state)
    x = torch.from_numpy(actions)
    # Casting a model to bfloat16/float64 must not round the tables (it would change ids).
    for cast in ("cpu", torch.bfloat16, torch.float64, torch.float16):
        moved = TorchActionTokenizer(tok).to(cast)
        assert moved.boundaries.dtype == torch.float32 and moved.value_table.dtype == torch.float32
        np.testing.assert_array_equal(moved.encode(x).numpy(), tok.encode(actions))
    # Low-precision inputs are compared after exact widening, like numpy.
    xh = x.half()
    np.testing.assert_array_equal(module.encode(xh).numpy(), tok.encode(xh.numpy()))
    # Out-of-range ids clamp in torch (no device sync) and raise in numpy.
    assert module.decode(torch.tensor([[99, -5]])).tolist() == [[tok.values[0][-1], tok.values[1][0]]]
    with pytest.raises(ValueError, match=r"feature 0 must lie in \[0, 16\)"):
        tok.decode(np.array([[99, 16]]))


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("num_bins", [1, 0, -3, 2.5, True])
def test_num_bins_below_two_is_rejected(num_bins):
    with pytest.raises(ConfigError, match="num_bins must be an integer >= 2"):
        ActionTokenizer.fit(np.zeros((5, 2)), num_bins=num_bins)


def test_unknown_strategy_is_rejected():
    with pytest.raises(ConfigError, match="unknown binning strategy 'kmeans'"):
        ActionTokenizer.fit(np.zeros((5, 2)), num_bins=10, strategy="kmeans")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_actions_are_rejected(bad):
    actions = np.zeros((5, 2))
    actions[3, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf \\(first at row 3, feature 1\\)"):
        ActionTokenizer.fit(actions, num_bins=10)


@pytest.mark.parametrize("shape", [(5,), (0, 2), (5, 0), (2, 3, 4)])
def test_actions_to_fit_must_be_a_nonempty_matrix(shape):
    with pytest.raises(ValueError, match="non-empty 2-D array"):
        ActionTokenizer.fit(np.zeros(shape), num_bins=10)


def test_uniform_bounds_are_checked():
    actions = np.zeros((5, 2))
    with pytest.raises(ConfigError, match=r"feature 1: low \(1.0\) must be below high \(1.0\)"):
        ActionTokenizer.fit(actions, num_bins=10, strategy="uniform", low=[-1, 1], high=1)
    with pytest.raises(ConfigError, match=r"low must be a number or have one entry per action feature \(2\)"):
        ActionTokenizer.fit(actions, num_bins=10, strategy="uniform", low=[-1, -1, -1])


def test_wrong_feature_count_names_expected_and_got():
    tok = ActionTokenizer.fit(np.random.default_rng(0).normal(size=(50, 3)), num_bins=8)
    module = TorchActionTokenizer(tok)
    message = "expected 3 action features, got 2"
    with pytest.raises(ValueError, match=message):
        tok.encode(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=message):
        module.encode(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=message):
        tok.decode(np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=message):
        module.decode(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="expected 3 action features, got 0"):
        tok.encode(np.float32(1.0))


def test_encode_and_decode_reject_bad_values():
    tok = ActionTokenizer.fit(np.random.default_rng(0).normal(size=(50, 2)), num_bins=8)
    with pytest.raises(ValueError, match="actions to encode contain NaN"):
        tok.encode(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="token ids must be integers"):
        tok.decode(np.array([[0.0, 1.0]]))


def test_malformed_state_dict_is_a_checkpoint_error():
    tok = ActionTokenizer.fit(np.random.default_rng(0).normal(size=(50, 2)), num_bins=8)
    state = tok.state_dict()
    with pytest.raises(CheckpointError, match="missing 'edges'"):
        ActionTokenizer.from_state_dict({k: v for k, v in state.items() if k != "edges"})
    with pytest.raises(CheckpointError, match="format_version 99"):
        ActionTokenizer.from_state_dict({**state, "format_version": 99})
    unsorted = {**state, "edges": [e[::-1] for e in state["edges"]]}
    with pytest.raises(CheckpointError, match="strictly increasing"):
        ActionTokenizer.from_state_dict(unsorted)
    with pytest.raises(CheckpointError, match="unknown binning strategy"):
        ActionTokenizer.from_state_dict({**state, "strategy": "kmeans"})
    with pytest.raises(CheckpointError, match="expected 8 finite bin values"):
        ActionTokenizer.from_state_dict({**state, "values": [v[:-1] for v in state["values"]]})
