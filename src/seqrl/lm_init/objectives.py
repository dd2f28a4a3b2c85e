"""The two auxiliary objectives of Reid, Yamada & Gu (2022), as loss terms of any model with a trunk.

**Alignment** (`alignment_loss`): for every real input embedding I_i (padding masked out), the
maximum cosine similarity to the k-means centres C_j of the LM's token embeddings; the loss is
minus its mean over real tokens,

    L_align = - mean_i max_j cos(I_i, C_j).

This is the paper's definition. The authors' code instead takes a per-dimension maximum of
elementwise products and materialises a B x 3K x k x d tensor; here it is one (N, d) x (d, k)
matrix product of unit vectors. The centres are computed once with scikit-learn's KMeans
(seeded) and cached on disk by the LM checkpoint's hash (`kmeans_centres`). The weight follows
the authors' sigmoid schedule, lambda1 * sigmoid((T/2 - t) / (T/10)): 0.993, 0.5, 0.0067 of
lambda1 at t = 0, T/2, T (T = --align-anneal-steps, by default the run's --steps).

**Co-training** (`cotrain_loss`): the next-token loss of the LM on corpus windows, run through
the same trunk with the LM's token and position embeddings and its tied token head (logits =
h @ E^T), weighted by lambda2.

`LMObjectives` holds what both need (centres, the LM's embeddings) as model state, so a
checkpoint resumes and evaluates without the LM's files; its tensors take their shapes from the
source (`set_source`) or the checkpoint being loaded.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqrl.distributed import global_mean
from seqrl.errors import ConfigError


def alignment_schedule(step: int | torch.Tensor, anneal_steps: int = 5000) -> float | torch.Tensor:
    """The authors' sigmoid anneal of the alignment weight: ~1 at step 0, 0.5 halfway, ~0 at `anneal_steps`."""
    half, width = anneal_steps / 2, anneal_steps / 10
    if isinstance(step, torch.Tensor):
        return torch.sigmoid((half - step.float()) / width)
    return 1.0 / (1.0 + math.exp(-(half - step) / width))


def alignment_loss(inputs: torch.Tensor, centres: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Minus the mean over real tokens of max_j cos(inputs_i, centres_j).

    inputs (B, L, D), centres (k, D), mask (B, L) bool (True: a real token) or None.
    """
    dtype = torch.float64 if inputs.dtype == torch.float64 else torch.float32  # (bf16 autocast: in float32)
    x = F.normalize(inputs.to(dtype), dim=-1)  # (B, L, D)
    c = F.normalize(centres.to(dtype), dim=-1)  # (k, D)
    best = (x @ c.t()).amax(dim=-1)  # (B, L): each token's closest centre
    if mask is None:
        return global_mean(-best.mean(), best.numel())
    mask = mask.to(best.dtype)
    return global_mean(-(best * mask).sum() / mask.sum().clamp(min=1.0), mask.sum())


def kmeans_centres(tokens: torch.Tensor, k: int, seed: int = 0, fingerprint: str = "",
                   cache_dir: Path | str | None = None) -> torch.Tensor:
    """k-means centres (k, D) of token embeddings (V, D), scikit-learn's KMeans (k-means++, seeded).

    Cached as .npy under `cache_dir` (default $SEQRL_CACHE or ~/.cache/seqrl)/kmeans by the
    source's fingerprint, k and seed, so each LM is clustered once.
    """
    V = tokens.shape[0]
    if k > V:
        raise ConfigError(f"--align-clusters {k} is more than the LM's {V} token embeddings")
    cache = None
    if fingerprint:
        root = Path(cache_dir or os.environ.get("SEQRL_CACHE", Path.home() / ".cache" / "seqrl")) / "kmeans"
        cache = root / f"{fingerprint}-k{k}-s{seed}.npy"
        if cache.is_file():
            return torch.from_numpy(np.load(cache))
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise ConfigError("--align-weight needs scikit-learn: pip install 'seqrl[lm]'") from None
    data = tokens.detach().float().cpu().numpy().astype(np.float64)
    centres = KMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=300).fit(data).cluster_centers_.astype(np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, centres)
        os.replace(tmp, cache)
    return torch.from_numpy(centres)


class LMObjectives(nn.Module):
    """Alignment centres and the LM's embeddings, with the two losses (see the module docstring)."""

    def __init__(self, cfg: Any, dim: int) -> None:
        super().__init__()
        self.align_weight = float(cfg.align_weight)
        self.anneal_steps = int(cfg.align_anneal_steps if cfg.align_anneal_steps is not None else cfg.steps)
        self.cotrain_weight = float(cfg.cotrain_weight)
        self.clusters = int(cfg.align_clusters)
        self.seed = int(cfg.seed)
        # Shapes come from the LM (set_source) or from the checkpoint being loaded.
        self.register_buffer("centres", torch.zeros(0, dim))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # alignment schedule's clock (resumes)
        self.tokens = nn.Parameter(torch.zeros(0, dim)) if self.cotrain_weight else None  # (V, D), tied head
        self.positions = nn.Parameter(torch.zeros(0, dim)) if self.cotrain_weight else None  # (P, D)

    def set_source(self, source: Any, cfg: Any) -> None:
        if source.tokens is None:
            raise ConfigError(f"--init {cfg.init} has no token embeddings: alignment and co-training need "
                              "gpt2:DIR or lm:RUN_DIR")
        if self.align_weight:
            self.centres = kmeans_centres(source.tokens, self.clusters, self.seed, source.fingerprint).to(self.centres)
        if self.cotrain_weight:
            self.tokens.data = source.tokens.detach().clone().to(self.tokens)
            self.positions.data = source.positions.detach().clone().to(self.positions)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001 (torch's signature)
        # Take the checkpoint's shapes (the LM's vocabulary, context and k), keeping object identity
        # so an optimizer built before loading still holds these parameters.
        for name in ("centres", "tokens", "positions"):
            value, own = state_dict.get(prefix + name), getattr(self, name)
            if value is not None and own is not None and own.shape != value.shape:
                own.data = torch.empty_like(value, device=own.device, dtype=own.dtype)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def align_term(self, inputs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted loss, unweighted loss); advances the schedule's clock in training mode."""
        loss = alignment_loss(inputs, self.centres, mask)
        weight = self.align_weight * alignment_schedule(self.step, self.anneal_steps)
        if self.training:
            self.step += 1
        return weight * loss, loss

    def cotrain_term(self, trunk: nn.Module, text: torch.Tensor) -> torch.Tensor:
        """The LM's mean next-token cross-entropy on `text` (B, L+1) token ids."""
        inputs, targets = text[:, :-1], text[:, 1:]  # (B, L) each
        L = inputs.shape[1]
        if L > self.positions.shape[0]:
            raise ConfigError(f"--cotrain-context {L} is longer than the LM's {self.positions.shape[0]} positions")
        hidden = trunk(F.embedding(inputs, self.tokens) + self.positions[:L])  # (B, L, D)
        logits = hidden @ self.tokens.t()  # (B, L, V): the tied head
        return global_mean(F.cross_entropy(logits.float().flatten(0, 1), targets.flatten()), targets.numel())


# --------------------------------------------------------------------------- co-training batches
class CotrainBatch:
    """An RL batch with corpus windows beside it (`text`, (B2, L+1) token ids); reads as the RL batch."""

    def __init__(self, rl: Any, text: Any) -> None:
        self.rl, self.text = rl, text

    def __getattr__(self, name: str) -> Any:
        if name in ("rl", "text"):
            raise AttributeError(name)
        return getattr(self.rl, name)

    def shard(self, rank: int, world: int) -> "CotrainBatch":
        """Process `rank`'s rows of the RL batch and of the corpus windows (seqrl.distributed)."""
        from seqrl.distributed import rows

        return CotrainBatch(self.rl.shard(rank, world), rows(self.text, rank, world))

    def to_torch(self, device: Any = "cpu") -> "CotrainBatch":
        return CotrainBatch(self.rl.to_torch(device), torch.as_tensor(self.text, dtype=torch.long).to(device))


class CotrainSampler:
    """Draws an RL batch from `base` and `batch_size` corpus windows from `text` each step."""

    def __init__(self, base: Any, text: Any, batch_size: int) -> None:
        self.base, self.text, self.batch_size = base, text, batch_size

    def sample(self, batch_size: int, rng: np.random.Generator) -> CotrainBatch:
        rl = self.base.sample(batch_size, rng)
        return CotrainBatch(rl, self.text.sample(self.batch_size, rng).tokens)

    def __getattr__(self, name: str) -> Any:
        if name in ("base", "text", "batch_size"):
            raise AttributeError(name)
        return getattr(self.base, name)


def cotrain_sampler(base: Any, cfg: Any) -> CotrainSampler:
    """`base` with corpus windows tokenized by the LM's own tokenizer (--cotrain-corpus, or the lm: run's corpus)."""
    from tokenizers import Tokenizer

    from seqrl.lm_init.text import Corpus, TextSampler, encode_corpus
    from seqrl.lm_init.sources import source_text

    tokenizer_json, corpus = source_text(cfg.init)
    corpus = cfg.cotrain_corpus or corpus
    if tokenizer_json is None:
        raise ConfigError(f"--cotrain-weight: --init {cfg.init} comes with no tokenizer (a GPT-2 directory needs "
                          "tokenizer.json, or vocab.json and merges.txt)")
    if corpus is None:
        raise ConfigError("--cotrain-weight: give --cotrain-corpus (a text file or folder); the source LM names none")
    text = Corpus.load(corpus)
    if text.text is None:
        raise ConfigError("--cotrain-corpus markov: co-training needs text (a file or folder)")
    tokens = encode_corpus(Tokenizer.from_str(tokenizer_json), text)
    return CotrainSampler(base, TextSampler(tokens, cfg.cotrain_context), cfg.cotrain_batch_size)
