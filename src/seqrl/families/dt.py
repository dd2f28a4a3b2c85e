"""The Decision Transformer as a family: tokenizer artefact, model, context sampler, and the
return-conditioned policy (return-to-go bookkeeping and per-episode context windows)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from seqrl.config import VARIANTS, TrainConfig, resolve_presets
from seqrl.families import Family, register


class DTPolicy:
    """Acts for n episodes at once, each conditioned on the same target return.

    The return-to-go starts at the target and drops by each reward; it is kept unscaled in
    float64 and multiplied by `spec.rtg_scale` when fed to the model (as `run_episode` does), and
    each episode keeps its last K steps in its own row of a `ContextWindows`.
    """

    def __init__(self, model: Any, spec: Any, context_len: int, target: float, device: torch.device) -> None:
        self.model, self.spec, self.context_len, self.target, self.device = model, spec, context_len, float(target), device

    def reset(self, n: int, seed: int) -> None:
        from seqrl.evaluation.context import ContextWindows

        self.windows = ContextWindows(n, self.context_len, self.spec.obs_dim, self.spec.act_dim)
        self.rtg = np.full(n, self.target, np.float64)  # unscaled return still to collect
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))

    def act(self, rows: np.ndarray, observations: np.ndarray, timesteps: np.ndarray) -> np.ndarray:
        scaled = (self.rtg[rows] * self.spec.rtg_scale).astype(np.float32)
        self.windows.push(rows, scaled, self.spec.normalize_states(observations), timesteps)
        batch = self.windows.batch(rows, self.device)
        return self.model.act(*batch, generator=self.generator).float().cpu().numpy()  # (n_rows, act_dim)

    def observe(self, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.windows.set_actions(rows, actions)
        self.rtg[rows] -= rewards


class DecisionTransformerFamily(Family):
    tag = "dt"
    config_class = TrainConfig
    model_names = VARIANTS
    artefacts_key = "tokenizer"  # the key checkpoints have used for the action tokenizer since v1

    def resolve(self, cfg: TrainConfig) -> TrainConfig:
        return resolve_presets(cfg)

    def window_steps(self, cfg: TrainConfig) -> int:
        return cfg.context_len

    def window_tokens(self, cfg: TrainConfig, model: Any) -> int:
        return cfg.context_len * model.tokens_per_step  # (R, s, a) or one token per action feature

    def make_spec(self, cfg: TrainConfig, dataset: Any) -> Any:
        from seqrl.models.spec import DataSpec

        return DataSpec.from_dataset(dataset, rtg_scale=cfg.rtg_scale, targets=cfg.targets)

    def fit_artefacts(self, cfg: TrainConfig, dataset: Any, spec: Any) -> Any:
        """The action tokenizer, for tokenized variants and categorical heads (else None)."""
        if not cfg.uses_tokenizer:
            return None
        from seqrl.data.tokenizer import ActionTokenizer

        return ActionTokenizer.fit(
            dataset.actions, cfg.num_bins, strategy=cfg.binning, shared_range=not cfg.token_offsets,
            low=np.asarray(spec.action_low), high=np.asarray(spec.action_high),
        )

    def artefacts_to_payload(self, artefacts: Any) -> Any:
        from seqrl.checkpoint import tokenizer_to_payload

        return tokenizer_to_payload(artefacts)

    def artefacts_from_payload(self, state: Any) -> Any:
        from seqrl.checkpoint import tokenizer_from_payload

        return tokenizer_from_payload(state)

    def build_model(self, cfg: TrainConfig, spec: Any, artefacts: Any) -> Any:
        from seqrl.data.tokenizer import TorchActionTokenizer
        from seqrl.models.dt import DecisionTransformer

        from seqrl.init import configure_trunk

        model = DecisionTransformer(cfg, spec, TorchActionTokenizer(artefacts) if artefacts is not None else None)
        return configure_trunk(model, cfg)  # --freeze-trunk, --lora-rank

    def build_sampler(self, cfg: TrainConfig, dataset: Any, spec: Any, artefacts: Any) -> Any:
        from seqrl.data.sampler import ContextSampler

        sampler = ContextSampler(
            dataset, cfg.context_len, rtg_scale=spec.rtg_scale, discount=cfg.discount,
            state_mean=np.asarray(spec.state_mean, np.float32), state_std=np.asarray(spec.state_std, np.float32),
        )
        if getattr(cfg, "cotrain_weight", 0.0):
            from seqrl.lm_objectives import cotrain_sampler

            sampler = cotrain_sampler(sampler, cfg)
        return sampler

    def conditions(self, cfg: TrainConfig, spec: Any, requested: Sequence[float] | None = None) -> tuple:
        return tuple(float(t) for t in (spec.targets if requested is None else requested))

    def make_policy(self, model: Any, spec: Any, cfg: TrainConfig, condition: Any, settings: dict[str, Any] | None = None,
                    device: Any = None) -> DTPolicy:
        from seqrl.errors import ConfigError

        unused = sorted(k for k, v in (settings or {}).items() if v is not None)
        if unused:
            raise ConfigError(f"{', '.join(unused)}: planner settings apply to the Trajectory Transformer, not to a DT run")
        device = torch.device(device) if device is not None else next(model.parameters()).device
        return DTPolicy(model, spec, cfg.context_len, condition, device)


register(DecisionTransformerFamily())
