"""The peer implementations, built once for every benchmark that compares against them.

Hugging Face's `DecisionTransformerModel` and d3rlpy's `DecisionTransformer` live only in
`.venv-bench` (docs/benchmarks.md); import this module inside the functions that need them.
"""

from __future__ import annotations

import torch
from torch import nn

from seqrl.data.sampler import Batch


def hf_decision_transformer(*, obs_dim: int, act_dim: int, embed: int, layers: int, heads: int, dropout: float,
                            max_ep_len: int) -> nn.Module:
    """HF's DT at seqrl's configuration (MLP 4x width, exact GELU, tanh action head), initialised
    from torch's global RNG. Its blocks are GPT-2's (Conv1D, pre-LayerNorm, fused qkv); it passes
    position ids of zero, so GPT-2's position table adds one learned constant vector to every token."""
    from transformers import DecisionTransformerConfig, DecisionTransformerModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # GPT-2's bos/eos token-id warnings, meaningless for a DT
    return DecisionTransformerModel(DecisionTransformerConfig(
        state_dim=obs_dim, act_dim=act_dim, hidden_size=embed, max_ep_len=max_ep_len, n_layer=layers, n_head=heads,
        n_inner=4 * embed, activation_function="gelu", resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
        action_tanh=True,
    ))


def to_d3rlpy_batch(batch: Batch):
    """seqrl's right-padded batch as d3rlpy's TorchTrajectoryMiniBatch (rewards and terminals unused by its DT)."""
    from d3rlpy.torch_utility import TorchTrajectoryMiniBatch

    B, T, _ = batch.states.shape
    zeros = torch.zeros(B, T, 1)
    return TorchTrajectoryMiniBatch(
        observations=batch.states, actions=batch.actions, rewards=zeros, returns_to_go=batch.returns_to_go,
        terminals=zeros, timesteps=batch.timesteps, masks=batch.mask.float(), device="cpu:0",
    )
