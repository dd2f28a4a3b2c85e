"""The Trajectory Transformer as a family: discretizer artefact, model, window sampler, and the
beam-search planner as its evaluation policy."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from seqrl.errors import ConfigError
from seqrl.families import Family, exporting_families, register
from seqrl.families.tt.config import TTConfig
from seqrl.families.tt.planner import PlannerFlags, PlannerSettings, beam_plan, planner_settings


class TTPolicy:
    """Plans for n environments at once; each keeps its last `context_transitions` transitions.

    The context holds the raw observations, the actions taken and the rewards received, and as
    each step's value token the one the plan predicted for that step (`context_value="planned"`:
    a token the model itself generates, so the context looks like its training windows) or the
    authors' placeholder, the token of a value of 0 (`"zero"`). Planning happens every
    `replan_every` steps; in between, the plan's next actions are taken open-loop.

    A goal-conditioned model sees the observation's state dimensions only, and plans towards the
    goal the environment puts in the rest of it (families/tt/goals.py), read at every replan.
    """

    def __init__(self, model: Any, settings: PlannerSettings, device: torch.device) -> None:
        self.model, self.settings, self.device = model, settings, device
        d = model.discretizer
        self.obs_dim, self.act_dim, self.T = model.observation_dim, model.action_dim, model.transition_dim
        self._action_table = d.value_table[self.obs_dim : self.obs_dim + self.act_dim]  # (act_dim, bins)
        self._action_offsets = d.offsets[self.obs_dim : self.obs_dim + self.act_dim]
        self.layout = model.layout

    def reset(self, n: int, seed: int) -> None:
        self.history = torch.zeros(n, 0, self.T, dtype=torch.long, device=self.device)  # (n, m, T)
        self.generators = [torch.Generator(device=self.device).manual_seed(int(seed) + i) for i in range(n)]
        self.plans = torch.zeros(n, self.settings.horizon, self.T, dtype=torch.long, device=self.device)
        self.observations = np.zeros((n, self.obs_dim), np.float32)
        self.goals = torch.zeros(n, self.model.goal_dim, dtype=torch.long, device=self.device)
        self.due = 0  # the plan step the last actions came from

    def _encode(self, rows: np.ndarray, observations: np.ndarray, actions: np.ndarray | None = None,
                rewards: np.ndarray | None = None) -> torch.Tensor:
        """(len(rows), T) token ids of transitions [obs, action, reward, value 0] (zeros where not given)."""
        joined = np.zeros((len(rows), self.T), np.float32)
        joined[:, : self.obs_dim] = observations
        if actions is not None:
            joined[:, self.obs_dim : self.obs_dim + self.act_dim] = actions
            joined[:, self.T - 2] = rewards
        return self.model.discretizer.encode(torch.from_numpy(joined).to(self.device))

    def act(self, rows: np.ndarray, observations: np.ndarray, timesteps: np.ndarray) -> np.ndarray:
        raw = np.asarray(observations, np.float32)
        observations = self.layout.states(raw)
        self.observations[rows] = observations
        due = int(timesteps[0]) % self.settings.replan_every
        if len(set(int(t) for t in timesteps)) != 1:
            raise ValueError("the TT policy plans for environments at the same step of their episodes")
        index = torch.as_tensor(rows, device=self.device)
        if due == 0:
            current = self._encode(rows, observations)[:, : self.obs_dim]  # (n_rows, obs_dim)
            prefix = torch.cat([self.history[index].flatten(1), current], dim=1)
            goal = None
            if self.model.goal_dim:
                values = torch.from_numpy(self.layout.environment_goal(raw)).to(self.device)
                self.goals[index] = goal = self.model.goal_tokens(values)
            self.plans[index] = beam_plan(self.model, prefix, self.settings, [self.generators[int(i)] for i in rows], goal)
        self.due = due
        tokens = self.plans[index, due, self.obs_dim : self.obs_dim + self.act_dim]  # (n_rows, act_dim)
        local = tokens - self._action_offsets
        return self._action_table.gather(1, local.t()).t().float().cpu().numpy()

    def observe(self, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        step = torch.zeros(self.history.shape[0], self.T, dtype=torch.long, device=self.device)
        index = torch.as_tensor(rows, device=self.device)
        if self.model.goal_dim:  # a goal-conditioned model was trained without rewards (zeros in their place)
            rewards = np.zeros_like(np.asarray(rewards, np.float32))
        step[index] = self._encode(rows, self.observations[rows], actions, rewards)
        if self.settings.context_value == "planned":
            step[index, self.T - 1] = self.plans[index, self.due, self.T - 1]
        keep = self.settings.context_transitions
        self.history = torch.cat([self.history, step[:, None]], dim=1)[:, -keep:]


class TrajectoryTransformerFamily(Family):
    tag = "tt"
    config_class = TTConfig
    model_names = ("tt",)
    predicts_states = True

    def resolve(self, cfg: TTConfig) -> TTConfig:
        return cfg.resolved()

    def make_spec(self, cfg: TTConfig, dataset: Any) -> Any:
        from seqrl.families import refuse_images
        from seqrl.models.spec import DataSpec

        refuse_images(dataset, "the Trajectory Transformer", "tokenizes every observation dimension into its own "
                      "bins (84x84x4 frames would be 28,224 tokens a step)")

        return DataSpec.from_dataset(dataset, rtg_scale=1.0, targets=())

    def fit_artefacts(self, cfg: TTConfig, dataset: Any, spec: Any) -> Any:
        from seqrl.families.tt.data import fit_discretizer, run_transitions

        joined = run_transitions(dataset, cfg)
        # The action column follows the state columns the run models (all, or a goal run's part).
        return fit_discretizer(joined, cfg.num_bins, cfg.binning, num_actions=dataset.num_actions,
                               action_column=joined.shape[1] - 3)

    def artefacts_to_payload(self, artefacts: Any) -> Any:
        from seqrl.data.tokenizer import tokenizer_to_payload

        return tokenizer_to_payload(artefacts)

    def artefacts_from_payload(self, state: Any) -> Any:
        from seqrl.data.tokenizer import tokenizer_from_payload

        return tokenizer_from_payload(state)

    def build_model(self, cfg: TTConfig, spec: Any, artefacts: Any) -> Any:
        from seqrl.data.tokenizer import TorchActionTokenizer
        from seqrl.families.tt.model import TrajectoryTransformer

        from seqrl.lm_init.sources import configure_trunk

        return configure_trunk(TrajectoryTransformer(cfg, spec, TorchActionTokenizer(artefacts)), cfg)  # --freeze-trunk, --lora-rank

    def build_sampler(self, cfg: TTConfig, dataset: Any, spec: Any, artefacts: Any) -> Any:
        from seqrl.families.tt.data import TransitionWindowSampler, run_transitions
        from seqrl.families.tt.goals import goal_layout

        layout = goal_layout(cfg, spec.obs_dim)
        return TransitionWindowSampler(dataset, artefacts, sequence_length=cfg.sequence_length, step=cfg.step,
                                       joined=run_transitions(dataset, cfg), goal=cfg.goal,
                                       goal_positions=layout.goal_positions)

    def conditions(self, cfg: TTConfig, spec: Any, requested: Sequence[float] | None = None) -> tuple:
        if requested:
            from seqrl.errors import ConfigError

            raise ConfigError("the Trajectory Transformer plans for reward, not for a target return: drop --targets")
        return (None,)

    def open_loop(self, model: Any, cfg: TTConfig, artefacts: Any, dataset: Any, starts: np.ndarray, horizon: int,
                  actions: str = "dataset", context: int = 1) -> dict[str, np.ndarray]:
        from seqrl.families.tt.predict import tt_open_loop

        if getattr(cfg, "goal", "none") != "none":
            from seqrl.errors import ConfigError

            raise ConfigError("open-loop prediction is for Trajectory Transformers without a goal; this run is "
                              f"goal-conditioned (--goal {cfg.goal})")

        return tt_open_loop(model, cfg, artefacts, dataset, starts, horizon, actions=actions, context=context)

    def window_steps(self, cfg: TTConfig) -> int:
        return (cfg.sequence_length - 1) * cfg.step + 1

    def window_tokens(self, cfg: TTConfig, model: Any) -> int:
        return model.block_size + model.goal_dim

    def describe(self, cfg: TTConfig) -> str:
        goal = getattr(cfg, "goal", "none")
        return "tt" if goal == "none" else f"tt-goal:{goal}"

    def preset_flags(self, name: str) -> list[str]:
        from seqrl.families.tt.config import preset_flags

        return preset_flags(name)

    # ------------------------------------------------------------------ evaluation: the planner
    eval_flags = PlannerFlags

    def eval_settings(self, values: dict[str, Any] | None) -> dict[str, Any] | None:
        """Planner settings (seqrl.families.tt.planner.PlannerSettings' fields), checked now."""
        values = {str(k).replace("-", "_"): v for k, v in (values or {}).items()}
        try:
            planner_settings("", 0.99, values)
        except TypeError as exc:
            from seqrl.errors import ConfigError

            raise ConfigError(f"planner: {exc}") from None
        return values or None

    def _planner(self, model: Any, spec: Any, cfg: TTConfig, settings: dict[str, Any] | None) -> PlannerSettings:
        if getattr(cfg, "goal", "none") != "none":
            # No rewards were modelled: the plan is the most probable trajectory towards the goal.
            if (settings or {}).get("mode") == "reward":
                from seqrl.errors import ConfigError

                raise ConfigError("a goal-conditioned Trajectory Transformer was trained without rewards: it plans "
                                  "with --plan-mode likelihood (the default for it), not reward")
            settings = {**(settings or {}), "mode": "likelihood"}
            if not model.layout.observation_goal:
                from seqrl.errors import ConfigError

                raise ConfigError(f"{spec.dataset}'s observations hold no goal to plan towards: train with "
                                  "--observation-goal-dims naming the dimensions where its environment puts the goal")
        # The run's own planner size and mode (eval_horizon, eval_beam_width, eval_plan_mode) under the
        # caller's overrides.
        own = {"horizon": cfg.eval_horizon, "beam_width": cfg.eval_beam_width,
               "mode": cfg.eval_plan_mode}
        given = {k: v for k, v in (settings or {}).items() if v is not None}  # an unset flag keeps the run's
        own = {k: v for k, v in own.items() if v is not None}
        return planner_settings(spec.dataset, cfg.discount, {**own, **given})

    def export_policy(self, run: Any, decode: str | None = None) -> Any:
        # Refused by name rather than exported half: the TT's policy is a beam search, a loop of
        # model calls whose width and depth are settings (families/tt/planner.py), not one graph,
        # and its model alone (next-token logits) is no policy a controller could run.
        raise ConfigError("seqrl export: a tt run (Trajectory Transformer) cannot be exported: it acts by beam-search "
                          "planning over its model, a search rather than one graph; `seqrl eval` runs it. "
                          f"The families that export are: {', '.join(exporting_families())}")

    def make_policy(self, model: Any, spec: Any, cfg: TTConfig, condition: Any, settings: dict[str, Any] | None = None,
                    device: Any = None) -> TTPolicy:
        device = torch.device(device) if device is not None else next(model.parameters()).device
        return TTPolicy(model, self._planner(model, spec, cfg, settings), device)

    def eval_report(self, model: Any, spec: Any, cfg: TTConfig, settings: dict[str, Any] | None) -> dict[str, Any]:
        return {"planner": self._planner(model, spec, cfg, settings).to_dict()}

    def open_loop_oracle(self, artefacts: Any, dataset: Any, starts: np.ndarray, horizon: int) -> np.ndarray:
        """The error of the discretization alone: the dataset's own states through the TT's bins."""
        from seqrl.families.tt.predict import discretization_error

        return discretization_error(artefacts, dataset, starts, horizon)


register(TrajectoryTransformerFamily())
