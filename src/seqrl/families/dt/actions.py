"""Action representations of the Decision Transformer: a registry of descriptors, and the codecs
that embed, predict and decode actions.

Each representation (`--model NAME`) is an `ActionRepresentation` registered in
`representations.py` (torch-free, so the config and `--help` read it without building anything):
its embedding and the facts the rest of seqrl asks about it (tokenized, spread, pooled). A new
representation is one `register_representation` call.

Action codecs: everything that differs between the action representations.

A codec decides how many tokens an action takes per timestep (k), how those tokens are
embedded, how the action is read back out of the transformer's hidden states, the loss, and
the decoding at inference. The Decision Transformer interleaves `[R, s, a_0 .. a_{k-1}]` per
step and hands the codec the hidden states at the k positions that predict the action:

    position in the step:  R   s   a_0  a_1  ...  a_{k-1}
    predicts:                  a   (k = 1: the whole action, from the state token)
                               a_0 a_1  a_2  ...  (k = d: feature j from the token before it)

So with k = 1 the state token predicts every feature at once; with k = d ("spread") feature j
is predicted from the state token (j = 0) or from action token j - 1, which makes generation
feature by feature autoregressive under the causal mask.

Embeddings (names from Annett & Andersen):
  ActionEmbedding                 continuous action -> 1 token (the baseline DT)
  ActionTokenizedEmbedding        d feature tokens -> embedded -> pooled (mean or sum) into 1 token
  ActionTokenizedSpreadEmbedding  d feature tokens -> d tokens
  ActionSpreadEmbedding           d continuous values -> d tokens (value * w + feature embedding)
Heads: RegressionHead (MSE on the continuous action, the paper's) and CategoricalHead
(cross-entropy over each feature's bins), each usable with every embedding.

Discrete actions (`Discrete(n)`, one index per step): the action is ONE token of n values. The
action tokenizer is the identity on indices (`ActionTokenizer.for_indices(n)`: token k is
action k, no bins), the head is a CategoricalHead over the n actions (cross-entropy), and each
representation says how it embeds the index (`build_discrete_embedding`):
  continuous       OneHotActionEmbedding: the baseline's linear action embedding applied to the
                   one-hot action (a Linear(n, D): an embedding row per action plus a bias)
  tokenized        the token embedding of the index (an Embedding(n, D)); one feature, so
                   pooling it is the identity
  *-spread         one discrete feature is one token, so a spread representation is its pooled
                   counterpart: tokenized-spread builds the same network as tokenized (same
                   parameters, same outputs), continuous-spread the same as continuous
A representation without `build_discrete_embedding` refuses discrete actions by name.

Environment-agnostic action layers (the paper's "the action embedding and action head shapes
remain consistent across downstream tasks"). Two switches make every parameter of a spread
codec independent of the task's act_dim, so `seqrl finetune --rebuild state ...` can keep it:

- `shared_head=True`: ONE head for every spread action token, a (1, D) scalar regression row
  or one (num_bins, D) classifier, instead of one row / classifier per feature. Spread only:
  with a pooled token every feature would read the same hidden state and get the same output.
- `max_features=M > 0`: the action vocabulary is sized for up to M features, not for this
  task's: token ids are re-based to `feature * num_bins + bin` (per-feature offsets, a
  fixed stride of the configured num_bins instead of the data's cumulative bin counts) or to
  `bin` (shared range), and feature-index / feature embeddings have M rows, of which a task
  uses its first act_dim. With `max_features=0` (the default) ids and shapes are today's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from typing import Any

from torch import nn

from seqrl.data.tokenizer import TorchActionTokenizer
from seqrl.families.dt.representations import (  # noqa: F401 (the registry, re-exported)
    REPRESENTATIONS, ActionRepresentation, EmbeddingShape, register_representation, representation,
)
from seqrl.distributed import global_mean
from seqrl.errors import ConfigError


# --------------------------------------------------------------------------- embeddings
class ActionEmbedding(nn.Module):
    """The baseline: one linear embedding of the whole continuous action."""

    tokens_per_step = 1

    def __init__(self, act_dim: int, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(act_dim, dim)

    @classmethod
    def from_shape(cls, s: EmbeddingShape) -> "ActionEmbedding":
        return cls(s.act_dim, s.dim)

    def forward(self, actions: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        return self.linear(actions).unsqueeze(2)  # (B, T, 1, D)


class OneHotActionEmbedding(nn.Module):
    """A Discrete(n) action index as one token: the continuous baseline's linear embedding of the
    one-hot action, Linear(n, D) (one learned row per action, plus a bias)."""

    tokens_per_step = 1

    def __init__(self, num_actions: int, dim: int) -> None:
        super().__init__()
        self.num_actions = num_actions
        self.linear = nn.Linear(num_actions, dim)

    def forward(self, actions: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        # tokens: (B, T, 1) action indices (the index tokenizer's ids), whatever dtype `actions` has.
        one_hot = F.one_hot(tokens[..., 0], self.num_actions).to(self.linear.weight.dtype)  # (B, T, n)
        return self.linear(one_hot).unsqueeze(2)  # (B, T, 1, D)


class _FeatureTokenEmbedding(nn.Module):
    """Embeds each feature's token id; optionally adds a learned feature-index embedding.

    With per-feature offsets the ids already tell features apart; with a shared range the
    index embedding is what lets the model know which feature a token belongs to.
    """

    def __init__(self, vocab_size: int, act_dim: int, dim: int, index_embedding: bool, index_rows: int = 0) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab_size, dim)
        # index_rows > act_dim: sized for up to that many features (environment-agnostic).
        self.index = nn.Embedding(max(act_dim, index_rows), dim) if index_embedding else None

    def embed_features(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token(tokens)  # (B, T, d, D)
        if self.index is not None:
            x = x + self.index.weight[: tokens.shape[-1]]  # (d, D) broadcast over (B, T)
        return x


class ActionTokenizedEmbedding(_FeatureTokenEmbedding):
    """Per-feature token embeddings pooled into one action token per step: their mean (seqrl's
    original choice) or their sum (the authors' code)."""

    tokens_per_step = 1

    def __init__(self, vocab_size: int, act_dim: int, dim: int, index_embedding: bool, index_rows: int = 0,
                 pool: str = "mean") -> None:
        super().__init__(vocab_size, act_dim, dim, index_embedding, index_rows)
        if pool not in ("mean", "sum"):
            raise ValueError(f"unknown pooling {pool!r}; choose mean or sum")
        self.pool = pool

    @classmethod
    def from_shape(cls, s: EmbeddingShape) -> "ActionTokenizedEmbedding":
        return cls(s.vocab_size, s.act_dim, s.dim, s.index_embedding, s.max_features, s.pool)

    def forward(self, actions: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        x = self.embed_features(tokens)  # (B, T, d, D)
        return (x.mean if self.pool == "mean" else x.sum)(dim=2, keepdim=True)  # (B, T, 1, D)


class ActionTokenizedSpreadEmbedding(_FeatureTokenEmbedding):
    """One token per action feature: the step becomes R, s, a_0 .. a_{d-1}."""

    def __init__(self, vocab_size: int, act_dim: int, dim: int, index_embedding: bool, index_rows: int = 0) -> None:
        super().__init__(vocab_size, act_dim, dim, index_embedding, index_rows)
        self.tokens_per_step = act_dim

    @classmethod
    def from_shape(cls, s: EmbeddingShape) -> "ActionTokenizedSpreadEmbedding":
        return cls(s.vocab_size, s.act_dim, s.dim, s.index_embedding, s.max_features)

    def forward(self, actions: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        return self.embed_features(tokens)  # (B, T, d, D)


class ActionSpreadEmbedding(nn.Module):
    """Continuous values spread one per token: a_j * w + b + feature_embedding[j]."""

    def __init__(self, act_dim: int, dim: int, feature_rows: int = 0) -> None:
        super().__init__()
        self.tokens_per_step = act_dim
        self.value = nn.Linear(1, dim)
        # feature_rows > act_dim: sized for up to that many features (environment-agnostic).
        self.feature = nn.Embedding(max(act_dim, feature_rows), dim)

    @classmethod
    def from_shape(cls, s: EmbeddingShape) -> "ActionSpreadEmbedding":
        return cls(s.act_dim, s.dim, s.max_features)

    def forward(self, actions: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        return self.value(actions.unsqueeze(-1)) + self.feature.weight[: actions.shape[-1]]  # (B, T, d, D)


# Built-in embeddings of a Discrete(n) action index (named by the registry's built-in
# representations, seqrl.families.dt.representations): one token of n values.
def discrete_one_hot(s: EmbeddingShape) -> nn.Module:
    return OneHotActionEmbedding(s.vocab_size, s.dim)


def discrete_index_token(s: EmbeddingShape) -> nn.Module:
    return ActionTokenizedSpreadEmbedding(s.vocab_size, 1, s.dim, index_embedding=False)  # one token, as pooled


def build_named_or_callable(build: Any, shape: EmbeddingShape) -> nn.Module:
    """A representation's embedding: its own factory, or a built-in named here (a class built
    with `from_shape`, or one of the discrete builders above)."""
    if not isinstance(build, str):
        return build(shape)
    named = globals()[build]
    return named.from_shape(shape) if isinstance(named, type) else named(shape)


# --------------------------------------------------------------------------- heads
def _per_feature(hidden: torch.Tensor, act_dim: int) -> torch.Tensor:
    """(B, T, k, D) prediction hidden states -> (B, T, d, D), one per action feature."""
    if hidden.shape[2] == act_dim:
        return hidden
    return hidden.expand(-1, -1, act_dim, -1)  # k = 1: every feature reads the state token


class RegressionHead(nn.Module):
    """Continuous action, squashed into the action bounds with tanh; MSE loss."""

    def __init__(self, dim: int, act_dim: int, low: torch.Tensor, high: torch.Tensor, shared: bool = False) -> None:
        super().__init__()
        # One output per feature, read from that feature's own hidden state: a (d, D) weight; or
        # (shared, spread only) one (1, D) row every action token's hidden state is read with,
        # broadcast over the d features below. The bounds are buffers of the task, not weights.
        rows = 1 if shared else act_dim
        self.weight = nn.Parameter(torch.randn(rows, dim) * 0.02)
        self.bias = nn.Parameter(torch.zeros(rows))
        self.register_buffer("center", (high + low) / 2)
        self.register_buffer("half_range", (high - low) / 2)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if hidden.shape[2] == 1:
            # Pooled (k = 1): every feature reads the same hidden state, so this is one linear
            # map (no (B, T, d, D) expanded copy in forward or backward).
            raw = F.linear(hidden[:, :, 0], self.weight, self.bias)  # (B, T, d)
        else:
            raw = (hidden * self.weight).sum(-1) + self.bias  # (B, T, d): feature j reads its own state
        return self.center + self.half_range * torch.tanh(raw)

    def loss(self, prediction: torch.Tensor, actions: torch.Tensor, tokens: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        per_step = F.mse_loss(prediction.float(), actions, reduction="none").mean(-1)  # (B, T)
        return global_mean((per_step * mask).sum() / mask.sum().clamp(min=1), mask.sum())

    def decode(self, prediction: torch.Tensor, **_: object) -> torch.Tensor:
        return prediction


class CategoricalHead(nn.Module):
    """Logits over each feature's own bins; cross-entropy; argmax / sample / expectation decoding.

    Logits are computed per feature over at most max(|Q_i|) bins (not over the whole
    vocabulary), which keeps them small with thousands of bins; bins a feature does not have
    are masked to -inf.
    """

    def __init__(self, dim: int, tokenizer: TorchActionTokenizer, shared: bool, classes: int | None = None) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        # `classes`: a fixed logit count (the configured num_bins: environment-agnostic) instead
        # of the most bins any feature of this task's data got.
        act_dim, max_bins = tokenizer.action_dim, int(classes or tokenizer.num_bins.max())
        if max_bins < int(tokenizer.num_bins.max()):
            raise ValueError(f"{max_bins} classes cannot hold a feature with {int(tokenizer.num_bins.max())} bins")
        # With a shared token range the same classifier serves every feature (the ablation);
        # otherwise each feature has its own.
        n_classifiers = 1 if shared else act_dim
        self.weight = nn.Parameter(torch.randn(n_classifiers, max_bins, dim) * 0.02)
        self.bias = nn.Parameter(torch.zeros(n_classifiers, max_bins))
        bins = torch.arange(max_bins)
        self.register_buffer("invalid", bins[None, :] >= tokenizer.num_bins[:, None])  # (d, max_bins)

    @property
    def values(self) -> torch.Tensor:
        """(d, max_bins) representative value of each feature's bins, for decoding."""
        return self.tokenizer.value_table

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        h = _per_feature(hidden, self.tokenizer.action_dim)  # (B, T, d, D)
        weight = self.weight.expand(h.shape[2], -1, -1)  # (d, max_bins, D)
        logits = torch.einsum("btfd,fkd->btfk", h, weight) + self.bias.expand(h.shape[2], -1)
        return logits.float().masked_fill(self.invalid, float("-inf"))  # (B, T, d, max_bins)

    def loss(self, logits: torch.Tensor, actions: torch.Tensor, tokens: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        local = tokens - self.tokenizer.offsets  # (B, T, d) bin index within each feature
        per_feature = F.cross_entropy(logits.flatten(0, 2), local.flatten(), reduction="none")
        per_step = per_feature.view(local.shape).mean(-1)  # (B, T)
        return global_mean((per_step * mask).sum() / mask.sum().clamp(min=1), mask.sum())

    def decode(
        self,
        logits: torch.Tensor,
        *,
        mode: str = "argmax",
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(..., d, max_bins) logits -> (..., d) continuous actions."""
        values = self.values  # (d, max_bins)
        if mode == "argmax":
            local = logits.argmax(-1)
        elif mode == "sample":
            probs = torch.softmax(logits / temperature, dim=-1)
            local = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).view(probs.shape[:-1])
        elif mode == "expectation":
            return (torch.softmax(logits, dim=-1) * values).sum(-1)
        else:
            raise ValueError(f"unknown decode mode {mode!r}")
        return torch.gather(values.expand(*local.shape, -1), -1, local.unsqueeze(-1)).squeeze(-1)


# --------------------------------------------------------------------------- the codec
class ActionCodec(nn.Module):
    """Embedding + head (+ tokenizer where needed) for one action representation."""

    def __init__(
        self,
        variant: str,
        head: str,
        act_dim: int,
        dim: int,
        low: torch.Tensor,
        high: torch.Tensor,
        tokenizer: TorchActionTokenizer | None,
        index_embedding: bool = False,
        *,
        shared_head: bool = False,
        max_features: int = 0,
        num_bins: int | None = None,
        pool: str = "mean",
        num_actions: int | None = None,
    ) -> None:
        super().__init__()
        rep = representation(variant)
        if num_actions is not None:
            self._init_discrete(rep, dim, tokenizer, num_actions, pool)
            return
        if (rep.tokenized or head == "categorical") and tokenizer is None:
            raise ValueError(f"variant {variant!r} with head {head!r} needs an action tokenizer")
        if shared_head and not rep.spread:
            raise ValueError(f"a shared action head needs a spread variant, not {variant!r}")
        if max_features and act_dim > max_features:
            raise ValueError(f"act_dim {act_dim} exceeds max_features {max_features}")
        if max_features and tokenizer is not None and num_bins is None:
            raise ValueError("max_features with a tokenizer needs num_bins (the fixed stride of the token ids)")
        self.tokenizer = tokenizer
        self.max_features = int(max_features)
        self.stride = int(num_bins) if num_bins is not None else None
        shared_range = tokenizer is not None and not bool(tokenizer.offsets.any())
        if tokenizer is not None and self.max_features:
            # Fixed vocabulary: bin ids re-based with a stride of num_bins (see `_embedding_ids`).
            # (The tokenizer's own flag: with one feature, per-feature offsets are all zero too.)
            shared_range = bool(tokenizer.shared_range)
            vocab = self.stride if shared_range else self.max_features * self.stride
            if int(tokenizer.num_bins.max()) > self.stride:
                raise ValueError(f"the tokenizer has features with more than num_bins={self.stride} bins")
            self.register_buffer("id_base", (torch.zeros(act_dim, dtype=torch.long) if shared_range else
                                             torch.arange(act_dim) * self.stride) - tokenizer.offsets, persistent=False)
        else:
            vocab = tokenizer.vocab_size if tokenizer is not None else 0
            self.id_base = None
        self.representation = representation(variant)
        shape = EmbeddingShape(vocab, act_dim, dim, index_embedding, self.max_features, pool)
        build = self.representation.build_embedding
        # A built-in representation names its class here; a registered one brings its own factory.
        self.embedding: nn.Module = build_named_or_callable(build, shape)
        if head == "regression":
            self.head: nn.Module = RegressionHead(dim, act_dim, low, high, shared=shared_head)
        elif head == "categorical":
            classes = self.stride if (shared_head or self.max_features) else None
            self.head = CategoricalHead(dim, tokenizer, shared=shared_range or shared_head, classes=classes)
        else:
            raise ValueError(f"unknown action head {head!r}")
        self.tokens_per_step: int = self.embedding.tokens_per_step

    def _init_discrete(self, rep: ActionRepresentation, dim: int, tokenizer: TorchActionTokenizer | None,
                       num_actions: int, pool: str) -> None:
        """A Discrete(n) action: one token (the index tokenizer's), embedded as `rep` says, and a
        cross-entropy head over the n actions."""
        if rep.build_discrete_embedding is None:
            raise ConfigError(f"--model {rep.name} has no form for Discrete({num_actions}) actions; choose from "
                              f"{', '.join(n for n, r in REPRESENTATIONS.items() if r.build_discrete_embedding)}")
        if tokenizer is None or tokenizer.action_dim != 1 or int(tokenizer.num_bins[0]) != num_actions:
            raise ValueError(f"Discrete({num_actions}) actions need the index tokenizer of {num_actions} actions "
                             "(ActionTokenizer.for_indices)")
        self.tokenizer = tokenizer
        self.max_features, self.stride, self.id_base = 0, None, None
        self.representation = rep
        self.embedding = build_named_or_callable(rep.build_discrete_embedding, EmbeddingShape(num_actions, 1, dim, False, 0, pool))
        self.head = CategoricalHead(dim, tokenizer, shared=False)
        self.tokens_per_step = self.embedding.tokens_per_step

    def tokenize(self, actions: torch.Tensor) -> torch.Tensor | None:
        return None if self.tokenizer is None else self.tokenizer.encode(actions)

    def _embedding_ids(self, tokens: torch.Tensor | None) -> torch.Tensor | None:
        """The tokenizer's ids, or with max_features the task-independent ids: feature * num_bins + bin
        (per-feature offsets) or bin (shared range)."""
        if tokens is None or self.id_base is None:
            return tokens
        return tokens + self.id_base  # (B, T, d)

    def embed(self, actions: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        """(B, T, d) actions (+ their tokens) -> (B, T, k, D) action-token embeddings."""
        return self.embedding(actions, self._embedding_ids(tokens))
