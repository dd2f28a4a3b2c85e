"""Quantile edges pinned to the definition the tokenizer's docstring states.

"quantile": edge k is the sorted value at index floor(k n / num_bins) (the smallest data value
with more than k/num_bins of the data at or below it), the last edge the maximum, so every edge
is an actual action value and bin k holds an equal share of the data: the Trajectory
Transformer authors' QuantileDiscretizer wherever num_bins divides n. On small hand-made columns
the exact edges can be written down; an off-by-one in the quantile index, or numpy's default
(linear interpolation) quantile, gives other edges.
"""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.data.tokenizer import ActionTokenizer


def edges_of(column, num_bins):
    column = np.asarray(column, np.float32)
    return ActionTokenizer.fit(column[:, None], num_bins, strategy="quantile").edges[0]


def test_ten_distinct_values_five_bins():
    # n = 10 sorted values s_0..s_9; edge k is s_floor(10k/5) = s_2k, the last the maximum s_9:
    #   k: 0 -> s_0, 1 -> s_2, 2 -> s_4, 3 -> s_6, 4 -> s_8, 5 -> s_9
    values = [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 127.0, 255.0, 511.0]  # uneven gaps
    shuffled = np.random.default_rng(0).permutation(values)
    np.testing.assert_array_equal(edges_of(shuffled, 5), [0.0, 3.0, 15.0, 63.0, 255.0, 511.0])


def test_edges_fall_on_the_smallest_value_passing_each_fraction():
    # n = 8, 4 bins: s_0, s_2, s_4, s_6, then the maximum s_7.
    np.testing.assert_array_equal(edges_of([10, 20, 30, 40, 50, 60, 70, 80], 4), [10, 30, 50, 70, 80])
    # n = 7, 3 bins: floor(7/3) = 2, floor(14/3) = 4: s_0, s_2, s_4, s_6.
    np.testing.assert_array_equal(edges_of([1, 2, 3, 4, 5, 6, 7], 3), [1, 3, 5, 7])
    # n = 5, 2 bins: floor(5/2) = 2: s_0, s_2, s_4.
    np.testing.assert_array_equal(edges_of([-2.0, -1.0, 0.5, 4.0, 9.0], 2), [-2.0, 0.5, 9.0])


def test_every_edge_is_a_data_value():
    column = np.random.default_rng(1).normal(size=37).astype(np.float32)
    edges = edges_of(column, 6)
    assert np.isin(edges, column).all()
    # ... the TT authors' thresholds where the bin count divides n: every n/N-th sorted value, then the maximum.
    column = np.random.default_rng(2).normal(size=36).astype(np.float32)
    ordered = np.sort(column)
    np.testing.assert_array_equal(edges_of(column, 6), np.concatenate([ordered[::6], ordered[-1:]]))


def test_a_repeated_value_gets_a_bin_of_its_own():
    # n = 8, 4 bins: s_0, s_2, s_4, s_6, s_7 = -1, -1, 0.1, 0.3, 0.4. The -1 fills a whole quantile
    # bin on its own (an atom), so it keeps one edge and gets the bin [-1, nextafter(-1)); the
    # bin [nextafter(-1), 0.1) above it would hold nothing and joins it, which leaves [-1, 0.1)
    # holding the -1s alone.
    column = [0.4, -1.0, 0.1, -1.0, 0.3, -1.0, 0.2, -1.0]
    np.testing.assert_array_equal(edges_of(column, 4), np.array([-1.0, 0.1, 0.3, 0.4], np.float32))
    # five -1s of 8: s_0, s_2, s_4 are -1, s_6 = 0.3: the atom's own bin [-1, nextafter(-1)) stays,
    # as the bin above it holds the 0.2.
    column = [0.4, -1.0, -1.0, -1.0, 0.3, -1.0, 0.2, -1.0]
    atom_top = np.nextafter(np.float32(-1.0), np.float32(np.inf))
    np.testing.assert_array_equal(edges_of(column, 4), np.array([-1.0, atom_top, 0.3, 0.4], np.float32))
    tok = ActionTokenizer.fit(np.asarray(column, np.float32)[:, None], 4, strategy="quantile")
    assert tok.decode(tok.encode(np.array([[-1.0]])))[0, 0] == -1.0  # decodes to exactly -1


@pytest.mark.parametrize("n, num_bins", [(10, 5), (8, 4), (100, 7), (1000, 300)])
def test_bin_occupancy_on_distinct_values(n, num_bins):
    """Bin k holds the sorted values s_floor(nk/B) up to s_floor(n(k+1)/B) - 1 (the last bin up to the maximum)."""
    column = np.arange(n, dtype=np.float32)
    tok = ActionTokenizer.fit(column[:, None], num_bins, strategy="quantile")
    counts = np.bincount(tok.encode(column[:, None])[:, 0], minlength=num_bins)
    expected = np.diff([n * k // num_bins for k in range(num_bins)] + [n])
    np.testing.assert_array_equal(counts, expected)
