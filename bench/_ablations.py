"""seqrl as it was before a speed change, for the --ablations rows of the benchmarks.

Each function turns a freshly built model into its 'before' form, so every change's effect is
measured in the same run as the current code (docs/benchmarks.md quotes these rows).
"""

from __future__ import annotations

import torch

from seqrl.families.dt.model import DecisionTransformer


class _AllPositions(DecisionTransformer):
    """The forward before last-block pruning: the trunk computes every position's output and
    the action-predicting ones are sliced out afterwards (and `act` slices the last step)."""

    def forward(self, returns_to_go, states, actions, timesteps, step=None):  # noqa: ANN001
        B, T, _ = states.shape
        k = self.codec.tokens_per_step
        tokens = self.codec.tokenize(actions)
        time = self.embed_timestep(timesteps.clamp(0, self.spec.max_timestep))
        step_tokens = torch.cat(
            [self.embed_return(returns_to_go).unsqueeze(2), self.embed_state(states).unsqueeze(2), self.codec.embed(actions, tokens)],
            dim=2,
        ) + time.unsqueeze(2)
        x = self.embed_dropout(self.embed_ln(step_tokens.flatten(1, 2)))
        hidden = self.trunk(x).view(B, T, 2 + k, -1)[:, :, 1 : 1 + k]  # (B, T, k, D)
        if step is not None:
            hidden = hidden[torch.arange(B, device=hidden.device), step].unsqueeze(1)  # (B, 1, k, D)
        return hidden, tokens


def all_positions(model: DecisionTransformer) -> DecisionTransformer:
    """Same parameters, but the last block runs at every position (the code before pruning)."""
    model.__class__ = _AllPositions
    return model
