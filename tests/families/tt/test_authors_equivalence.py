"""seqrl's Trajectory Transformer against the paper authors' implementation (jannerm/trajectory-transformer).

The authors' code is imported at test time from the peers folder (tests/families/tt/authors.py; the module
is skipped without it) and run on the same real data, the same weights and the same inputs:

1. discretization: the same quantile edges and token ids (in range and out of it);
2. logits: the same next-token logits at every position of real windows, value tokens masked;
3. loss: the same weighted cross-entropy;
4. plans: the same beam-search plans, greedy and sampled (with shared random draws), through
   the same `cdf` filter, with and without seqrl's key/value cache.

Data: LunarLanderContinuous-v3 rollouts (seqrl.collect), 2000 transitions (a multiple of N = 20
bins, where the authors' `QuantileDiscretizer` edges sorted[::n/N] + max are defined like seqrl's
sorted[floor(k n/N)] + max). The discretization tests use a uniform-random policy and gymnasium's
heuristic lander with action noise; the model tests use the random policy's data without the two
leg-contact dimensions, so that every one of the T = 6 + 2 + 2 columns has exactly N bins.

Deliberate deviations of seqrl from the authors' code, each tested here:

- Repeated values (the binary leg contacts, actions clipped at +-1). The authors' thresholds then
  repeat, so some of their N bins are empty, and a value that fills whole quantile bins shares a
  bin with the values above it: on the random data the lander's rare leg contact (1) and no
  contact (0) land in one and the same bin (N-1), which decodes to 0.5. seqrl keeps each edge
  once (fewer bins, no empty ones) and gives such an atom a bin of its own, [v, nextafter(v)),
  so it decodes to exactly v. Both discretizations are monotone in the value, so seqrl's bin is
  a non-decreasing function of the authors' bin except where it splits an atom off a bin of theirs
  (`test_repeated_values_get_fewer_seqrl_bins_and_atoms_a_bin_of_their_own`).
- Decoding: seqrl decodes a bin to the mean of the training values in it (the squared-error
  optimum), the authors to the midpoint of its thresholds; both lie in the bin. seqrl's planner
  takes expected rewards and values over its bin means, the authors' `value_fn` over midpoints
  (the plan tests give the authors' planner a value_fn over seqrl's bin means).
- The stop token: the authors predict N + 1 classes per position, the last a stop token that
  their dataset writes after an episode's end (with loss mask 1: they learn to predict it).
  seqrl predicts N and masks padded targets out of the loss instead. To compare, the tests copy
  seqrl's head into the first N rows of the authors' head and suppress the stop class (its logit
  set to -1e9 by a forward hook): the remaining distributions are then identical.
- Loss normalisation with padding: seqrl divides by the number of real targets, the authors'
  `(loss * mask).mean()` by all of them (real and padded).
- The head bias: seqrl's per-position head has one (`head_bias`), the authors' EinLinear none.
  The tests hold seqrl's at zero (frozen), which makes the two heads the same function.
- `filter_logits` sets dropped bins to -inf, the authors' `filter_cdf` to -1000 (the same
  probabilities after softmax in float32); where the most likely bins tie and the authors' filter
  would drop every bin, seqrl keeps the most likely ones (not reachable on continuous logits).
- Random draws: seqrl samples with the Gumbel-max trick from per-environment generators, the
  authors with `torch.multinomial`. The sampled-plan tests feed both the same Gumbel noise per
  candidate (see `SharedNoise`); the candidate rows are ordered differently (seqrl beam-major,
  the authors expansion-major), which the noise table accounts for.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seqrl.data.tokenizer import TorchActionTokenizer
from seqrl.families.tt import planner as seqrl_planner
from seqrl.families.tt.data import TokenBatch, TransitionWindowSampler, fit_discretizer, run_transitions
from seqrl.families.tt.model import TrajectoryTransformer
from seqrl.families.tt.planner import PlannerSettings, beam_plan, filter_logits
from seqrl.models.spec import DataSpec

from .authors import authors_root, load_authors, quantile_discretizer
from tests.helpers.tt import tiny_tt_config

if not (authors_root() / "trajectory").is_dir():
    pytest.skip(f"the authors' trajectory-transformer is not in {authors_root()} (set SEQRL_PEERS)",
                allow_module_level=True)

ENV_ID = "LunarLanderContinuous-v3"
N = 20  # bins per dimension
N_TRANSITIONS = 2000  # a multiple of N: the authors' quantile edges are then seqrl's
SEQUENCE_LENGTH = 6  # transitions per training window
LEGS = [6, 7]  # LunarLander's leg-contact observation dims (0 or 1)
STOP = -1e9  # the authors' stop-token logit, suppressed


# --------------------------------------------------------------------------- data
def _lander(policy: str):
    import gymnasium as gym

    from seqrl.collect.policies import LunarLanderHeuristic, RandomPolicy
    from seqrl.collect.rollout import collect

    if policy == "random":
        space = gym.make(ENV_ID).action_space
        return collect(ENV_ID, RandomPolicy(space, seed=0), N_TRANSITIONS, n_envs=4, seed=0)
    return collect(ENV_ID, LunarLanderHeuristic(), N_TRANSITIONS, n_envs=4, seed=0, noise_std=0.3)


@pytest.fixture(scope="module")
def authors() -> SimpleNamespace:
    return load_authors()


@pytest.fixture(scope="module")
def landers() -> dict:
    pytest.importorskip("Box2D", reason="LunarLander needs gymnasium[box2d]")
    return {policy: _lander(policy) for policy in ("random", "heuristic")}


@pytest.fixture(scope="module", params=["random", "heuristic"])
def fitted(request, landers, authors) -> SimpleNamespace:
    """One lander dataset's joined rows, seqrl's discretizer and the authors' on them."""
    cfg = tiny_tt_config(num_bins=N)
    joined = run_transitions(landers[request.param], cfg)  # (n, T) [state, action, reward, value]
    assert len(joined) % N == 0
    return SimpleNamespace(policy=request.param, joined=joined, ours=fit_discretizer(joined, N, "quantile"),
                           theirs=quantile_discretizer(authors, joined, N))


def _distinct_threshold_columns(theirs) -> list[int]:
    return [c for c in range(theirs.thresholds.shape[1]) if len(np.unique(theirs.thresholds[:, c])) == N + 1]


# --------------------------------------------------------------------------- 1. discretization
def test_quantile_edges_and_token_ids_equal_the_authors_where_their_thresholds_are_distinct(fitted):
    ours, theirs, joined = fitted.ours, fitted.theirs, fitted.joined
    columns = _distinct_threshold_columns(theirs)
    # All but the leg contacts (and, for the heuristic, its actions clipped at +-1) are continuous.
    assert {0, 1, 2, 3, 4, 5, 10, 11} <= set(columns) and not set(LEGS) & set(columns)
    assert len(columns) == (10 if fitted.policy == "random" else 9)
    lows, highs = joined.min(0), joined.max(0)
    edges = np.stack([ours.edges[c] for c in columns], 1)  # (N + 1, C)
    thresholds = theirs.thresholds[:, columns].astype(np.float32)
    np.testing.assert_array_equal(edges, thresholds)
    # Token ids on the data, on every edge, between edges, below the minimum and above the maximum.
    between = (theirs.thresholds[:-1] + theirs.thresholds[1:]) / 2
    outside = np.stack([lows - 1.0, highs + 1.0, lows - 1e6, highs + 1e6])
    probes = np.concatenate([joined, theirs.thresholds, between, outside]).astype(np.float32)
    local = ours.encode(probes) - ours.offsets
    np.testing.assert_array_equal(local[:, columns], theirs.discretize(probes)[:, columns])
    assert (local[-4:, columns] == [[0], [N - 1], [0], [N - 1]]).all()
    assert (ours.bins_per_feature[columns] == N).all()


def test_repeated_values_get_fewer_seqrl_bins_and_atoms_a_bin_of_their_own(fitted):
    """Where the authors' thresholds repeat: seqrl has fewer bins, each edge once, and an atom of
    its own; both bin maps are monotone in the value."""
    ours, theirs, joined = fitted.ours, fitted.theirs, fitted.joined
    repeated = sorted(set(range(joined.shape[1])) - set(_distinct_threshold_columns(theirs)))
    assert repeated == (LEGS if fitted.policy == "random" else [*LEGS, 8])  # 8: the heuristic's clipped main engine
    local = ours.encode(joined) - ours.offsets
    authors_bins = theirs.discretize(joined)
    split = []
    for c in repeated:
        thresholds = theirs.thresholds[:, c].astype(np.float32)
        values, counts = np.unique(thresholds, return_counts=True)
        atoms = values[counts >= 2]
        assert len(values) < N + 1 and len(atoms)  # the authors' thresholds have duplicates here...
        assert ours.bins_per_feature[c] < N  # ...and seqrl fewer bins
        # seqrl's edges: the authors' distinct thresholds, plus the float just above each atom.
        allowed = np.concatenate([values, np.nextafter(atoms, np.float32(np.inf))])
        assert np.isin(ours.edges[c], allowed).all()
        # Monotone together: sorted by the authors' bin, seqrl's bin never decreases.
        order = np.lexsort((local[:, c], authors_bins[:, c]))
        assert (np.diff(local[order, c]) >= 0).all()
        # Where seqrl's bin is not a function of the authors' bin, the authors' bin holds an atom
        # and values above it, and seqrl has split the atom off.
        for k in np.unique(authors_bins[:, c]):
            rows = joined[authors_bins[:, c] == k, c]
            if len(np.unique(local[authors_bins[:, c] == k, c])) > 1:
                assert rows.min() in atoms and (rows > rows.min()).any()
                atom_bins = local[authors_bins[:, c] == k, c][rows == rows.min()]
                assert len(np.unique(atom_bins)) == 1 and ours.values[c][atom_bins[0]] == rows.min()
                split.append((c, int(k)))
    # Every distinct value of a leg contact keeps a distinct seqrl token and decodes exactly.
    for c in LEGS:
        contact = np.unique(joined[:, c])
        np.testing.assert_array_equal(contact, [0.0, 1.0])
        rows = np.zeros((2, joined.shape[1]), np.float32)
        rows[:, c] = contact
        ids = ours.encode(rows)[:, c]
        assert ids[0] != ids[1]
        np.testing.assert_array_equal(ours.decode(ours.encode(rows))[:, c], contact)
    if fitted.policy == "random":
        # Fewer than n/N contacts: the authors bin contact and no contact together (bin N-1, midpoint 0.5).
        rows = np.zeros((2, joined.shape[1]), np.float32)
        rows[1, LEGS] = 1.0
        assert (theirs.discretize(rows)[:, LEGS] == N - 1).all()
        np.testing.assert_array_equal(theirs.reconstruct(theirs.discretize(rows))[:, LEGS], 0.5)
        assert split == [(6, N - 1), (7, N - 1)]
    else:
        # The main engine's -1 (clipped) shares an authors' bin with the values up to their next threshold.
        assert [c for c, _ in split] == [8]


def test_decoding_to_bin_means_and_to_midpoints_both_stay_in_the_bin(fitted):
    ours, theirs, joined = fitted.ours, fitted.theirs, fitted.joined
    columns = _distinct_threshold_columns(theirs)
    ids = np.tile(np.arange(N)[:, None], (1, joined.shape[1])) + ours.offsets  # every bin of every column
    ids = np.minimum(ids, ours.offsets + ours.bins_per_feature - 1)
    ours_values = ours.decode(ids)[:, columns]  # (N, C) bin means
    theirs_values = theirs.reconstruct(np.tile(np.arange(N)[:, None], (1, joined.shape[1])))[:, columns]
    lo, hi = theirs.thresholds[:-1, columns], theirs.thresholds[1:, columns]
    # Bins are [lo, hi) (the last closed, but its mean stays below the maximum here); midpoints in [lo, hi].
    assert ((lo <= ours_values) & (ours_values < hi)).all()
    assert ((lo <= theirs_values) & (theirs_values <= hi)).all()
    assert not np.allclose(ours_values, theirs_values)  # a real difference...
    # ...and the reason for it: on the training rows, bin means have the smaller squared error.
    rows = joined.astype(np.float64)
    error_ours = ((ours.decode(ours.encode(joined)) - rows) ** 2)[:, columns].mean(0)
    error_theirs = ((theirs.reconstruct(theirs.discretize(joined)) - rows) ** 2)[:, columns].mean(0)
    assert (error_ours <= error_theirs * (1 + 1e-6)).all() and (error_ours < error_theirs).any()


# --------------------------------------------------------------------------- the two models
def _train(model: TrajectoryTransformer, data, discretizer, joined, steps: int = 80) -> None:
    """A few real training steps, so the logits are far from the near-uniform initial ones (head bias held at 0)."""
    sampler = TransitionWindowSampler(data, discretizer, sequence_length=SEQUENCE_LENGTH, joined=joined)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(steps):
        loss = model.loss(sampler.sample(32, rng).to_torch())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()


def _authors_config(model: TrajectoryTransformer, cfg) -> SimpleNamespace:
    return SimpleNamespace(
        vocab_size=N, transition_dim=model.transition_dim, observation_dim=model.observation_dim,
        action_dim=model.action_dim, block_size=model.block_size, n_embd=cfg.embed_dim, n_head=cfg.n_heads,
        n_layer=cfg.n_layers, embd_pdrop=0.0, resid_pdrop=0.0, attn_pdrop=0.0,
        action_weight=cfg.action_weight, reward_weight=cfg.reward_weight, value_weight=cfg.value_weight,
    )


def authors_state_dict(model: TrajectoryTransformer, reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """seqrl's weights under the authors' names (`reference`: the authors' model's own state dict).

    Every parameter of theirs is assigned once, with its shape checked; the attention masks
    (buffers) keep the authors' own values.
    """
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    T, D = model.transition_dim, ours["embed_tokens.weight"].shape[1]
    offsets, bins = model.discretizer.offsets, model.discretizer.bins_per_feature
    assert (bins == N).all(), "every column must have exactly N bins for the heads to correspond"
    assert float(ours["head_bias"].abs().max()) == 0.0, "the authors' head has no bias: hold seqrl's at zero"
    state: dict[str, torch.Tensor] = {}

    def put(name: str, value: torch.Tensor) -> None:
        assert name in reference and name not in state, name
        assert value.shape == reference[name].shape, (name, tuple(value.shape), tuple(reference[name].shape))
        state[name] = value.clone()

    # Token embeddings: seqrl's id offsets[i] + j is the authors' i*N + j; their last row is the stop token.
    tokens = torch.zeros(N * T + 1, D)
    for i in range(T):
        tokens[i * N : (i + 1) * N] = ours["embed_tokens.weight"][offsets[i] : offsets[i] + N]
    put("tok_emb.weight", tokens)
    put("pos_emb", ours["embed_position.weight"][None])
    for layer in range(len(model.trunk.blocks)):
        a, b = f"trunk.blocks.{layer}.", f"blocks.{layer}."
        for ln_ours, ln_theirs in (("ln_1", "ln1"), ("ln_2", "ln2")):
            for p in ("weight", "bias"):
                put(f"{b}{ln_theirs}.{p}", ours[f"{a}{ln_ours}.{p}"])
        # seqrl's fused projection is (q, k, v) stacked (models/gpt.py splits it in that order).
        for p in ("weight", "bias"):
            q, k, v = ours[f"{a}attn.qkv.{p}"].split(D)
            put(f"{b}attn.query.{p}", q)
            put(f"{b}attn.key.{p}", k)
            put(f"{b}attn.value.{p}", v)
            put(f"{b}attn.proj.{p}", ours[f"{a}attn.proj.{p}"])
            put(f"{b}mlp.0.{p}", ours[f"{a}mlp.fc.{p}"])
            put(f"{b}mlp.2.{p}", ours[f"{a}mlp.proj.{p}"])
    for p in ("weight", "bias"):
        put(f"ln_f.{p}", ours[f"trunk.ln_f.{p}"])
    # Head: seqrl's (T, N, D) per-position weights; the authors' (T, N + 1, D) adds the stop class (zeros).
    head = torch.zeros(T, N + 1, D)
    head[:, :N] = ours["head_weight"]
    put("head.weight", head)
    buffers = {k for k in reference if k.endswith("attn.mask")}
    assert set(reference) - set(state) == buffers
    state.update({k: reference[k] for k in buffers})
    return state


@pytest.fixture(scope="module")
def models(landers, authors) -> SimpleNamespace:
    """seqrl's TT (trained a few steps on real windows) and the authors' GPT with its weights."""
    raw = landers["random"]
    keep = [c for c in range(raw.obs_dim) if c not in LEGS]
    data = dataclasses.replace(raw, observations=raw.observations[:, keep], final_observations=(
        None if raw.final_observations is None else raw.final_observations[:, keep]))
    cfg = tiny_tt_config(num_bins=N, sequence_length=SEQUENCE_LENGTH, embed_dim=32, n_layers=2, n_heads=2)
    assert cfg.mask_values and cfg.dropout == 0.0  # the default: value tokens masked, as the authors' model
    joined = run_transitions(data, cfg)
    discretizer = fit_discretizer(joined, N, "quantile")
    spec = DataSpec.from_dataset(data, rtg_scale=1.0, targets=())
    torch.manual_seed(0)
    model = TrajectoryTransformer(cfg, spec, TorchActionTokenizer(discretizer))
    model.head_bias.requires_grad_(False)  # zero, as the authors' head has no bias
    _train(model, data, discretizer, joined)
    theirs = authors.transformers.GPT(_authors_config(model, cfg))
    theirs.load_state_dict(authors_state_dict(model, theirs.state_dict()))
    theirs.eval()
    unmasked_cfg = dataclasses.replace(cfg, mask_values=False)  # the same weights, value tokens visible
    unmasked = TrajectoryTransformer(unmasked_cfg, spec, TorchActionTokenizer(discretizer))
    unmasked.load_state_dict(model.state_dict())
    unmasked.eval()
    tokens = torch.from_numpy(discretizer.encode(joined))  # (n, T) seqrl ids
    return SimpleNamespace(ours=model, theirs=theirs, unmasked=unmasked, data=data, joined=joined,
                           discretizer=discretizer, tokens=tokens, offsets=model.discretizer.offsets, cfg=cfg)


@contextmanager
def stop_suppressed(gpt):
    """The authors' model with its stop-token logit at -1e9 (seqrl has no stop token)."""
    handle = gpt.head.register_forward_hook(lambda module, inputs, out: out.index_fill(-1, torch.tensor([N]), STOP))
    try:
        yield gpt
    finally:
        handle.remove()


def _windows(m, starts: np.ndarray, length: int = SEQUENCE_LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, length*T) seqrl ids of windows from `starts`, right-padded with local id 0; (B, length*T) real mask."""
    ends = m.data.episode_ends[m.data.episode_index[starts]]
    positions = starts[:, None] + np.arange(length)[None]
    real = torch.from_numpy(positions < ends[:, None])
    padding = m.offsets.expand(len(starts), length, -1)
    rows = m.tokens[torch.from_numpy(np.minimum(positions, len(m.tokens) - 1))]
    tokens = torch.where(real[..., None], rows, padding)
    return tokens.flatten(1), real[..., None].expand(-1, -1, m.ours.transition_dim).flatten(1)


def _full_window_starts(m, count: int, seed: int = 0) -> np.ndarray:
    ends = m.data.episode_ends[m.data.episode_index]
    valid = np.flatnonzero(np.arange(len(ends)) + SEQUENCE_LENGTH <= ends)
    return np.random.default_rng(seed).choice(valid, count, replace=False)


def _local(m, tokens: torch.Tensor) -> torch.Tensor:
    """seqrl ids (windows starting at a transition boundary) -> the authors' local ids."""
    dims = torch.arange(tokens.shape[-1]) % m.ours.transition_dim
    return tokens - m.offsets[dims]


# --------------------------------------------------------------------------- 2. logits
def test_logits_equal_the_authors_at_every_position_of_real_windows(models):
    m = models
    tokens, real = _windows(m, _full_window_starts(m, 24))
    assert real.all()
    T = m.ours.transition_dim
    with torch.no_grad():
        for length in (m.ours.block_size, 3 * T + 7):  # a whole training input, and one ending mid-transition
            ours = m.ours(tokens[:, :length])
            theirs, _ = m.theirs(_local(m, tokens[:, :length]))
            assert theirs.shape == (*ours.shape[:2], N + 1) and torch.isfinite(ours).all()
            torch.testing.assert_close(ours, theirs[..., :N], atol=1e-5, rtol=0)
            assert float(ours.std()) > 0.3  # trained: far from uniform logits

        # Without value masking (the bug the default fixed): equal only before the first value token.
        unmasked = m.unmasked(tokens[:, :-1])
        theirs, _ = m.theirs(_local(m, tokens[:, :-1]))
        torch.testing.assert_close(unmasked[:, : T - 1], theirs[:, : T - 1, :N], atol=1e-5, rtol=0)
        assert float((unmasked[:, T - 1 :] - theirs[:, T - 1 :, :N]).abs().max()) > 1e-2


def test_value_tokens_in_the_context_change_no_prediction_but_their_own(models):
    m = models
    tokens, _ = _windows(m, _full_window_starts(m, 8, seed=1))
    tokens = tokens[:, :-1]
    T = m.ours.transition_dim
    value = torch.arange(tokens.shape[1]) % T == T - 1
    replaced = tokens.clone()
    g = torch.Generator().manual_seed(0)
    replaced[:, value] = m.offsets[T - 1] + torch.randint(0, N, (len(tokens), int(value.sum())), generator=g)
    assert (replaced != tokens).any()
    with torch.no_grad():
        for model in (m.ours, lambda x: m.theirs(_local(m, x))[0][..., :N]):
            before, after = model(tokens), model(replaced)
            # A value token's own position reads its embedding (its query), nothing later attends to it.
            torch.testing.assert_close(after[:, ~value], before[:, ~value], atol=1e-6, rtol=0)
            assert float((after[:, value] - before[:, value]).abs().max()) > 1e-3
        before, after = m.unmasked(tokens), m.unmasked(replaced)
        assert float((after[:, ~value] - before[:, ~value]).abs().max()) > 1e-3  # seen when not masked


# --------------------------------------------------------------------------- 3. loss
def test_loss_equals_the_authors_on_full_windows(models):
    m = models
    tokens, real = _windows(m, _full_window_starts(m, 32, seed=2))
    local = _local(m, tokens)
    assert m.cfg.action_weight == m.theirs.action_weight == 5.0
    with torch.no_grad(), stop_suppressed(m.theirs):
        ours, _ = m.ours.loss_terms(TokenBatch(tokens, real))
        _, theirs = m.theirs(local[:, :-1], targets=local[:, 1:].contiguous(), mask=torch.ones_like(local[:, 1:]))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    # Without the suppression, the authors' extra stop class takes some probability mass.
    with torch.no_grad():
        _, with_stop = m.theirs(local[:, :-1], targets=local[:, 1:].contiguous(), mask=torch.ones_like(local[:, 1:]))
    assert float(with_stop - theirs) > 1e-4


def test_padded_windows_seqrl_averages_over_real_targets_the_authors_over_all(models):
    """Windows running past their episode's end, padded targets masked out of both losses: the same
    sum, divided by the real targets (seqrl) or by all targets (the authors). (The authors' own
    dataset does not mask them: it makes them stop tokens, which seqrl does not have.)"""
    m = models
    ends, episode_starts = m.data.episode_ends, m.data.episode_starts
    starts = np.maximum(np.concatenate([ends - 2, ends - 4]), np.tile(episode_starts, 2))  # 2 or 4 real, then padding
    tokens, real = _windows(m, starts)
    targets_real = real[:, 1:]
    assert not targets_real.all() and targets_real.any()
    local = _local(m, tokens)
    with torch.no_grad(), stop_suppressed(m.theirs):
        ours, _ = m.ours.loss_terms(TokenBatch(tokens, real))
        _, theirs = m.theirs(local[:, :-1], targets=local[:, 1:].contiguous(), mask=targets_real.float())
    ratio = float(targets_real.sum()) / targets_real.numel()
    torch.testing.assert_close(theirs / ours, torch.tensor(ratio), atol=0, rtol=1e-5)


# --------------------------------------------------------------------------- 4. plans
def test_filter_logits_drops_what_the_authors_filter_cdf_drops(models, authors):
    m = models
    g = torch.Generator().manual_seed(0)
    random_rows = torch.randn(8000, N, generator=g)
    tokens, _ = _windows(m, _full_window_starts(m, 48, seed=3))
    with torch.no_grad():
        logits = m.ours(tokens[:, :-1])
    T, obs = m.ours.transition_dim, m.ours.observation_dim
    predicts_action = (torch.arange(tokens.shape[1] - 1) + 1) % T
    predicts_action = (predicts_action >= obs) & (predicts_action < obs + m.ours.action_dim)
    model_rows = logits[:, predicts_action].reshape(-1, N)
    for rows in (random_rows, model_rows):
        for cdf in (0.6, 0.3, 0.9):
            ours = filter_logits(rows, cdf, None)
            theirs = authors.sampling.filter_cdf(rows, cdf)
            np.testing.assert_array_equal(torch.isinf(ours).numpy(), (theirs == -1000).numpy())
            kept = torch.isfinite(ours)
            torch.testing.assert_close(ours[kept], rows[kept], atol=0, rtol=0)
            probs = rows.softmax(-1)
            mass = (probs * kept).sum(-1)
            smallest_kept = probs.masked_fill(~kept, 2.0).min(-1).values
            # About the most likely 1 - cdf of the mass stays: more than that, less with one bin fewer.
            assert (mass > 1 - cdf - 1e-6).all() and (mass - smallest_kept <= 1 - cdf + 1e-6).all()
        assert (torch.isinf(filter_logits(rows, 0.6, None)).sum(-1) > 0).all()
        # With a top-k too: the cdf filter first, then the k most likely, in both.
        theirs = authors.sampling.top_k_logits(authors.sampling.filter_cdf(rows, 0.3), 4)
        np.testing.assert_array_equal(torch.isinf(filter_logits(rows, 0.3, 4)).numpy(), (theirs <= -1000).numpy())


class SharedNoise:
    """One Gumbel noise table for both planners: table[call, beam, expansion, bin].

    seqrl asks for noise once per sampled action token (`gumbel_noise`), for rows ordered beam-major
    (row = b*E + e, `repeat_interleave`); the authors' `sample` calls `torch.multinomial` once per
    generated token, for rows ordered expansion-major (row = e*B + b, `x.repeat(n_expand, 1)`).
    Their multinomial becomes argmax(log(probs) + noise): the Gumbel-max draw seqrl makes from its
    filtered logits. Their reward, value and observation tokens come from a top-1 filter (one-hot
    probabilities), which need no noise.
    """

    def __init__(self, horizon: int, beam: int, expansion: int, obs_dim: int, act_dim: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        uniform = torch.rand(horizon * act_dim, beam, expansion, N, generator=g).clamp(1e-20, 1 - 1e-7)
        self.table = -torch.log(-torch.log(uniform))
        self.B, self.E = beam, expansion
        # What each of the authors' multinomial calls samples, in order.
        self.schedule = []
        for t in range(horizon):
            self.schedule += ["action"] * act_dim + ["reward", "value"] + ["obs"] * (obs_dim if t < horizon - 1 else 0)
        self.ours_calls = self.theirs_calls = self.theirs_actions = 0

    def ours(self, generators, rows_per_env: int, bins: int, device) -> torch.Tensor:
        assert len(generators) == 1 and (rows_per_env, bins) == (self.B * self.E, N)
        noise = self.table[self.ours_calls].reshape(self.B * self.E, N)  # row b*E + e
        self.ours_calls += 1
        return noise

    def multinomial(self, probs: torch.Tensor, num_samples: int) -> torch.Tensor:
        assert num_samples == 1 and probs.shape[1] == N + 1
        kind = self.schedule[self.theirs_calls]
        self.theirs_calls += 1
        assert float(probs[:, N].max()) == 0.0  # the stop token is suppressed
        if kind != "action":
            assert (probs.max(-1).values == 1.0).all()  # top-1: deterministic
            return probs.argmax(-1, keepdim=True)
        assert probs.shape[0] == self.E * self.B
        noise = self.table[self.theirs_actions].transpose(0, 1).reshape(self.E * self.B, N)  # row e*B + b
        self.theirs_actions += 1
        noise = torch.cat([noise, torch.zeros(len(noise), 1)], dim=1)
        return (probs.log() + noise).argmax(-1, keepdim=True)


class _TorchWithMultinomial:
    """`torch` for the authors' sampling module, with `multinomial` replaced."""

    def __init__(self, multinomial) -> None:
        self.multinomial = multinomial

    def __getattr__(self, name: str):
        return getattr(torch, name)


def _authors_value_fn(table: torch.Tensor, obs_dim: int, act_dim: int):
    """Expected reward and value under the authors' predicted distributions, renormalised over the
    N real bins (the stop token holds no mass here), decoded to seqrl's bin means."""

    def value_fn(r_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = r_probs[:, :, :N] / r_probs[:, :, :N].sum(-1, keepdim=True)  # (R, 2, N)
        return probs[:, 0] @ table[obs_dim + act_dim], probs[:, 1] @ table[obs_dim + act_dim + 1]

    return value_fn


PLAN_CASES = [
    pytest.param(dict(action_top_k=1, action_cdf=None), id="greedy"),
    pytest.param(dict(action_top_k=None, action_cdf=0.6), id="cdf0.6"),
    pytest.param(dict(action_top_k=None, action_cdf=None), id="sampled"),
    pytest.param(dict(action_top_k=4, action_cdf=0.3), id="cdf0.3-top4"),
]


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("case", PLAN_CASES)
def test_beam_plan_equals_the_authors(models, authors, monkeypatch, case, use_cache):
    m = models
    T, obs_dim, act_dim = m.ours.transition_dim, m.ours.observation_dim, m.ours.action_dim
    H, B, E, context = 4, 6, 2, 5
    settings = PlannerSettings(mode="reward", horizon=H, beam_width=B, expansion=E, context_transitions=context,
                               discount=0.99, use_cache=use_cache, **case)
    assert context * T - 1 < m.ours.block_size  # the context crop, not the block size, limits the window
    start = int(m.data.episode_starts[3]) + 10  # a real prefix: 3 transitions, then the current observation
    assert start + 4 <= m.data.episode_ends[3]
    prefix = m.tokens[start : start + 4].flatten()[: 3 * T + obs_dim][None]  # (1, L0) seqrl ids
    noise = SharedNoise(H, B, E, obs_dim, act_dim)
    monkeypatch.setattr(seqrl_planner, "gumbel_noise", noise.ours)
    monkeypatch.setattr(authors.sampling, "torch", _TorchWithMultinomial(noise.multinomial))

    ours = beam_plan(m.ours, prefix, settings, [torch.Generator().manual_seed(0)])[0]  # (H, T) seqrl ids
    with stop_suppressed(m.theirs):
        theirs = authors.core.beam_plan(
            m.theirs, _authors_value_fn(m.ours.discretizer.value_table, obs_dim, act_dim), _local(m, prefix),
            H, B, E, obs_dim, act_dim, discount=0.99, max_context_transitions=context,
            k_obs=1, k_act=case["action_top_k"], cdf_act=case["action_cdf"], verbose=False,
        )
    assert noise.ours_calls == noise.theirs_actions == H * act_dim and noise.theirs_calls == len(noise.schedule)
    assert theirs.shape == (H, T)
    np.testing.assert_array_equal(_local(m, ours.flatten()).view(H, T).numpy(), theirs.numpy())
    np.testing.assert_array_equal(ours[0, :obs_dim].numpy(), prefix[0, -obs_dim:].numpy())  # from the current state
    # The context's value tokens are masked: the authors' placeholder (1e6, their top bin) plans the same.
    placeholder = prefix.clone()
    placeholder[0, T - 1 : 3 * T : T] = m.offsets[T - 1] + N - 1
    assert not torch.equal(placeholder, prefix)
    monkeypatch.setattr(seqrl_planner, "gumbel_noise", SharedNoise(H, B, E, obs_dim, act_dim).ours)
    assert torch.equal(beam_plan(m.ours, placeholder, settings, [torch.Generator().manual_seed(0)])[0], ours)
    if case["action_top_k"] != 1:  # sampled plans: the shared noise matters (another table plans otherwise)
        monkeypatch.setattr(seqrl_planner, "gumbel_noise", SharedNoise(H, B, E, obs_dim, act_dim, seed=1).ours)
        again = beam_plan(m.ours, prefix, settings, [torch.Generator().manual_seed(0)])[0]
        assert not torch.equal(again[:, obs_dim : obs_dim + act_dim], ours[:, obs_dim : obs_dim + act_dim])
