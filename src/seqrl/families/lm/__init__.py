"""The causal language model as a family (`seqrl pretrain-lm`, or `seqrl train --family lm`).

The ChibiT recipe of Reid et al. (2022): a GPT the size of the DT's trunk pretrained on text,
here any local corpus, with a locally trained or GPT-2 BPE, or on synthetic tokens from a random
Markov chain (the control of Wang et al. 2023). It runs through the one training loop, so it
checkpoints and resumes as any run; `--init lm:RUN_DIR` loads its trunk into a DT.

- data: the corpus (`Corpus`);
- spec: `LMSpec` (corpus fingerprint, vocabulary size);
- artefacts: the tokenizer (tokenizers' JSON) or the Markov chain's settings;
- model: `CausalLM` (tied token head);
- sampler: random windows of the tokenized corpus, or fresh Markov sequences;
- no policy: an LM run is not evaluated in an environment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from seqrl.errors import CheckpointError, ConfigError
from seqrl.families import Family, register
from seqrl.families.lm.config import LMConfig


@dataclass
class LMSpec:
    dataset: str
    fingerprint: str
    vocab_size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LMSpec":
        return cls(**values)

    def check_compatible(self, corpus: Any, what: str = "this checkpoint") -> None:
        if corpus.fingerprint != self.fingerprint:
            raise CheckpointError(f"{what} was trained on corpus {self.dataset} ({self.fingerprint}), but "
                                  f"{corpus.name} reads as {corpus.fingerprint}; the corpus changed")


class LanguageModelFamily(Family):
    tag = "lm"
    config_class = LMConfig
    model_names = ("lm",)

    def load_data(self, cfg: LMConfig) -> Any:
        from seqrl.lm_init.text import Corpus

        return Corpus.load(cfg.dataset, cfg.max_chars)

    def make_spec(self, cfg: LMConfig, corpus: Any) -> LMSpec:
        return LMSpec(cfg.dataset, corpus.fingerprint)

    def spec_from_dict(self, values: dict[str, Any]) -> LMSpec:
        return LMSpec.from_dict(values)

    def fit_artefacts(self, cfg: LMConfig, corpus: Any, spec: LMSpec) -> dict[str, Any]:
        if corpus.text is None:
            artefacts = {"kind": "markov", "vocab_size": cfg.vocab_size, "temperature": cfg.markov_temperature,
                         "seed": cfg.markov_seed}
        else:
            from seqrl.lm_init.text import load_tokenizer

            tokenizer = load_tokenizer(cfg.tokenizer, corpus, cfg.vocab_size)
            artefacts = {"kind": "text", "vocab_size": tokenizer.get_vocab_size(), "tokenizer_json": tokenizer.to_str()}
        spec.vocab_size = artefacts["vocab_size"]
        return artefacts

    def artefacts_to_payload(self, artefacts: Any) -> Any:
        return artefacts

    def artefacts_from_payload(self, state: Any) -> Any:
        return state

    def build_model(self, cfg: LMConfig, spec: Any, artefacts: Any) -> Any:
        from seqrl.families.lm.model import CausalLM

        return CausalLM(int(artefacts["vocab_size"]), cfg.context_len, cfg.embed_dim, cfg.n_layers, cfg.n_heads,
                        cfg.dropout, cfg.activation)

    def build_sampler(self, cfg: LMConfig, corpus: Any, spec: Any, artefacts: Any) -> Any:
        from seqrl.lm_init import text

        if artefacts["kind"] == "markov":
            transitions = text.markov_transitions(artefacts["vocab_size"], artefacts["temperature"], artefacts["seed"])
            return text.MarkovSampler(transitions, cfg.context_len)
        text.require_tokenizers()
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(artefacts["tokenizer_json"])
        return text.TextSampler(text.encode_corpus(tokenizer, corpus), cfg.context_len)

    def conditions(self, cfg: LMConfig, spec: Any, requested: Sequence[float] | None = None) -> tuple:
        raise ConfigError("an LM run is not a policy: use it with `seqrl train --init lm:RUN_DIR ...`")

    def make_policy(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError("an LM run is not a policy: use it with `seqrl train --init lm:RUN_DIR ...`")

    def window_tokens(self, cfg: LMConfig, model: Any) -> int:
        return cfg.context_len

    def describe(self, cfg: LMConfig) -> str:
        return "lm"


register(LanguageModelFamily())
