"""A causal language model on models/gpt.py's trunk, with a tied token head (GPT-2's layout).

Token embedding `tok` (V, D) plus a learned position table `pos` (P, D), dropout, the trunk,
logits h @ tok^T. `seqrl.lm_init.sources` reads `trunk.*`, `tok.weight` and `pos.weight` of its checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqrl.lm_init.text import TextBatch
from seqrl.models.gpt import GPT, init_weights


class CausalLM(nn.Module):

    def __init__(self, vocab_size: int, context_len: int, dim: int, n_layers: int, n_heads: int, dropout: float,
                 activation: str = "gelu_tanh") -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(context_len, dim)
        self.dropout = nn.Dropout(dropout)
        self.apply(init_weights)
        self.trunk = GPT(dim, n_layers, n_heads, dropout, activation)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, L, V) next-token logits."""
        L = tokens.shape[1]
        x = self.dropout(self.tok(tokens) + self.pos.weight[:L])  # (B, L, D)
        return self.trunk(x) @ self.tok.weight.t()  # (B, L, V): the tied head

    def loss_terms(self, batch: TextBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        tokens = batch.tokens
        logits = self(tokens[:, :-1])
        return F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten()), {}

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on the trunk's weight matrices, never on embeddings, norms or biases."""
        decay = [p for n, p in self.named_parameters() if p.requires_grad and n.startswith("trunk.") and p.dim() >= 2]
        ids = {id(p) for p in decay}
        no_decay = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
