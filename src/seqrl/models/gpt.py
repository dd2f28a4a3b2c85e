"""The causal transformer trunk shared by every model (nanoGPT-style, pre-LayerNorm).

There are deliberately no position embeddings here: the Decision Transformer adds a learned
*timestep* embedding to every token of a step instead (Hugging Face's DT once kept GPT-2's
position embeddings on top of that by mistake; tests/families/dt check we have none).
Attention uses `scaled_dot_product_attention`, which picks a fused kernel on CPU and CUDA.

The last block can compute its output at a subset of positions only (`queries`): a model that
reads the hidden state at a few positions (the Decision Transformer reads 1 of every 3 tokens)
still needs keys and values everywhere, but not the query projection, attention output, MLP and
final norm elsewhere. That skips ~55% of the last block's FLOPs and changes no output.

Key/value cache (`cache`, `extend`): a forward can hand back every layer's keys and values, and
`extend` then computes the output at one new token per row from them: what a full forward over
the sequence with that token written in gives there, up to float rounding (the causal mask makes
everything before the token independent of it, so its keys and values are the cached ones).
`DecisionTransformer.act` uses it to generate spread actions feature by feature without
re-running the whole context for every feature.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_dropout = dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, queries: torch.Tensor | None = None, cache: list | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L, D) -> (B, L, D), or (B, Q, D) at the positions `queries` (see `select`).

        With `cache` (a list), this layer's keys and values, (B, H, L, D/H) each, are appended to it.
        `key_mask` (L,) bool: positions no query may attend to are False (on top of the causal
        mask; the TT's value masking). Not combined with `queries`.
        """
        B, L, D = x.shape
        H = self.n_heads
        if queries is not None and type(self.qkv) is not nn.Linear:
            # An adapter-wrapped projection (peft LoRA) has no plain weight to split: project every
            # position, then keep the queries' rows (same result, without the saving).
            q, k, v = self.qkv(x).split(D, dim=2)  # 3 x (B, L, D)
            q = select(q, queries)  # (B, Q, D)
            mask = (torch.arange(L, device=x.device) <= queries[..., None]).view(-1, 1, queries.shape[-1], L)
            causal = False
        elif queries is None:
            q, k, v = self.qkv(x).split(D, dim=2)  # 3 x (B, L, D)
            mask, causal = None, True
            if key_mask is not None:
                positions = torch.arange(L, device=x.device)
                mask, causal = (positions[None, :] <= positions[:, None]) & key_mask[None, :L], False  # (L, L)
        else:
            w_q, w_kv = self.qkv.weight.split([D, 2 * D])
            b_q, b_kv = self.qkv.bias.split([D, 2 * D])
            k, v = F.linear(x, w_kv, b_kv).split(D, dim=2)  # 2 x (B, L, D): every position
            q = F.linear(select(x, queries), w_q, b_q)  # (B, Q, D): only where outputs are read
            # Causal with respect to each query's own position: (B or 1, 1, Q, L).
            mask = (torch.arange(L, device=x.device) <= queries[..., None]).view(-1, 1, queries.shape[-1], L)
            causal = False
        # (B, n, D) -> (B, H, n, D/H)
        q, k, v = (t.view(B, -1, H, D // H).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            cache.append((k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0, is_causal=causal
        )  # (B, H, L or Q, D/H)
        y = y.transpose(1, 2).reshape(B, -1, D)
        return self.resid_dropout(self.proj(y))

    def extend(
        self, x: torch.Tensor, position: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, 1, D) -> (B, 1, D): one new token per row, at flat `position` (B,), against the cache.

        `keys`/`values` (B, H, L, D/H) hold a forward's keys and values; the new token's are written
        in at `position` (in place, so the next `extend` sees them), and it attends to positions
        <= its own only: later cached entries are stale (computed from placeholders) and must not count.
        """
        B, _, D = x.shape
        H = self.n_heads
        q, k, v = (t.view(B, 1, H, D // H).transpose(1, 2) for t in self.qkv(x).split(D, dim=2))  # (B, H, 1, D/H)
        rows = torch.arange(B, device=x.device)
        keys[rows, :, position] = k[:, :, 0]
        values[rows, :, position] = v[:, :, 0]
        L = keys.shape[2]
        mask = torch.arange(L, device=x.device) <= position[:, None]  # (B, L)
        if key_mask is not None:
            mask = mask & key_mask[None, :L]
        y = F.scaled_dot_product_attention(
            q, keys, values, attn_mask=mask.view(B, 1, 1, L), dropout_p=self.attn_dropout if self.training else 0.0
        )  # (B, H, 1, D/H)
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(B, 1, D)))


# GELU variants: exact erf (seqrl's default) or the tanh approximation GPT-2 was trained with
# (its "gelu_new"); a trunk initialised from GPT-2 must use the one GPT-2 used.
ACTIVATIONS = ("gelu", "gelu_tanh")


class MLP(nn.Module):
    def __init__(self, dim: int, dropout: float, activation: str = "gelu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
        self.approximate = "tanh" if activation == "gelu_tanh" else "none"
        self.fc = nn.Linear(dim, 4 * dim)
        self.proj = nn.Linear(4 * dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x), approximate=self.approximate)))


class Block(nn.Module):
    def __init__(self, dim: int, n_heads: int, dropout: float, activation: str = "gelu") -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, n_heads, dropout)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, dropout, activation)

    def forward(
        self, x: torch.Tensor, queries: torch.Tensor | None = None, cache: list | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        residual = x if queries is None else select(x, queries)  # (B, L or Q, D)
        x = residual + self.attn(self.ln_1(x), queries, cache, key_mask)
        return x + self.mlp(self.ln_2(x))

    def extend(
        self, x: torch.Tensor, position: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor],
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`forward` for one new token per row, attending to cached keys and values (see CausalSelfAttention.extend)."""
        x = x + self.attn.extend(self.ln_1(x), position, *kv, key_mask)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A stack of causal blocks: (B, L, D) embeddings in, (B, L, D) hidden states out."""

    def __init__(self, dim: int, n_layers: int, n_heads: int, dropout: float, activation: str = "gelu") -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim, n_heads, dropout, activation) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.apply(init_weights)
        # GPT-2's scaled init of residual projections keeps the residual stream's variance
        # independent of depth.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layers))

    def forward(
        self, x: torch.Tensor, queries: torch.Tensor | None = None, cache: list | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L, D) -> (B, L, D); with `queries`, only the outputs at those positions, (B, Q, D).

        Every block but the last needs all positions (later positions attend to them). With `cache`
        (an empty list), every layer's (keys, values) are appended to it, for `extend`; the last
        block computes keys and values at every position even with `queries`.
        """
        for block in self.blocks[:-1]:
            x = block(x, cache=cache, key_mask=key_mask)
        return self.ln_f(self.blocks[-1](x, queries, cache, key_mask))

    def extend(
        self, x: torch.Tensor, position: torch.Tensor, cache: list, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The output at one new token per row, (B, 1, D), without re-running the sequence.

        `x` (B, 1, D) embeds the token at flat `position` (B,) of each row; `cache` is a `forward`'s
        (over a sequence that agrees with this one before `position`) or an earlier `extend`'s.
        Equal to `forward(...)` at `position`, up to float rounding; the cache is updated in place.
        """
        for block, kv in zip(self.blocks, cache):
            x = block.extend(x, position, kv, key_mask)
        return self.ln_f(x)


def weight_decay_groups(model: nn.Module, weight_decay: float, also_decay: tuple[str, ...] = ()) -> list[dict]:
    """AdamW groups of a model's trainable parameters: decay on weight matrices of linear layers
    (and on parameters named in `also_decay`, e.g. the TT's per-position heads), never on norms,
    biases or embeddings (nanoGPT's rule)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_matrix = p.dim() >= 2 and name == "weight" and not isinstance(module, (nn.Embedding, nn.LayerNorm))
            (decay if is_matrix or name in also_decay else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def select(x: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Rows of (B, L, D) `x` at `queries`: (Q,) positions shared by every row, or (B, Q) per row."""
    if queries.dim() == 1:
        return x[:, queries]  # (B, Q, D)
    return torch.gather(x, 1, queries[..., None].expand(-1, -1, x.shape[-1]))  # (B, Q, D)


def init_weights(module: nn.Module) -> None:
    """GPT-2 initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
