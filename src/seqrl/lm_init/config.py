"""The fields of a run whose transformer trunk may start from a pretrained source (Reid et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from seqrl.config import RunConfig
from seqrl.errors import ConfigError
from seqrl.validation import require_in_range, require_int

INIT_KINDS = ("scratch", "run", "gpt2", "lm")


def parse_init(value: str) -> tuple[str, str | None]:
    """'gpt2:/models/gpt2' -> ('gpt2', '/models/gpt2'); 'scratch' -> ('scratch', None)."""
    if value == "scratch":
        return "scratch", None
    kind, sep, path = value.partition(":")
    if not sep or kind not in INIT_KINDS[1:] or not path:
        raise ConfigError(f"--init {value!r}: expected scratch, run:RUN_DIR, gpt2:DIR or lm:RUN_DIR")
    return kind, path


@dataclass(frozen=True)
class LMInitConfig(RunConfig):
    """Where a trunk comes from, and the language-model objectives (Reid et al. 2022, seqrl.lm_init.sources).

    A family whose model has a `trunk` (models/gpt.py) takes these by deriving its config from
    this class; the defaults (scratch, no auxiliary losses) are a plain run's behaviour."""

    init: str = "scratch"
    """Where the trunk's weights come from: scratch, gpt2:DIR (a GPT-2 saved locally with
    save_pretrained; nothing is downloaded), lm:RUN_DIR (a `seqrl pretrain-lm` run) or run:RUN_DIR
    (the trunk of any seqrl run). A pretrained trunk sets --embed-dim, --n-layers, --n-heads and
    the activation to its own."""
    init_positions: Literal["timestep", "drop"] = "timestep"
    """The LM's learned position table: timestep uses it as the timestep embedding (the paper's
    way; rows past the LM's context start fresh), drop leaves the timestep embedding fresh."""
    activation: Literal["gelu", "gelu_tanh"] = "gelu"
    """The trunk's GELU: exact erf, or the tanh approximation GPT-2 uses (a pretrained trunk sets its own)."""
    trunk_learning_rate: float | None = None
    """Peak learning rate of the trunk's parameters (default: --learning-rate), e.g. lower for a pretrained trunk."""
    freeze_trunk: bool = False
    """Train everything but the trunk (the paper's Table 5 frozen-trunk ablation)."""
    lora_rank: int = 0
    """LoRA adapters of this rank on the trunk's attention projections (qkv and output), through
    peft; the rest of the trunk is frozen. 0: no LoRA."""
    lora_alpha: float = 16.0
    """LoRA scaling numerator (peft's lora_alpha)."""
    align_weight: float = 0.0
    """Weight lambda1 of the alignment loss (the paper's 0.1): minus the maximum cosine similarity
    between each input embedding and k-means centres of the LM's token embeddings. 0: off."""
    align_clusters: int = 1000
    """k of the k-means over the LM's token embeddings (the paper's 1000)."""
    align_anneal_steps: int | None = None
    """The alignment weight follows the authors' sigmoid from lambda1 down to ~0 at this step
    (default: the run's --steps, so the anneal spans the run whatever its length; runs written
    before this default recorded 5000, the authors' value for their 100k-step runs)."""
    cotrain_weight: float = 0.0
    """Weight lambda2 of language-model co-training: the LM loss on corpus batches through the
    LM's tied token head. 0: off."""
    cotrain_corpus: str | None = None
    """Co-training corpus: a text file or folder (default: the corpus of the lm: run)."""
    cotrain_batch_size: int = 16
    """Text windows per co-training batch."""
    cotrain_context: int = 128
    """Tokens per co-training window."""

    def with_anneal_resolved(self):
        """This config with --align-anneal-steps set (the run's --steps when left unset): recorded
        in the run's config.json, so a resumed run with more steps keeps its anneal."""
        if self.align_anneal_steps is not None:
            return self
        import dataclasses

        return dataclasses.replace(self, align_anneal_steps=self.steps)

    def _check_lm_init_fields(self) -> None:
        """Checks of these fields, for every family whose config derives from this class."""
        parse_init(self.init)
        if self.init_positions not in ("timestep", "drop"):
            raise ConfigError(f"unknown --init-positions {self.init_positions!r}; choose timestep or drop")
        if self.activation not in ("gelu", "gelu_tanh"):
            raise ConfigError(f"unknown --activation {self.activation!r}; choose gelu or gelu_tanh")
        if self.trunk_learning_rate is not None:
            require_in_range("trunk_learning_rate", self.trunk_learning_rate, 0.0, lo_open=True)
        require_int("lora_rank", self.lora_rank, 0)
        require_in_range("lora_alpha", self.lora_alpha, 0.0, lo_open=True)
        if self.lora_rank and self.freeze_trunk:
            raise ConfigError("--lora-rank trains adapters inside the trunk; --freeze-trunk freezes all of it: choose one")
        for name in ("align_weight", "cotrain_weight"):
            require_in_range(name, getattr(self, name), 0.0)
        require_int("align_clusters", self.align_clusters, 1)
        if self.align_anneal_steps is not None:
            require_int("align_anneal_steps", self.align_anneal_steps, 1)
        require_int("cotrain_batch_size", self.cotrain_batch_size, 1)
        require_int("cotrain_context", self.cotrain_context, 1)
        if self.align_weight and self.init.split(":", 1)[0] not in ("gpt2", "lm"):
            raise ConfigError("--align-weight needs a language model's token embeddings: pass --init gpt2:DIR or lm:RUN_DIR")
        if self.cotrain_weight and self.init.split(":", 1)[0] not in ("gpt2", "lm"):
            raise ConfigError("--cotrain-weight needs a language model: pass --init gpt2:DIR or lm:RUN_DIR")
