"""The Decision Transformer's action representations, registered by name (`--model NAME`).

Each is an `ActionRepresentation`: its embedding's factory and the facts the rest of seqrl asks
about it (tokenized, spread, pooled, per-feature tables). The config, the codec
(seqrl.families.dt.actions), fine-tuning and the report read these facts instead of parsing the
name, so a new representation is one `register_representation` call. This module imports no
torch: the config and `seqrl train --help` read the registry, and the embeddings are built
(from actions.py) only when a model is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from seqrl.errors import ConfigError


@dataclass(frozen=True)
class EmbeddingShape:
    """What an action embedding is built from (`ActionRepresentation.build_embedding`'s argument)."""

    vocab_size: int  # token ids of the action vocabulary (0 without a tokenizer)
    act_dim: int
    dim: int  # the trunk's width
    index_embedding: bool  # --action-index-embedding
    max_features: int  # --max-action-features (0: sized for act_dim)
    pool: str  # --pool, for a pooled token embedding


@dataclass(frozen=True)
class ActionRepresentation:
    """One way of feeding actions to the Decision Transformer (`--model NAME`), registered by name.

    Everything else in seqrl asks these fields instead of parsing the name, so a new
    representation is one `register_representation` call (see tests/families/dt/test_actions.py)."""

    name: str
    # The embedding: a callable EmbeddingShape -> nn.Module (with .tokens_per_step and
    # forward(actions, tokens) -> (B, T, k, D)), or the name of a built-in embedding class of
    # seqrl.families.dt.actions (built with its `from_shape`).
    build_embedding: Callable[[EmbeddingShape], Any] | str
    tokenized: bool  # actions enter as bin tokens: the action tokenizer is fitted and bins apply
    spread: bool  # one token per action feature, generated feature by feature (a shared head may read them all)
    pooled: bool = False  # several feature tokens pooled into one (--pool applies)
    feature_tables: bool = True  # has tables sized per action feature (--max-action-features applies)
    description: str = ""
    # How a Discrete(n) action index is embedded, as one token (the shape's vocab_size is n,
    # act_dim 1): a factory, or a built-in's name; None: this representation refuses discrete actions.
    build_discrete_embedding: Callable[[EmbeddingShape], Any] | str | None = None
    discrete_note: str = ""  # what the representation is on discrete actions (train's log, the docs)


REPRESENTATIONS: dict[str, ActionRepresentation] = {}


def register_representation(rep: ActionRepresentation) -> ActionRepresentation:
    if rep.name in REPRESENTATIONS:
        raise ValueError(f"action representation {rep.name!r} is already registered")
    REPRESENTATIONS[rep.name] = rep
    return rep


def representation(name: str) -> ActionRepresentation:
    """The representation registered as `name`, or a ConfigError listing the known ones."""
    try:
        return REPRESENTATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(REPRESENTATIONS)}") from None


# The built-in ones: their embeddings are classes of seqrl.families.dt.actions, named here and
# built there (`ActionCodec`), so this module never imports torch.
register_representation(ActionRepresentation(
    "continuous", "ActionEmbedding", tokenized=False, spread=False, feature_tables=False,
    description="the baseline DT: one linear embedding of the whole continuous action",
    build_discrete_embedding="discrete_one_hot",
    discrete_note="a linear embedding of the one-hot action, cross-entropy head"))
register_representation(ActionRepresentation(
    "tokenized", "ActionTokenizedEmbedding", tokenized=True, spread=False, pooled=True,
    description="per-feature bin tokens pooled into one action token",
    build_discrete_embedding="discrete_index_token",
    discrete_note="the action is one token of its n values, cross-entropy head"))
register_representation(ActionRepresentation(
    "tokenized-spread", "ActionTokenizedSpreadEmbedding", tokenized=True, spread=True,
    description="one bin token per action feature, generated feature by feature",
    build_discrete_embedding="discrete_index_token",
    discrete_note="one discrete feature is one token: the same network as tokenized"))
register_representation(ActionRepresentation(
    "continuous-spread", "ActionSpreadEmbedding", tokenized=False, spread=True,
    description="one continuous value per token (value * w + feature embedding)",
    build_discrete_embedding="discrete_one_hot",
    discrete_note="one discrete feature is one token: the same network as continuous (one-hot embedding)"))
