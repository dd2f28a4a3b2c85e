"""The peer implementations, built once for every benchmark that compares against them.

Hugging Face's `DecisionTransformerModel` and d3rlpy's `DecisionTransformer` live only in
`.venv-bench` (docs/benchmarks.md); import this module inside the functions that need them.
faster-trajectory-transformer (a TT with a key/value cache and batched beam search) is not
installed anywhere: it is imported at run time from its unmodified copy in ../shared/peers
(`SEQRL_PEERS` overrides the folder; its README says how the copies may be loaded).
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

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


# --------------------------------------------------------------------------- faster-trajectory-transformer
PEERS = Path(os.environ.get("SEQRL_PEERS", Path(__file__).resolve().parents[2] / "shared" / "peers"))


def faster_tt() -> types.SimpleNamespace:
    """faster-TT's `gpt`, `beam` and `discretization` modules, imported from the peers folder.

    Its package `trajectory.models.gpt` has an `__init__` that imports its trainer (and wandb):
    the packages are registered here as empty stubs that only say where their files are, so
    importing `trajectory.models.gpt.gpt` runs `gpt.py` (and `ein_linear.py`, `utils/common.py`)
    and nothing else. `utils/env.py` (gym, d4rl) is never imported. Both TT peers call their
    package `trajectory`: one per process. The planner's per-plan progress bar (`trange`) is
    replaced by `range` in the loaded module (the files are not touched).
    """
    import importlib

    root = PEERS / "faster-trajectory-transformer"
    if not (root / "trajectory" / "planning" / "beam.py").exists():
        raise FileNotFoundError(f"faster-trajectory-transformer not found under {PEERS} (set SEQRL_PEERS)")
    for name in ("trajectory", "trajectory.models", "trajectory.models.gpt", "trajectory.planning", "trajectory.utils"):
        module = sys.modules.get(name)
        folder = str(root.joinpath(*name.split(".")))
        if module is None:
            module = sys.modules[name] = types.ModuleType(name)
            module.__path__ = [folder]
        elif list(getattr(module, "__path__", [])) != [folder]:
            raise RuntimeError(f"another `{name}` is already imported in this process: {module}")
    beam = importlib.import_module("trajectory.planning.beam")
    beam.trange = lambda n, **_: range(n)  # its tqdm progress bar per plan: output, not planning
    return types.SimpleNamespace(
        gpt=importlib.import_module("trajectory.models.gpt.gpt"),
        beam=beam,
        discretization=importlib.import_module("trajectory.utils.discretization"),
    )


def faster_tt_gpt(model: nn.Module) -> nn.Module:
    """faster-TT's GPT with the weights of seqrl's `TrajectoryTransformer` `model` (in eval mode).

    Layouts: seqrl's token ids carry per-dimension offsets (`discretizer.offsets`, the sums of
    the earlier dimensions' bin counts) into one table of `vocab_size` rows; faster-TT's inputs
    are bins within their dimension, and it adds `dim * V` itself (V = the most bins of any
    dimension) into a table of T * V rows. Rows of bins a dimension lacks stay zero (never
    read); faster-TT's `stop_token` (T * V) indexes no row in either model and is never used by
    its planner. faster-TT's position table has `seq_len` rows: seqrl's `block_size` (its
    trained window, one token short of `sequence_length` transitions; faster-TT's configs use a
    whole 160-token window). Its blocks use `nn.MultiheadAttention`, whose `in_proj` packs
    q, k, v in seqrl's `qkv` order and splits heads as seqrl does. Its per-position head
    (EinLinear, `use_sep_heads`) has no bias: seqrl's `head_bias` must be zero (asserted; it is
    initialised to zero, so a fresh model passes). Every copy checks shapes; every parameter
    and buffer of the peer is either written or a buffer it builds itself (its attention masks).
    """
    ftt = faster_tt()
    disc, trunk = model.discretizer, model.trunk
    T, D = model.transition_dim, model.embed_tokens.embedding_dim
    V = int(disc.bins_per_feature.max())
    if model.goal_dim:
        raise ValueError("faster-TT has no goal prefix")
    if torch.any(model.head_bias != 0):
        raise ValueError("faster-TT's head has no bias: zero seqrl's head_bias first")
    blocks = trunk.blocks
    peer = ftt.gpt.GPT(
        vocab_size=V, transition_dim=T, observation_dim=model.observation_dim, action_dim=model.action_dim,
        seq_len=model.block_size, embedding_dim=D, num_layers=len(blocks), num_heads=blocks[0].attn.n_heads,
        use_sep_heads=True,
    )
    # Token embedding: peer row dim * V + bin  <-  seqrl row offsets[dim] + bin.
    tok = torch.zeros(T * V, D)
    for dim in range(T):
        n, start = int(disc.bins_per_feature[dim]), int(disc.offsets[dim])
        tok[dim * V : dim * V + n] = model.embed_tokens.weight[start : start + n]
    source = {
        "tok_emb.weight": tok,
        "pos_emb": model.embed_position.weight[None],  # (1, seq_len, D)
        "norm.weight": trunk.ln_f.weight,
        "norm.bias": trunk.ln_f.bias,
        "head.weight": model.head_weight,  # (T, V, D): position i's head predicts dim (i + 1) % T
    }
    for i, block in enumerate(blocks):
        ours = {
            "norm1": block.ln_1, "norm2": block.ln_2, "attention.in_proj": block.attn.qkv,
            "attention.out_proj": block.attn.proj, "mlp.0": block.mlp.fc, "mlp.2": block.mlp.proj,
        }
        for name, module in ours.items():
            source[f"blocks.{i}.{name}_weight" if name.endswith("in_proj") else f"blocks.{i}.{name}.weight"] = module.weight
            source[f"blocks.{i}.{name}_bias" if name.endswith("in_proj") else f"blocks.{i}.{name}.bias"] = module.bias
    target = peer.state_dict()
    built = {k for k in target if k.endswith(".attn_mask")}  # its own causal + value masks
    missing, unknown = set(target) - set(source) - built, set(source) - set(target)
    if missing or unknown:
        raise KeyError(f"weight map incomplete: peer keys not written {sorted(missing)}, unknown {sorted(unknown)}")
    for key, value in source.items():
        if tuple(value.shape) != tuple(target[key].shape):
            raise ValueError(f"{key}: seqrl {tuple(value.shape)} vs faster-TT {tuple(target[key].shape)}")
        target[key] = value.detach().clone()
    peer.load_state_dict(target)
    return peer.eval()


def faster_tt_discretizer(model: nn.Module):
    """faster-TT's `KBinsDiscretizer` holding seqrl's bin values, for its planner's `expectation`.

    Its own constructor fits edges to data; the planner only reads `bin_centers_torch` (T, V),
    the value of every bin, which here is seqrl's `value_table` (so both planners score
    candidates with the same reward and value expectations).
    """
    ftt = faster_tt()
    discretizer = object.__new__(ftt.discretization.KBinsDiscretizer)
    table = model.discretizer.value_table.detach().clone()
    discretizer.n_bins, discretizer.feature_dim, discretizer.strategy = table.shape[1], table.shape[0], "seqrl"
    discretizer.bin_centers, discretizer.bin_centers_torch = table.numpy(), table
    return discretizer


def faster_tt_tokens(model: nn.Module, tokens: torch.Tensor, first_dim: int = 0) -> torch.Tensor:
    """seqrl token ids (with offsets) -> faster-TT's (bins within their dimension); the first
    token is of dimension `first_dim`."""
    dims = (torch.arange(tokens.shape[-1], device=tokens.device) + first_dim) % model.transition_dim
    return tokens - model.discretizer.offsets[dims]


def seqrl_tokens(model: nn.Module, local: torch.Tensor, first_dim: int = 0) -> torch.Tensor:
    """faster-TT's token ids -> seqrl's (the inverse of `faster_tt_tokens`)."""
    dims = (torch.arange(local.shape[-1], device=local.device) + first_dim) % model.transition_dim
    return local + model.discretizer.offsets[dims]
