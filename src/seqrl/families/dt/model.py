"""The Decision Transformer, with a pluggable action codec (see actions.py).

Each timestep becomes 2 + k tokens, `R_t, s_t, a_t^0 .. a_t^{k-1}`, where k is 1 for pooled
action representations and act_dim for spread ones. Every token of a step gets the same
learned timestep embedding added (no per-token position embeddings). A causal GPT runs over
the flattened sequence; the codec reads the action back out of the hidden states at the k
positions that precede each action token (the state token and the first k-1 action tokens).

Inputs are already normalised: states by the DataSpec's mean/std, returns-to-go multiplied by
its rtg_scale, actions raw (within the action bounds). Sequences are right-padded (see
data/sampler.py): causality keeps padding out of every real position's output.
"""

from __future__ import annotations

import torch
from torch import nn

from seqrl.families.dt.config import TrainConfig
from seqrl.data.sampler import Batch
from seqrl.data.tokenizer import TorchActionTokenizer
from seqrl.families.dt.actions import ActionCodec
from seqrl.models.encoders import state_encoder
from seqrl.models.gpt import GPT, init_weights, weight_decay_groups
from seqrl.models.spec import DataSpec


class DecisionTransformer(nn.Module):

    def __init__(self, cfg: TrainConfig, spec: DataSpec, tokenizer: TorchActionTokenizer | None = None) -> None:
        super().__init__()
        if spec.discrete:  # one action token of n values, a cross-entropy head (or a ConfigError naming a flag)
            cfg = cfg.for_discrete(spec.num_actions, spec.dataset)
        self.spec = spec
        self.decode_mode = cfg.decode
        self.temperature = cfg.temperature
        dim = cfg.embed_dim
        self.embed_return = nn.Linear(1, dim)
        self.embed_state = state_encoder(spec, dim)  # linear, or the Nature-DQN convolutions on images
        self.embed_timestep = nn.Embedding(spec.max_timestep + 1, dim)
        low = torch.tensor(spec.action_low, dtype=torch.float32)
        high = torch.tensor(spec.action_high, dtype=torch.float32)
        # The middle of the action box (discrete: action 0): the placeholder for the action being
        # generated in `act`, a valid action so that tokenizing it is well defined.
        self.register_buffer("action_center", torch.zeros(1) if spec.discrete else (low + high) / 2, persistent=False)
        if cfg.max_action_features and spec.act_dim > cfg.max_action_features:
            from seqrl.errors import ConfigError

            raise ConfigError(f"--max-action-features {cfg.max_action_features} is below {spec.dataset}'s "
                              f"{spec.act_dim} action features")
        self.codec = ActionCodec(
            cfg.model, cfg.head, spec.act_dim, dim, low, high, tokenizer, cfg.action_index_embedding,
            shared_head=cfg.spread_head == "shared", max_features=cfg.max_action_features,
            num_bins=cfg.num_bins, pool=cfg.pool, num_actions=spec.num_actions,
        )
        self.tokens_per_step = 2 + self.codec.tokens_per_step
        self.embed_ln = nn.LayerNorm(dim)
        self.embed_dropout = nn.Dropout(cfg.dropout)
        self.apply(init_weights)  # before the trunk, which initialises itself
        self.trunk = GPT(dim, cfg.n_layers, cfg.n_heads, cfg.dropout, getattr(cfg, "activation", "gelu"))
        # The language-model objectives (alignment, co-training; seqrl.lm_init.objectives), if asked for.
        self.lm_objectives = None
        if getattr(cfg, "align_weight", 0.0) or getattr(cfg, "cotrain_weight", 0.0):
            from seqrl.lm_init.objectives import LMObjectives

            self.lm_objectives = LMObjectives(cfg, dim)

    # ----------------------------------------------------------------------- forward
    def embed(
        self,
        returns_to_go: torch.Tensor,  # (B, T, 1)
        states: torch.Tensor,  # (B, T, obs_dim), or (B, T, *obs_shape) uint8 images
        actions: torch.Tensor,  # (B, T, act_dim)
        timesteps: torch.Tensor,  # (B, T)
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The trunk's input, (B, T*m, D) interleaved `R, s, a_0 ..` tokens, and the action tokens.

        Every token depends on its own step's inputs only (LayerNorm is per token), so `act`
        embeds the last step alone to get a new action token exactly as `forward` sees it.
        """
        k = self.codec.tokens_per_step
        tokens = self.codec.tokenize(actions)  # (B, T, d) or None
        time = self.embed_timestep(timesteps.clamp(0, self.spec.max_timestep))  # (B, T, D)
        step_tokens = torch.cat(
            [
                self.embed_return(returns_to_go).unsqueeze(2),  # (B, T, 1, D)
                self.embed_state(states).unsqueeze(2),  # (B, T, 1, D)
                self.codec.embed(actions, tokens),  # (B, T, k, D)
            ],
            dim=2,
        ) + time.unsqueeze(2)  # (B, T, 2 + k, D)
        return self.embed_dropout(self.embed_ln(step_tokens.flatten(1, 2))), tokens  # (B, T*(2 + k), D)

    def input_embeddings(self, batch: Batch) -> torch.Tensor:
        """The trunk's input tokens before dropout, (B, T*m, D): what the alignment loss aligns."""
        was = self.embed_dropout.p
        self.embed_dropout.p = 0.0
        try:
            x, _ = self.embed(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
        finally:
            self.embed_dropout.p = was
        return x

    def forward(
        self,
        returns_to_go: torch.Tensor,  # (B, T, 1)
        states: torch.Tensor,  # (B, T, obs_dim)
        actions: torch.Tensor,  # (B, T, act_dim)
        timesteps: torch.Tensor,  # (B, T)
        step: torch.Tensor | None = None,  # (B,): only this step's outputs per row
        cache: list | None = None,  # filled with every layer's keys and values (see GPT.extend)
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Hidden states at the action-predicting positions, (B, T, k, D), and the action tokens.

        With `step`, only the hidden states of that step of each row, (B, 1, k, D): what `act`
        reads, for a fraction of the last block's work.
        """
        B, T = states.shape[:2]
        k = self.codec.tokens_per_step
        m = 2 + k  # tokens per step
        x, tokens = self.embed(returns_to_go, states, actions, timesteps)  # (B, T*m, D)
        # Flat positions of the k action-predicting tokens (the state token and the first k-1
        # action tokens) of every step, or of `step` only: the trunk computes outputs there only.
        slot = 1 + torch.arange(k, device=x.device)  # (k,)
        if step is None:
            queries = (torch.arange(T, device=x.device)[:, None] * m + slot).flatten()  # (T*k,)
        else:
            queries = step[:, None] * m + slot  # (B, k)
        hidden = self.trunk(x, queries, cache)  # (B, T*k or k, D)
        return hidden.view(B, -1, k, hidden.shape[-1]), tokens  # (B, T or 1, k, D)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Masked action loss of a batch of right-padded windows (all tensors on the model's device)."""
        hidden, tokens = self(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
        prediction = self.codec.head(hidden)
        return self.codec.head.loss(prediction, batch.actions, tokens, batch.mask)

    def loss_terms(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What the training loop calls: the loss and its named terms.

        The action loss alone, unless the language-model objectives are on: then `action` plus
        the weighted `align` (minus the mean maximum cosine to the LM's centres, over real tokens)
        and `cotrain` (the LM loss on the batch's corpus windows); each is logged unweighted.
        """
        loss = self.loss(batch)
        objectives = self.lm_objectives
        if objectives is None:
            return loss, {}
        terms = {"action": loss.detach()}
        if objectives.align_weight:
            mask = batch.mask.bool().repeat_interleave(self.tokens_per_step, dim=1)  # (B, T*m): every token of a real step
            weighted, value = objectives.align_term(self.input_embeddings(batch), mask)
            loss = loss + weighted
            terms["align"] = value.detach()
        if objectives.cotrain_weight:
            text = getattr(batch, "text", None)
            if text is None:
                raise RuntimeError("co-training needs batches with corpus windows (seqrl.lm_init.objectives.CotrainSampler)")
            value = objectives.cotrain_term(self.trunk, text)
            loss = loss + objectives.cotrain_weight * value
            terms["cotrain"] = value.detach()
        return loss, terms

    # ----------------------------------------------------------------------- inference
    @torch.no_grad()
    def act(
        self,
        returns_to_go: torch.Tensor,  # (B, T, 1)
        states: torch.Tensor,  # (B, T, obs_dim)
        actions: torch.Tensor,  # (B, T, act_dim): the last step's entries are ignored
        timesteps: torch.Tensor,  # (B, T)
        lengths: torch.Tensor | None = None,  # (B,) real steps per row (right-padded); default T
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """The action for the last real step of each context, (B, act_dim).

        Spread representations generate the action feature by feature: feature j is decoded
        from the hidden state at the token before it, written into the context, and the next
        pass reads it. The causal mask makes placeholder values of later features irrelevant.
        With `use_cache` (in eval mode), passes after the first run only the token just written,
        against the keys and values the first pass cached (see `_act_cached`); `use_cache=False`
        re-runs the whole context every pass.
        """
        B, T, d = actions.shape
        if lengths is None:
            lengths = torch.full((B,), T, device=states.device, dtype=torch.long)
        rows = torch.arange(B, device=states.device)
        last = lengths - 1  # (B,)
        actions = actions.clone()
        actions[rows, last] = self.action_center.to(actions.dtype)  # placeholder inside the bounds, so tokenizing it is well defined
        passes = d if self.codec.tokens_per_step > 1 else 1
        # In training mode dropout differs between passes, so a cache would not be exact.
        if passes > 1 and use_cache and not self.training:
            return self._act_cached(returns_to_go, states, actions, timesteps, last, generator)
        decoded = None
        for j in range(passes):
            hidden, _ = self(returns_to_go, states, actions, timesteps, step=last)  # (B, 1, k, D)
            decoded = self._decode(hidden, generator)  # (B, d)
            if passes > 1:
                actions[rows, last, j] = decoded[:, j]
        return actions[rows, last] if passes > 1 else decoded

    def _act_cached(
        self,
        returns_to_go: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,  # the last real step holds the placeholder; overwritten in place
        timesteps: torch.Tensor,
        last: torch.Tensor,  # (B,) index of each row's last real step
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Spread `act` with a key/value cache: one full pass, then one token per feature.

        Feature j's pass only differs from the previous one at action token j-1 of the last step,
        so everything before that token (in every layer) is the first pass's, and the trunk
        extends the cache by that one token, at its own position in each row.
        """
        rows = torch.arange(len(last), device=last.device)
        m = self.tokens_per_step
        cache: list = []
        hidden, _ = self(returns_to_go, states, actions, timesteps, step=last, cache=cache)  # (B, 1, d, D)
        for j in range(actions.shape[-1]):
            if j > 0:
                # Embed the last step alone (as `forward` embeds every step: timestep, LayerNorm..)
                # and take action token j-1, at in-step position 2 + (j-1).
                x, _ = self.embed(returns_to_go[rows, last, None], states[rows, last, None],
                                  actions[rows, last, None], timesteps[rows, last, None])  # (B, m, D)
                hidden[:, 0, j] = self.trunk.extend(x[:, 1 + j : 2 + j], last * m + 1 + j, cache)[:, 0]
            # Slots < j hold the first pass's states (their tokens did not change), slots > j stale
            # ones, unused: the head still decodes all d, so sampling draws from `generator` exactly
            # as the uncached loop does.
            actions[rows, last, j] = self._decode(hidden, generator)[:, j]
        return actions[rows, last]

    def _decode(self, hidden: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, 1, k, D) hidden states of the last step -> (B, d) decoded action."""
        prediction = self.codec.head(hidden)  # (B, 1, d[, bins])
        return self.codec.head.decode(
            prediction, mode=self.decode_mode, temperature=self.temperature, generator=generator
        )[:, 0]

    # ----------------------------------------------------------------------- optimisation
    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on linear/head weight matrices only, never on norms, biases or embeddings."""
        return weight_decay_groups(self, weight_decay)
