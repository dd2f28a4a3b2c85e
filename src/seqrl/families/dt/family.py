"""The Decision Transformer as a family: the object the training loop, checkpoints and evaluation
look up by the tag "dt" (tokenizer artefact, model, context sampler, policy, target-return
conditions, fine-tuning and export hooks)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from seqrl.families import Family, register
from seqrl.families.dt.representations import REPRESENTATIONS
from seqrl.families.dt.config import TrainConfig, resolve_presets
from seqrl.families.dt.policy import DTPolicy


class DecisionTransformerFamily(Family):
    tag = "dt"
    config_class = TrainConfig
    artefacts_key = "tokenizer"  # the key checkpoints have used for the action tokenizer since v1
    exports = ("onnx", "torchscript")

    @property
    def model_names(self) -> tuple[str, ...]:  # every registered action representation
        return tuple(REPRESENTATIONS)

    def resolve(self, cfg: TrainConfig) -> TrainConfig:
        return resolve_presets(cfg)

    def window_steps(self, cfg: TrainConfig) -> int:
        return cfg.context_len

    def window_tokens(self, cfg: TrainConfig, model: Any) -> int:
        return cfg.context_len * model.tokens_per_step  # (R, s, a) or one token per action feature

    def settle(self, cfg: TrainConfig, dataset: Any) -> TrainConfig:
        """On Discrete(n) actions: one action token, a categorical head, meaningless flags refused."""
        if not dataset.discrete:
            return cfg
        settled = cfg.for_discrete(dataset.num_actions, dataset.name)
        import sys

        print(f"seqrl: {dataset.name} has Discrete({dataset.num_actions}) actions; --model {cfg.model}: "
              f"{cfg.representation.discrete_note}", file=sys.stderr)
        return settled

    def make_spec(self, cfg: TrainConfig, dataset: Any) -> Any:
        from seqrl.models.spec import DataSpec

        return DataSpec.from_dataset(dataset, rtg_scale=cfg.rtg_scale, targets=cfg.targets)

    def fit_artefacts(self, cfg: TrainConfig, dataset: Any, spec: Any) -> Any:
        """The action tokenizer, for tokenized variants and categorical heads (else None); on
        Discrete(n) actions, for every variant, the identity on the n indices (no bins)."""
        from seqrl.data.tokenizer import ActionTokenizer

        if spec.discrete:
            return ActionTokenizer.for_indices(spec.num_actions)
        if not cfg.uses_tokenizer:
            return None

        return ActionTokenizer.fit(
            dataset.actions, cfg.num_bins, strategy=cfg.binning, shared_range=not cfg.token_offsets,
            low=np.asarray(spec.action_low), high=np.asarray(spec.action_high),
        )

    def artefacts_to_payload(self, artefacts: Any) -> Any:
        from seqrl.data.tokenizer import tokenizer_to_payload

        return tokenizer_to_payload(artefacts)

    def artefacts_from_payload(self, state: Any) -> Any:
        from seqrl.data.tokenizer import tokenizer_from_payload

        return tokenizer_from_payload(state)

    def build_model(self, cfg: TrainConfig, spec: Any, artefacts: Any) -> Any:
        from seqrl.data.tokenizer import TorchActionTokenizer
        from seqrl.families.dt.model import DecisionTransformer

        from seqrl.lm_init.sources import configure_trunk

        model = DecisionTransformer(cfg, spec, TorchActionTokenizer(artefacts) if artefacts is not None else None)
        return configure_trunk(model, cfg)  # --freeze-trunk, --lora-rank

    def build_sampler(self, cfg: TrainConfig, dataset: Any, spec: Any, artefacts: Any) -> Any:
        from seqrl.data.sampler import ContextSampler

        sampler = ContextSampler(
            dataset, cfg.context_len, rtg_scale=spec.rtg_scale, discount=cfg.discount,
            state_mean=np.asarray(spec.state_mean, np.float32), state_std=np.asarray(spec.state_std, np.float32),
        )
        if getattr(cfg, "cotrain_weight", 0.0):
            from seqrl.lm_init.objectives import cotrain_sampler

            sampler = cotrain_sampler(sampler, cfg)
        return sampler

    def conditions(self, cfg: TrainConfig, spec: Any, requested: Sequence[float] | None = None) -> tuple:
        return tuple(float(t) for t in (spec.targets if requested is None else requested))

    def make_policy(self, model: Any, spec: Any, cfg: TrainConfig, condition: Any, settings: Any = None,
                    device: Any = None) -> DTPolicy:
        device = torch.device(device) if device is not None else next(model.parameters()).device
        return DTPolicy(model, spec, cfg.context_len, condition, device)

    def binned(self, cfg: TrainConfig) -> bool:
        return cfg.representation.tokenized

    def export_policy(self, run: Any, decode: str | None = None) -> Any:
        from seqrl.families.dt.export import export_policy

        return export_policy(run, decode)

    def finetune_plan(self, payload: dict[str, Any], **kwargs: Any) -> Any:
        from seqrl.families.dt.transfer import finetune_plan

        return finetune_plan(payload, **kwargs)


register(DecisionTransformerFamily())
