"""Action tokenizers for the Decision Transformer with a tokenized action space.

Each continuous action feature i gets its own quantizer Q_i (Annett & Andersen). With per-feature
offsets (the default) feature i's tokens occupy their own slice of one vocabulary,

    T_i = Q_i(a_i) + sum_{j<i} |Q_j|,       vocab_size = sum_i |Q_i|,

and with `shared_range=True` (the paper's ablation) every feature uses the same ids,
T_i = Q_i(a_i) and vocab_size = max_i |Q_i|.

Two classes:

- `ActionTokenizer` (numpy) is fitted once on a dataset's actions and saved in checkpoints
  through `state_dict()` / `from_state_dict()` (plain Python lists, numbers and strings, so
  `torch.load(weights_only=True)` and JSON both read it back exactly).
- `TorchActionTokenizer` (an `nn.Module`) holds the same tables as buffers and encodes and
  decodes on the model's device every training step; it agrees with the numpy class bit for bit.

How bins are chosen (the choices a user can observe):

- "quantile": edge k is the sorted data value at index floor(k N / num_bins), the last edge the
  maximum (so every edge is an actual action value, and these are the TT authors' edges when
  num_bins divides N). On continuous data every bin holds N/num_bins actions (to within one).
- "uniform": num_bins equal-width bins over [low, high] (the action space bounds when given,
  otherwise the data's min/max, per feature).
- Bins never collapse. Repeated values (actions clipped at +-1, a constant feature, few samples)
  make quantile edges coincide; we keep one copy of each edge, so such a feature gets FEWER bins
  and `bins_per_feature` (|Q_i|) differs between features; the offsets use these real counts.
  A value that fills at least one whole quantile bin on its own (an "atom", such as the +-1 of a
  clipped action) additionally gets a bin of its own, [v, nextafter(v)), so it decodes to exactly
  v instead of being averaged with its neighbours.
- A feature that holds the indices 0..n-1 of a Discrete(n) action (`index_features`) is not
  binned: it gets exactly n bins, [k, k+1) decoding to k, so every index is its own token and
  decodes to itself, whatever num_bins and the strategy are. Quantile bins that end up holding no training
  action are merged into their left neighbour. A constant feature gets a single bin. Hence
  1 <= bins_per_feature[i] <= num_bins, and every bin has positive width.
- Edges are float32 (actions are float32 in every source), so numpy and torch compare the same
  numbers; inputs are compared in the wider of float32 and their own dtype, never rounded.
- Bin k of feature i is [edges[i][k], edges[i][k+1]), the last bin closed on the right. Values
  below the fitted range go to the first bin, values above it to the last.
- The value a token decodes to is the mean of the training actions that fell in its bin (the
  reconstruction that minimises squared error on the data); a bin with no training action
  (possible for uniform bins) decodes to its centre. Either is nudged into the bin if float
  round-off put it outside, so `encode(decode(ids)) == ids` always holds.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from seqrl.errors import CheckpointError, ConfigError

STRATEGIES = ("quantile", "uniform")
# Bump when the state_dict layout changes; from_state_dict refuses versions it does not know.
STATE_FORMAT_VERSION = 1

_F32_INF = np.float32(np.inf)


def _next_up(x: np.ndarray | np.floating) -> np.ndarray:
    """The next float32 above x: the smallest step that gives a bin positive width."""
    with np.errstate(over="ignore"):  # float32's max steps to inf; callers check for that
        return np.nextafter(np.asarray(x, dtype=np.float32), _F32_INF)


def _next_down(x: np.ndarray | np.floating) -> np.ndarray:
    """The largest float32 below x: the top of a half-open bin [lo, x)."""
    return np.nextafter(np.asarray(x, dtype=np.float32), -_F32_INF)


def _single_bin(value: np.floating) -> np.ndarray:
    """Edges of the one bin of a constant feature: [v, nextafter(v)), or [prev(v), v] at float32's max."""
    upper = _next_up(value)
    if np.isfinite(upper):
        return np.array([value, upper], dtype=np.float32)
    return np.array([_next_down(value), value], dtype=np.float32)


def _comparison_dtype(values: np.ndarray) -> np.dtype:
    """float32 for float16/float32 inputs, float64 otherwise: wide enough that no input is rounded.

    TorchActionTokenizer.encode makes the same choice, so both give the same ids."""
    return np.dtype(np.float32) if values.dtype in (np.float16, np.float32) else np.dtype(np.float64)


def _quantile_edges(column: np.ndarray, num_bins: int) -> np.ndarray:
    """Strictly increasing float32 quantile edges for one feature (see the module docstring)."""
    s = np.sort(column)
    n = len(s)
    # Edge k is the sorted value at index floor(k n / num_bins), the last edge the maximum: bin k
    # then holds sorted values floor(k n/N) .. floor((k+1) n/N) - 1, an equal share each. This is
    # the Trajectory Transformer authors' QuantileDiscretizer (thresholds = sorted[::n/N] + max)
    # wherever num_bins divides n (theirs strides by ceil(n/N) and so makes fewer bins otherwise).
    index = np.minimum(np.arange(num_bins + 1, dtype=np.int64) * n // num_bins, n - 1)
    candidates = s[index]
    unique, repeats = np.unique(candidates, return_counts=True)
    # An edge value repeated in the quantile list holds a whole quantile bin's worth of data on
    # its own: close a bin just above it so that it is its own bin.
    # (Not at float32's largest value, whose next float up is inf.)
    atoms = unique[(repeats >= 2) & (unique < np.finfo(np.float32).max)]
    edges = np.unique(np.concatenate([unique, _next_up(atoms)]))
    if len(edges) == 1:
        return _single_bin(edges[0])
    if len(edges) > 2:
        # Drop the lower edge of every empty bin (never the first or last edge): the empty bin
        # joins its left neighbour. Bins starting at a data value are never empty, so only bins
        # starting just above an atom can be (e.g. with fewer actions than bins).
        first_at_or_above = np.searchsorted(s, edges, side="left")
        occupancy = np.diff(first_at_or_above)  # per bin, ignoring the closed right end
        empty = np.flatnonzero(occupancy[:-1] == 0)  # the last bin always holds the maximum
        edges = np.delete(edges, empty[empty >= 1])
    return edges.astype(np.float32)


def _uniform_edges(low: float, high: float, num_bins: int) -> np.ndarray:
    """Strictly increasing float32 equal-width edges over [low, high] for one feature."""
    low32, high32 = np.float32(low), np.float32(high)
    if not high32 > low32:
        # A constant feature (or a range below float32 resolution): one bin of positive width.
        return _single_bin(low32)
    edges = np.linspace(float(low32), float(high32), num_bins + 1).astype(np.float32)
    # Rounding to float32 can merge edges of a very narrow range; keep each edge once.
    return np.unique(edges)


def _bin_values(column: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean training action per bin (the bin centre for empty bins), clipped into the bin."""
    num = len(edges) - 1
    local = np.searchsorted(edges[1:-1], column, side="right")
    counts = np.bincount(local, minlength=num)
    sums = np.bincount(local, weights=column.astype(np.float64), minlength=num)
    centres = (edges[:-1].astype(np.float64) + edges[1:].astype(np.float64)) / 2
    means = np.where(counts > 0, sums / np.maximum(counts, 1), centres).astype(np.float32)
    # Uniform bins with explicit bounds can hold clamped out-of-range actions, and float
    # round-off can nudge a mean or centre past an edge: clip into [lo, hi) (last bin [lo, hi]).
    lower = edges[:-1]
    upper = np.concatenate([_next_down(edges[1:-1]), edges[-1:]]).astype(np.float32)
    return np.clip(means, lower, upper).astype(np.float32)


def _feature_bounds(
    bound: float | Sequence[float] | np.ndarray | None, fallback: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast `low`/`high` to (d,) float64, and say which entries the caller gave.

    Missing (None) or infinite entries use the data's value (`fallback`): Gymnasium's unbounded
    Box dimensions are +-inf, and the data's range is the only sensible choice there.
    """
    if bound is None:
        return fallback.astype(np.float64), np.zeros(fallback.shape, dtype=bool)
    try:
        values = np.broadcast_to(np.asarray(bound, dtype=np.float64), fallback.shape)
    except ValueError:
        raise ConfigError(
            f"{name} must be a number or have one entry per action feature "
            f"({fallback.shape[0]}), got shape {np.shape(bound)}"
        ) from None
    given = np.isfinite(values)
    return np.where(given, values, fallback), given


def _as_action_matrix(actions: Any) -> np.ndarray:
    """Check and convert training actions to a finite float32 (N, d) array."""
    array = np.asarray(actions)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"actions to fit must be a non-empty 2-D array (N, action_dim), got shape {array.shape}"
        )
    array = array.astype(np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        row, feature = np.argwhere(bad)[0]
        raise ValueError(
            f"actions contain NaN or inf (first at row {row}, feature {feature}); "
            "clean the dataset before fitting the action tokenizer"
        )
    return array


class ActionTokenizer:
    """Per-feature action quantizers mapping continuous actions to token ids and back (numpy).

    Build one with `ActionTokenizer.fit(...)` or `ActionTokenizer.from_state_dict(...)`.

    Attributes:
        num_bins: the bin count asked for (each feature has at most this many).
        strategy: "quantile" or "uniform".
        shared_range: True when every feature uses ids [0, vocab_size) (no offsets).
        action_dim: d, the number of action features.
        edges: tuple of d float32 arrays, feature i's (bins_per_feature[i] + 1,) strictly
            increasing bin edges.
        values: tuple of d float32 arrays, feature i's (bins_per_feature[i],) decoded values.
        bins_per_feature: (d,) int64, |Q_i|.
        offsets: (d,) int64, sum_{j<i} |Q_j| (all zeros with shared_range).
        vocab_size: sum of bins_per_feature, or its maximum with shared_range.
    """

    def __init__(
        self,
        edges: Sequence[np.ndarray],
        values: Sequence[np.ndarray],
        *,
        num_bins: int,
        strategy: str = "quantile",
        shared_range: bool = False,
    ) -> None:
        """Wrap already-computed tables; prefer `fit` or `from_state_dict`. Checks consistency."""
        _check_num_bins(num_bins)
        _check_strategy(strategy)
        if len(edges) == 0 or len(edges) != len(values):
            raise ValueError(
                f"need one edge array and one value array per feature, got {len(edges)} and {len(values)}"
            )
        self.num_bins = int(num_bins)
        self.strategy = strategy
        self.shared_range = bool(shared_range)
        checked_edges, checked_values = [], []
        for i, (e, v) in enumerate(zip(edges, values)):
            e = np.array(e, dtype=np.float32).reshape(-1)
            v = np.array(v, dtype=np.float32).reshape(-1)
            if len(e) < 2 or not np.all(np.isfinite(e)) or not np.all(np.diff(e) > 0):
                raise ValueError(f"feature {i}: bin edges must be >= 2 finite, strictly increasing values")
            if len(v) != len(e) - 1 or not np.all(np.isfinite(v)):
                raise ValueError(
                    f"feature {i}: expected {len(e) - 1} finite bin values for {len(e)} edges, got {len(v)}"
                )
            e.flags.writeable = False  # shared tables: callers must not edit them in place
            v.flags.writeable = False
            checked_edges.append(e)
            checked_values.append(v)
        self.edges: tuple[np.ndarray, ...] = tuple(checked_edges)
        self.values: tuple[np.ndarray, ...] = tuple(checked_values)
        self.action_dim = len(self.edges)
        self.bins_per_feature = np.array([len(v) for v in self.values], dtype=np.int64)
        if self.shared_range:
            self.offsets = np.zeros(self.action_dim, dtype=np.int64)
            self.vocab_size = int(self.bins_per_feature.max())
        else:
            self.offsets = np.concatenate([[0], np.cumsum(self.bins_per_feature)[:-1]]).astype(np.int64)
            self.vocab_size = int(self.bins_per_feature.sum())
        self.bins_per_feature.flags.writeable = False
        self.offsets.flags.writeable = False

    # ----------------------------------------------------------------------------- building

    @classmethod
    def fit(
        cls,
        actions: np.ndarray,
        num_bins: int,
        strategy: str = "quantile",
        shared_range: bool = False,
        low: float | Sequence[float] | np.ndarray | None = None,
        high: float | Sequence[float] | np.ndarray | None = None,
        index_features: Mapping[int, int] | None = None,
    ) -> "ActionTokenizer":
        """Fit one quantizer per feature to `actions` (N, d).

        Args:
            actions: training actions, (N, d), finite.
            num_bins: bins per feature to aim for (>= 2; the paper uses 100 to 3000). Features with
                repeated values may get fewer; see the module docstring.
            strategy: "quantile" (bins of equal data occupancy) or "uniform" (equal width).
            shared_range: give every feature the same ids (no per-feature offsets).
            low, high: only for "uniform": the range to split, a number or one per feature (the
                action space's bounds). Missing or infinite entries use the data's min/max.
                Quantile bins are defined by the data alone and ignore them.
            index_features: {feature: n} for features holding Discrete(n) indices 0..n-1: one
                bin per index (`index_edges`), not binned (the TT's action column on discrete data).
        """
        _check_num_bins(num_bins)
        _check_strategy(strategy)
        data = _as_action_matrix(actions)
        if index_features:
            return cls._fit_with_indices(data, num_bins, strategy, shared_range, low, high, dict(index_features))
        if strategy == "quantile":
            edges = [_quantile_edges(data[:, i], num_bins) for i in range(data.shape[1])]
        else:
            data_min, data_max = data.min(axis=0), data.max(axis=0)
            lows, low_given = _feature_bounds(low, data_min, "low")
            highs, high_given = _feature_bounds(high, data_max, "high")
            # Only a user's bound can be inverted; data-derived low == high is a constant
            # feature, which gets its single bin in _uniform_edges.
            bad = np.flatnonzero((low_given | high_given) & ~(highs > lows))
            if len(bad):
                i = int(bad[0])
                raise ConfigError(f"feature {i}: low ({lows[i]}) must be below high ({highs[i]})")
            edges = [_uniform_edges(lows[i], highs[i], num_bins) for i in range(data.shape[1])]
        values = [_bin_values(data[:, i], e) for i, e in enumerate(edges)]
        return cls(edges, values, num_bins=num_bins, strategy=strategy, shared_range=shared_range)

    @classmethod
    def _fit_with_indices(cls, data: np.ndarray, num_bins: int, strategy: str, shared_range: bool,
                          low: Any, high: Any, index_features: dict[int, int]) -> "ActionTokenizer":
        """`fit` with the `index_features` columns given one bin per index, the others fitted as usual."""
        d = data.shape[1]
        for i, n in index_features.items():
            if not 0 <= i < d:
                raise ValueError(f"index feature {i} is not a feature of {d}-feature actions")
            column = data[:, i]
            if (column != np.round(column)).any() or column.min() < 0 or column.max() >= n:
                raise ValueError(f"feature {i} must hold Discrete({n}) indices 0..{n - 1}")
        others = [i for i in range(d) if i not in index_features]
        fitted = None
        if others:
            pick = lambda bound: bound if bound is None or np.ndim(bound) == 0 else np.asarray(bound)[others]  # noqa: E731
            fitted = cls.fit(data[:, others], num_bins, strategy=strategy, low=pick(low), high=pick(high))
        edges, values = [], []
        for i in range(d):
            if i in index_features:
                e = index_edges(index_features[i])
                edges.append(e)
                values.append(e[:-1])
            else:
                j = others.index(i)
                edges.append(fitted.edges[j])
                values.append(fitted.values[j])
        return cls(edges, values, num_bins=num_bins, strategy=strategy, shared_range=shared_range)

    @classmethod
    def for_indices(cls, n: int) -> "ActionTokenizer":
        """The tokenizer of one Discrete(n) action: token k is action index k (n tokens, no bins)."""
        e = index_edges(n)
        return cls([e], [e[:-1]], num_bins=max(2, int(n)), strategy="quantile")

    # ---------------------------------------------------------------------------- encoding

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Token ids (..., d) int64 of actions (..., d); out-of-range values clamp to the end bins."""
        array = np.asarray(actions)
        self._check_last_dim(array, "actions")
        array = array.astype(_comparison_dtype(array), copy=False)
        if np.isnan(array).any():
            raise ValueError("actions to encode contain NaN")
        # numpy's searchsorted casts the queries to the edges' dtype, which would round float64
        # actions to float32: compare in the wider dtype instead.
        ids = np.empty(array.shape, dtype=np.int64)
        for i, e in enumerate(self.edges):
            # Searching the interior edges with side="right" gives bin k for e[k] <= a < e[k+1],
            # 0 below the range and the last bin at or above the last interior edge.
            ids[..., i] = np.searchsorted(e[1:-1].astype(array.dtype), array[..., i], side="right")
        return ids + self.offsets

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """Representative actions (..., d) float32 of token ids (..., d)."""
        ids = np.asarray(ids)
        self._check_last_dim(ids, "token ids")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"token ids must be integers, got dtype {ids.dtype}")
        out = np.empty(ids.shape, dtype=np.float32)
        for i, v in enumerate(self.values):
            local = ids[..., i] - self.offsets[i]
            if local.size and (local.min() < 0 or local.max() >= len(v)):
                lo, hi = int(self.offsets[i]), int(self.offsets[i] + len(v))
                raise ValueError(
                    f"token ids for feature {i} must lie in [{lo}, {hi}), "
                    f"got {ids[..., i].min()}..{ids[..., i].max()}"
                )
            out[..., i] = v[local]
        return out

    # --------------------------------------------------------------------------- vocabulary

    @property
    def feature_mask(self) -> np.ndarray:
        """(d, vocab_size) bool: True where token t is a valid id for feature i.

        With offsets each token belongs to exactly one feature. With shared_range token t is
        valid for feature i when t < bins_per_feature[i] (so all tokens, unless repeated values
        gave feature i fewer bins). Mask categorical logits with it before sampling.
        """
        tokens = np.arange(self.vocab_size)
        lo = self.offsets[:, None]
        return (tokens >= lo) & (tokens < lo + self.bins_per_feature[:, None])

    @property
    def feature_of_token(self) -> np.ndarray:
        """(vocab_size,) int64: the feature each token encodes (offsets only)."""
        if self.shared_range:
            raise ConfigError("with shared_range every token serves every feature; use feature_mask")
        return np.repeat(np.arange(self.action_dim, dtype=np.int64), self.bins_per_feature)

    # ------------------------------------------------------------------------ serialisation

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer, as plain Python values.

        Lists of floats rather than numpy arrays: `torch.load(weights_only=True)` (the default
        since PyTorch 2.6) refuses numpy arrays, and JSON can store lists too. float32 values
        survive the trip through Python floats exactly.
        """
        return {
            "format_version": STATE_FORMAT_VERSION,
            "num_bins": self.num_bins,
            "strategy": self.strategy,
            "shared_range": self.shared_range,
            "edges": [e.tolist() for e in self.edges],
            "values": [v.tolist() for v in self.values],
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "ActionTokenizer":
        """Rebuild a tokenizer from `state_dict()`'s output; CheckpointError if it is malformed."""
        try:
            version = state["format_version"]
            if version != STATE_FORMAT_VERSION:
                raise CheckpointError(
                    f"action tokenizer state has format_version {version}; "
                    f"this seqrl reads {STATE_FORMAT_VERSION}"
                )
            return cls(
                [np.asarray(e, dtype=np.float32) for e in state["edges"]],
                [np.asarray(v, dtype=np.float32) for v in state["values"]],
                num_bins=state["num_bins"],
                strategy=state["strategy"],
                shared_range=state["shared_range"],
            )
        except KeyError as err:
            raise CheckpointError(f"action tokenizer state is missing {err}") from None
        except (ValueError, TypeError, ConfigError) as err:
            raise CheckpointError(f"action tokenizer state is invalid: {err}") from None

    def __repr__(self) -> str:
        return (
            f"ActionTokenizer(action_dim={self.action_dim}, num_bins={self.num_bins}, "
            f"strategy={self.strategy!r}, shared_range={self.shared_range}, vocab_size={self.vocab_size})"
        )

    def _check_last_dim(self, array: np.ndarray, what: str) -> None:
        if array.ndim == 0 or array.shape[-1] != self.action_dim:
            raise ValueError(
                f"{what} must have shape (..., {self.action_dim}): expected {self.action_dim} "
                f"action features, got {array.shape[-1] if array.ndim else 0} (shape {array.shape})"
            )


def index_edges(n: int) -> np.ndarray:
    """Edges 0, 1, .., n of a Discrete(n) index feature: bin k is [k, k+1) and holds index k alone."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"a Discrete action space has a whole number n >= 1 of actions, got {n!r}")
    return np.arange(int(n) + 1, dtype=np.float32)


def _check_num_bins(num_bins: Any) -> None:
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 2:
        raise ConfigError(f"num_bins must be an integer >= 2, got {num_bins!r}")


def _check_strategy(strategy: Any) -> None:
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown binning strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


class TorchActionTokenizer(nn.Module):
    """An `ActionTokenizer`'s tables as buffers: encode/decode on any device, saved with the model.

    Buffers (d features, B = max bins per feature):
        boundaries: (d, max(B - 1, 1)) float32, each feature's interior bin edges, right-padded
            with +inf so one batched `torch.searchsorted` serves every feature.
        bins_per_feature: (d,) int64, |Q_i|. `num_bins` is the same tensor.
        offsets: (d,) int64, sum_{j<i} |Q_j| (zeros with shared_range).
        value_table: (d, B) float32, value_table[i, k] is the decoded value of feature i's bin k,
            right-padded with the feature's last value. With shared_range (vocab_size == B) it
            is the value of token k for feature i.
        feature_mask: (d, vocab_size) bool, True where token t is valid for feature i.
        flat_values: (sum_i |Q_i|,) float32, all bins' values back to back; with offsets this is
            indexed by token id and exposed as `bin_values`.

    The buffers keep float32 when the model is cast (`.half()`, `.to(torch.bfloat16)`, `.double()`):
    rounded edges would change token ids. Only the device follows the model.
    """

    def __init__(self, tokenizer: ActionTokenizer) -> None:
        super().__init__()
        self.action_dim = tokenizer.action_dim
        self.vocab_size = tokenizer.vocab_size
        self.shared_range = tokenizer.shared_range
        self.strategy = tokenizer.strategy
        counts = tokenizer.bins_per_feature
        width = int(counts.max())
        boundaries = np.full((self.action_dim, max(width - 1, 1)), np.inf, dtype=np.float32)
        value_table = np.empty((self.action_dim, width), dtype=np.float32)
        for i, (e, v) in enumerate(zip(tokenizer.edges, tokenizer.values)):
            boundaries[i, : len(e) - 2] = e[1:-1]
            value_table[i, : len(v)] = v
            value_table[i, len(v) :] = v[-1]
        self.register_buffer("boundaries", torch.from_numpy(boundaries))
        self.register_buffer("bins_per_feature", torch.from_numpy(counts.copy()))
        self.register_buffer("offsets", torch.from_numpy(tokenizer.offsets.copy()))
        self.register_buffer("value_table", torch.from_numpy(value_table))
        self.register_buffer("feature_mask", torch.from_numpy(tokenizer.feature_mask))
        self.register_buffer("flat_values", torch.from_numpy(np.concatenate(tokenizer.values)))
        self.register_buffer("_feature_index", torch.arange(self.action_dim), persistent=False)

    @property
    def num_bins(self) -> Tensor:
        """(d,) int64 bins per feature (same tensor as `bins_per_feature`)."""
        return self.bins_per_feature

    @property
    def bin_values(self) -> Tensor:
        """(vocab_size,) float32 decoded value of each token (offsets only).

        With shared_range a token's value depends on the feature: use `value_table[i, t]`.
        """
        if self.shared_range:
            raise ConfigError(
                "with shared_range a token's value depends on its feature; use value_table[i, token]"
            )
        return self.flat_values

    def encode(self, actions: Tensor) -> Tensor:
        """Token ids (..., d) int64 of actions (..., d); identical to `ActionTokenizer.encode`.

        Out-of-range values clamp to the end bins. NaN is not checked (that would synchronise with
        the device every step) and lands in the last bin.
        """
        self._check_last_dim(actions, "actions")
        shape = actions.shape
        # Compare in float32 for float32/16 inputs (they widen exactly) and in float64 otherwise
        # (float32 edges are exact in float64), as ActionTokenizer.encode does.
        if actions.dtype in (torch.float32, torch.float16, torch.bfloat16):
            boundaries, actions = self.boundaries, actions.float()
        else:
            boundaries, actions = self.boundaries.double(), actions.double()
        x = actions.reshape(-1, self.action_dim).t().contiguous()  # (d, M): one row per feature
        local = torch.searchsorted(boundaries, x, right=True)  # (d, M)
        # +inf padding stops finite values at the real bins; +inf/NaN inputs run past it.
        local = torch.minimum(local, (self.bins_per_feature - 1)[:, None])
        ids = local + self.offsets[:, None]  # (d, M)
        return ids.t().reshape(shape)

    def decode(self, ids: Tensor) -> Tensor:
        """Representative actions (..., d) float32 of token ids (..., d).

        Ids outside feature i's range are clamped into it (no device sync to check them); mask
        logits with `feature_mask` so sampled ids are always valid.
        """
        self._check_last_dim(ids, "token ids")
        local = ids.long() - self.offsets  # (..., d)
        local = torch.minimum(local.clamp(min=0), self.bins_per_feature - 1)
        return self.value_table[self._feature_index, local]  # (..., d): gathers (i, local[..., i])

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 - torch's internal signature
        # Follow device moves but never dtype casts: a model cast to bfloat16 must still encode
        # with the exact float32 edges (see the class docstring).
        for name, buf in self._buffers.items():
            if buf is not None:
                self._buffers[name] = buf.to(device=fn(buf).device)
        return self

    def extra_repr(self) -> str:
        return (
            f"action_dim={self.action_dim}, vocab_size={self.vocab_size}, "
            f"strategy={self.strategy!r}, shared_range={self.shared_range}"
        )

    def _check_last_dim(self, tensor: Tensor, what: str) -> None:
        if tensor.ndim == 0 or tensor.shape[-1] != self.action_dim:
            raise ValueError(
                f"{what} must have shape (..., {self.action_dim}): expected {self.action_dim} "
                f"action features, got {tensor.shape[-1] if tensor.ndim else 0} (shape {tuple(tensor.shape)})"
            )


# Tokenizer state as tensors, so it survives a checkpoint's `weights_only=True` loading.
def tokenizer_to_payload(tokenizer: ActionTokenizer | None) -> dict[str, Any] | None:
    if tokenizer is None:
        return None
    return {k: torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v for k, v in tokenizer.state_dict().items()}


def tokenizer_from_payload(state: dict[str, Any] | None) -> ActionTokenizer | None:
    if state is None:
        return None
    return ActionTokenizer.from_state_dict({k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()})
