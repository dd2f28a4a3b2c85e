"""The Trajectory Transformer (Janner, Li & Levine 2021): a GPT over flat token sequences.

A sequence is transitions `[s_0 .. s_{n-1}, a_0 .. a_{m-1}, r, V]` of T tokens each, every token
an id with its dimension's offset (families/tt/data.py), starting at a transition boundary, so
the dimension of the token at position i is i % T. The model embeds ids with one table, adds a
learned position embedding (the window is at most `block_size` = sequence_length*T - 1 tokens),
runs the causal trunk of models/gpt.py, and predicts the next token with one head per position
in the transition: position i (dimension i % T) predicts dimension (i + 1) % T, over that
dimension's bins (a dimension with fewer bins has the rest masked to -inf).

A goal-conditioned model (cfg.goal, families/tt/goals.py) reads a prefix of G goal tokens
before the window: embedded with the same table as the state dimensions they are (a goal x is
a state x), plus a goal position table of their own, and visible to every later position under
the ordinary causal mask. The prefix is never predicted; window positions keep their numbering.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqrl.data.tokenizer import TorchActionTokenizer
from seqrl.distributed import global_mean
from seqrl.families.tt.config import TTConfig
from seqrl.families.tt.data import TokenBatch
from seqrl.models.gpt import GPT, init_weights, weight_decay_groups
from seqrl.models.spec import DataSpec

KINDS = ("state", "action", "reward", "value")


class TrajectoryTransformer(nn.Module):

    def __init__(self, cfg: TTConfig, spec: DataSpec, discretizer: TorchActionTokenizer) -> None:
        super().__init__()
        from seqrl.families.tt.goals import goal_layout

        self.spec = spec
        self.discretizer = discretizer
        self.layout = goal_layout(cfg, spec.obs_dim)
        self.goal_dim = self.layout.goal_dim  # G tokens before the window (0: not goal-conditioned)
        self.observation_dim, self.action_dim = len(self.layout.state_columns), spec.act_dim
        T = self.transition_dim = self.observation_dim + spec.act_dim + 2
        if discretizer.action_dim != T:
            raise ValueError(f"the discretizer has {discretizer.action_dim} dimensions, a transition {T}")
        self.block_size = cfg.sequence_length * T - 1  # training inputs: a window minus its last token
        self.mask_values = cfg.mask_values
        dim = cfg.embed_dim
        bins = int(discretizer.bins_per_feature.max())
        self.embed_tokens = nn.Embedding(discretizer.vocab_size, dim)
        self.embed_position = nn.Embedding(self.block_size, dim)
        if self.goal_dim:
            self.embed_goal_position = nn.Embedding(self.goal_dim, dim)
            self.register_buffer("goal_offsets", discretizer.offsets[list(self.layout.goal_positions)].clone(),
                                 persistent=False)
        self.embed_dropout = nn.Dropout(cfg.dropout)
        # One (bins x dim) head per position in the transition (the authors' EinLinear).
        self.head_weight = nn.Parameter(torch.empty(T, bins, dim))
        self.head_bias = nn.Parameter(torch.zeros(T, bins))
        predicted = (torch.arange(T) + 1) % T  # the dimension each in-transition position predicts
        valid = torch.arange(bins)[None, :] < discretizer.bins_per_feature[predicted][:, None]  # (T, bins)
        self.register_buffer("valid_bins", valid, persistent=False)
        self.register_buffer("predicted_dim", predicted, persistent=False)
        weights = torch.ones(T)  # loss weight of each predicted dimension
        n_state = self.observation_dim
        weights[n_state : n_state + spec.act_dim] = cfg.action_weight
        weights[T - 2], weights[T - 1] = cfg.reward_weight, cfg.value_weight
        self.register_buffer("dim_weight", weights, persistent=False)
        kind = torch.zeros(T, dtype=torch.long)
        kind[n_state : n_state + spec.act_dim], kind[T - 2], kind[T - 1] = 1, 2, 3
        self.register_buffer("dim_kind", kind, persistent=False)
        self.apply(init_weights)
        nn.init.normal_(self.head_weight, mean=0.0, std=0.02)
        self.trunk = GPT(dim, cfg.n_layers, cfg.n_heads, cfg.dropout, getattr(cfg, "activation", "gelu"))

    # ----------------------------------------------------------------------- forward
    def key_mask(self, length: int, device: torch.device) -> torch.Tensor | None:
        """(G + length,) bool over the goal prefix and `length` window positions: False at value
        tokens when values are masked from attention (else None). Goal tokens are always visible."""
        if not self.mask_values:
            return None
        window = (torch.arange(length, device=device) % self.transition_dim) != self.transition_dim - 1
        return torch.cat([torch.ones(self.goal_dim, dtype=torch.bool, device=device), window])

    def embed(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(B, L) ids at window positions (L,) -> (B, L, D)."""
        return self.embed_dropout(self.embed_tokens(tokens) + self.embed_position(positions))

    def embed_goal(self, goal: torch.Tensor) -> torch.Tensor:
        """(B, G) goal token ids -> (B, G, D)."""
        positions = torch.arange(self.goal_dim, device=goal.device)
        return self.embed_dropout(self.embed_tokens(goal) + self.embed_goal_position(positions))

    def _check_goal(self, goal: torch.Tensor | None, rows: int) -> None:
        if self.goal_dim and goal is None:
            raise ValueError(f"this Trajectory Transformer is goal-conditioned: pass goal=(B, {self.goal_dim}) token ids")
        if not self.goal_dim and goal is not None:
            raise ValueError("this Trajectory Transformer is not goal-conditioned: it takes no goal")
        if goal is not None and tuple(goal.shape) != (rows, self.goal_dim):
            raise ValueError(f"goal must be ({rows}, {self.goal_dim}) token ids, got {tuple(goal.shape)}")

    def goal_tokens(self, goal_values: torch.Tensor) -> torch.Tensor:
        """(B, G) goal states (in the goal's dims) -> (B, G) token ids, discretized as those state dims are."""
        positions = list(self.layout.goal_positions)
        rows = torch.zeros(goal_values.shape[0], self.transition_dim, dtype=goal_values.dtype, device=goal_values.device)
        rows[:, positions] = goal_values
        return self.discretizer.encode(rows)[:, positions]

    def head(self, hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(B, L, D) hidden states at window positions (L,) -> (B, L, bins) float32 logits of the next token."""
        slot = positions % self.transition_dim  # (L,)
        logits = torch.einsum("bld,lkd->blk", hidden, self.head_weight[slot]) + self.head_bias[slot]
        return logits.float().masked_fill(~self.valid_bins[slot], float("-inf"))

    def forward(self, tokens: torch.Tensor, cache: list | None = None, goal: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) ids of a window starting at a transition boundary -> (B, L, bins) next-token logits.

        With `cache` (an empty list), every layer's keys and values are appended to it (see GPT.extend);
        a goal-conditioned model's cache starts with the G goal positions. `goal`: (B, G) goal
        token ids, for a goal-conditioned model only.
        """
        B, L = tokens.shape
        if L > self.block_size:
            raise ValueError(f"a window holds at most {self.block_size} tokens, got {L}")
        self._check_goal(goal, B)
        positions = torch.arange(L, device=tokens.device)
        x = self.embed(tokens, positions)
        if self.goal_dim:
            x = torch.cat([self.embed_goal(goal), x], dim=1)  # (B, G + L, D)
        hidden = self.trunk(x, cache=cache, key_mask=self.key_mask(L, tokens.device))
        return self.head(hidden[:, self.goal_dim :], positions)

    def extend(self, tokens: torch.Tensor, position: int, cache: list, capacity: int) -> torch.Tensor:
        """(B,) ids written at window `position` -> (B, bins) next-token logits, from the cache.

        `cache` holds keys and values of the goal prefix and window positions < `position` (a
        `forward`'s, padded to G + `capacity`, or earlier `extend`s'); it is updated in place.
        """
        B = tokens.shape[0]
        where = torch.full((B,), self.goal_dim + position, device=tokens.device, dtype=torch.long)  # its cache slot
        positions = torch.full((1,), position, device=tokens.device, dtype=torch.long)
        hidden = self.trunk.extend(self.embed(tokens[:, None], positions), where, cache,
                                   key_mask=self.key_mask(capacity, tokens.device))  # (B, 1, D)
        return self.head(hidden, positions)[:, 0]

    # ----------------------------------------------------------------------- loss
    def local_bins(self, tokens: torch.Tensor, dims: torch.Tensor) -> torch.Tensor:
        """Token ids -> bin indices within their dimension (`dims` broadcasts against `tokens`)."""
        return tokens - self.discretizer.offsets[dims]

    def loss_terms(self, batch: TokenBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted cross-entropy of every real next token, normalised by the number of real tokens.

        Terms: the mean cross-entropy of each kind of token (state, action, reward, value).
        """
        inputs, targets, mask = batch.tokens[:, :-1], batch.tokens[:, 1:], batch.mask[:, 1:]  # (B, L-1)
        logits = self(inputs, goal=batch.goal)  # (B, L-1, bins)
        dims = (torch.arange(1, batch.tokens.shape[1], device=inputs.device) % self.transition_dim)  # (L-1,)
        bins = self.local_bins(targets, dims)  # (B, L-1)
        # Padded targets are any valid id: clamp keeps them in range; the mask drops them.
        ce = F.cross_entropy(logits.transpose(1, 2), bins.clamp(min=0), reduction="none")  # (B, L-1)
        real = mask.float()
        count = real.sum().clamp(min=1)
        loss = global_mean((ce * self.dim_weight[dims] * real).sum() / count, real.sum())  # over every process's tokens
        terms = {}
        kinds = self.dim_kind[dims]  # (L-1,)
        for k, name in enumerate(KINDS):
            selected = real * (kinds == k)
            terms[name] = global_mean((ce.detach() * selected).sum() / selected.sum().clamp(min=1), selected.sum())
        return loss, terms

    def loss(self, batch: TokenBatch) -> torch.Tensor:
        return self.loss_terms(batch)[0]

    # ----------------------------------------------------------------------- optimisation
    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on linear weight matrices and the heads, never on norms, biases or embeddings."""
        return weight_decay_groups(self, weight_decay, also_decay=("head_weight",))
