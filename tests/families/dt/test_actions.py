"""The registry of action representations: a new one is one `register_representation` call, and
the config, the model, training, checkpoints, sweeps and evaluation take it by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from seqrl.errors import ConfigError
from seqrl.families import family_of_model_name
from seqrl.families.dt.actions import REPRESENTATIONS, ActionRepresentation, register_representation, representation
from seqrl.families.dt.config import TrainConfig
from seqrl.loading import load_run
from seqrl.train import train
from tests.helpers.dt import make_dataset, tiny_config


class SquaredActionEmbedding(nn.Module):
    """A toy: one token per step from the action and its square."""

    tokens_per_step = 1

    def __init__(self, act_dim: int, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * act_dim, dim)

    def forward(self, actions: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        return self.linear(torch.cat([actions, actions**2], dim=-1)).unsqueeze(2)  # (B, T, 1, D)


@pytest.fixture
def toy() -> str:
    name = "toy-squared"
    register_representation(ActionRepresentation(
        name, lambda s: SquaredActionEmbedding(s.act_dim, s.dim), tokenized=False, spread=False, feature_tables=False,
        description="a test's toy: the action and its square"))
    yield name
    REPRESENTATIONS.pop(name)


def test_the_built_in_representations_are_registered_with_their_facts():
    facts = {name: (rep.tokenized, rep.spread, rep.pooled, rep.feature_tables) for name, rep in REPRESENTATIONS.items()}
    assert facts == {
        "continuous": (False, False, False, False),
        "tokenized": (True, False, True, True),
        "tokenized-spread": (True, True, False, True),
        "continuous-spread": (False, True, False, True),
    }
    with pytest.raises(ConfigError, match="unknown model 'pooled-ish'; choose from continuous, tokenized"):
        representation("pooled-ish")
    with pytest.raises(ValueError, match="already registered"):
        register_representation(REPRESENTATIONS["continuous"])


def test_a_registered_toy_representation_trains_saves_loads_and_acts(tmp_path, toy):
    assert family_of_model_name(toy).tag == "dt"  # a sweep's `models: [toy-squared]` finds it
    data = make_dataset(obs_dim=4, act_dim=3)
    result = train(tiny_config(tmp_path, model=toy, steps=6, checkpoint_every=6), dataset=data)
    assert isinstance(result.model.codec.embedding, SquaredActionEmbedding)
    assert result.model.tokens_per_step == 3  # R, s, one action token
    assert not result.config.uses_tokenizer and result.model.codec.tokenizer is None
    run = load_run(result.run_dir)
    assert run.config.model == toy and isinstance(run.model.codec.embedding, SquaredActionEmbedding)
    for key, value in result.model.state_dict().items():
        assert torch.equal(run.model.state_dict()[key], value.cpu())
    states = torch.zeros(2, 5, 4)
    action = run.model.act(torch.zeros(2, 5, 1), states, torch.zeros(2, 5, 3), torch.arange(5).repeat(2, 1))
    low, high = np.asarray(run.spec.action_low), np.asarray(run.spec.action_high)
    assert action.shape == (2, 3) and bool(((action.numpy() >= low) & (action.numpy() <= high)).all())


def test_the_config_asks_the_registry_not_the_name(toy):
    with pytest.raises(ConfigError, match="--pool sum applies to a pooled tokenized model, not to --model toy-squared"):
        TrainConfig(dataset="x", model=toy, pool="sum")
    with pytest.raises(ConfigError, match="--spread-head shared needs a spread model"):
        TrainConfig(dataset="x", model=toy, spread_head="shared")
    with pytest.raises(ConfigError, match="--max-action-features applies to tokenized and spread models"):
        TrainConfig(dataset="x", model=toy, max_action_features=4)
    cfg = TrainConfig(dataset="x", model=toy)
    assert cfg.representation.name == toy and not cfg.agnostic_action_layers
