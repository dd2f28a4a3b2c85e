"""Quantile edges pinned to the definition the tokenizer's docstring states.

"quantile": edge k is the data value at quantile k/num_bins, the inverted-CDF quantile (the
smallest data value with at least that fraction of the data at or below it), so every edge is
an actual action value. On small hand-made columns the exact edges can be written down; an
off-by-one in the quantile index, or numpy's default (linear interpolation) quantile, gives
other edges.
"""

from __future__ import annotations

import numpy as np
import pytest

from seqrl.data.tokenizer import ActionTokenizer


def edges_of(column, num_bins):
    column = np.asarray(column, np.float32)
    return ActionTokenizer.fit(column[:, None], num_bins, strategy="quantile").edges[0]


def test_ten_distinct_values_five_bins():
    # n = 10 sorted values v_1..v_10; quantile k/5 is v_ceil(10k/5) = v_2k (v_1 for k = 0):
    #   k: 0 -> v_1, 1 -> v_2, 2 -> v_4, 3 -> v_6, 4 -> v_8, 5 -> v_10
    values = [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 127.0, 255.0, 511.0]  # uneven gaps
    shuffled = np.random.default_rng(0).permutation(values)
    np.testing.assert_array_equal(edges_of(shuffled, 5), [0.0, 1.0, 7.0, 31.0, 127.0, 511.0])


def test_edges_fall_on_the_smallest_value_reaching_each_fraction():
    # n = 8, 4 bins: quantile k/4 is v_ceil(8k/4) = v_2k: v_1, v_2, v_4, v_6, v_8.
    np.testing.assert_array_equal(edges_of([10, 20, 30, 40, 50, 60, 70, 80], 4), [10, 20, 40, 60, 80])
    # n = 7, 3 bins: ceil(7/3) = 3, ceil(14/3) = 5: v_1, v_3, v_5, v_7.
    np.testing.assert_array_equal(edges_of([1, 2, 3, 4, 5, 6, 7], 3), [1, 3, 5, 7])
    # n = 5, 2 bins: ceil(5/2) = 3: v_1, v_3, v_5.
    np.testing.assert_array_equal(edges_of([-2.0, -1.0, 0.5, 4.0, 9.0], 2), [-2.0, 0.5, 9.0])


def test_every_edge_is_a_data_value():
    column = np.random.default_rng(1).normal(size=37).astype(np.float32)
    edges = edges_of(column, 6)
    assert np.isin(edges, column).all()
    # ... the ones numpy's inverted_cdf method gives.
    np.testing.assert_array_equal(edges, np.quantile(column, np.arange(7) / 6, method="inverted_cdf"))


def test_a_repeated_value_gets_a_bin_of_its_own():
    # n = 8, 4 bins: v_1, v_2, v_4, v_6, v_8 = -1, -1, -1, 0.2, 0.4. The -1 fills whole quantile
    # bins on its own (an atom), so it keeps one edge and gets the bin [-1, nextafter(-1)).
    column = [0.4, -1.0, 0.1, -1.0, 0.3, -1.0, 0.2, -1.0]
    atom_top = np.nextafter(np.float32(-1.0), np.float32(np.inf))
    np.testing.assert_array_equal(edges_of(column, 4), np.array([-1.0, atom_top, 0.2, 0.4], np.float32))
    tok = ActionTokenizer.fit(np.asarray(column, np.float32)[:, None], 4, strategy="quantile")
    assert tok.decode(tok.encode(np.array([[-1.0]])))[0, 0] == -1.0  # decodes to exactly -1


@pytest.mark.parametrize("n, num_bins", [(10, 5), (8, 4), (100, 7), (1000, 300)])
def test_bin_occupancy_on_distinct_values(n, num_bins):
    """Bin k holds the values from v_ceil(nk/B) up to v_ceil(n(k+1)/B) - 1 (the last bin closed)."""
    column = np.arange(n, dtype=np.float32)
    tok = ActionTokenizer.fit(column[:, None], num_bins, strategy="quantile")
    counts = np.bincount(tok.encode(column[:, None])[:, 0], minlength=num_bins)
    index = [max(int(np.ceil(n * k / num_bins)) - 1, 0) for k in range(num_bins + 1)]
    expected = np.diff(index)
    expected[-1] += 1  # the maximum sits in the last, closed bin
    np.testing.assert_array_equal(counts, expected)
