"""Issue 12: spread codecs whose parameter shapes do not depend on the task, and sum pooling.

The shared head is one (1, D) regression row (or one classifier) read from every spread action
token; `max_action_features` sizes the vocabulary and the feature(-index) embeddings for up to
that many action features, with task-independent token ids (feature * num_bins + bin).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from seqrl.loading import load_run
from seqrl.data.tokenizer import ActionTokenizer, TorchActionTokenizer
from seqrl.errors import ConfigError
from seqrl.families.dt.model import DecisionTransformer
from seqrl.models.spec import DataSpec

from tests.helpers.dt import make_dataset, tiny_config

AGNOSTIC = [
    pytest.param(dict(model="tokenized-spread"), id="tokenized-spread"),
    pytest.param(dict(model="tokenized-spread", head="categorical"), id="tokenized-spread-categorical"),
    pytest.param(dict(model="tokenized-spread", token_offsets=False, action_index_embedding=True), id="shared-range-index"),
    pytest.param(dict(model="continuous-spread"), id="continuous-spread"),
]


def build(obs_dim: int, act_dim: int, **overrides) -> DecisionTransformer:
    cfg = tiny_config(**overrides)
    data = make_dataset(obs_dim=obs_dim, act_dim=act_dim)
    spec = DataSpec.from_dataset(data, rtg_scale=0.1, targets=(1.0,))
    tokenizer = None
    if cfg.uses_tokenizer:
        tokenizer = TorchActionTokenizer(ActionTokenizer.fit(data.actions, cfg.num_bins, strategy=cfg.binning,
                                                             shared_range=not cfg.token_offsets))
    torch.manual_seed(0)
    return DecisionTransformer(cfg, spec, tokenizer)


def codec_parameter_shapes(model: DecisionTransformer) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in model.codec.named_parameters()}


@pytest.mark.parametrize("overrides", AGNOSTIC)
def test_agnostic_codec_parameters_have_the_same_shapes_for_every_task(overrides):
    small = build(4, 3, spread_head="shared", max_action_features=8, **overrides)
    large = build(11, 6, spread_head="shared", max_action_features=8, **overrides)
    assert small.codec.tokens_per_step == 3 and large.codec.tokens_per_step == 6
    assert codec_parameter_shapes(small) == codec_parameter_shapes(large)
    # One action feature too (its per-feature offsets are all zero, like a shared range's).
    single = build(2, 1, spread_head="shared", max_action_features=8, **overrides)
    assert codec_parameter_shapes(single) == codec_parameter_shapes(large)
    assert tiny_config(spread_head="shared", max_action_features=8, **overrides).agnostic_action_layers
    # ...and with the original per-feature head, the head's shapes follow act_dim.
    per_feature = {**overrides}
    small, large = build(4, 3, **per_feature), build(11, 6, **per_feature)
    assert codec_parameter_shapes(small)["head.weight"][0] == 3
    assert codec_parameter_shapes(large)["head.weight"][0] == 6
    assert not tiny_config(**per_feature).agnostic_action_layers


def test_shared_regression_head_is_one_row_read_from_every_action_token():
    model = build(4, 3, model="continuous-spread", spread_head="shared", max_action_features=8)
    head = model.codec.head
    assert head.weight.shape == (1, 32) and head.bias.shape == (1,)
    hidden = torch.randn(2, 5, 3, 32)
    expected = head.center + head.half_range * torch.tanh(hidden @ head.weight[0] + head.bias[0])  # (2, 5, 3)
    torch.testing.assert_close(head(hidden), expected)
    # The continuous-spread feature embedding has 8 rows; a 3-feature task uses the first 3.
    assert model.codec.embedding.feature.weight.shape == (8, 32)
    actions = torch.zeros(1, 1, 3)
    embedded = model.codec.embed(actions, None)[0, 0]  # (3, D)
    torch.testing.assert_close(embedded, model.codec.embedding.value.bias + model.codec.embedding.feature.weight[:3])


def test_fixed_vocabulary_ids_are_feature_times_num_bins_plus_bin():
    model = build(4, 3, model="tokenized-spread", spread_head="shared", max_action_features=8, num_bins=16)
    codec = model.codec
    assert codec.embedding.token.num_embeddings == 8 * 16  # not the tokenizer's sum of real bin counts
    actions = torch.tensor([[[-1.0, 0.0, 1.0]]])
    tokens = codec.tokenize(actions)  # the tokenizer's ids: local bin + cumulative real bin counts
    local = tokens - codec.tokenizer.offsets
    assert torch.equal(codec._embedding_ids(tokens), local + torch.arange(3) * 16)
    shared = build(4, 3, model="tokenized-spread", spread_head="shared", max_action_features=8, num_bins=16,
                   token_offsets=False, action_index_embedding=True)
    assert shared.codec.embedding.token.num_embeddings == 16 and shared.codec.embedding.index.weight.shape == (8, 32)
    tokens = shared.codec.tokenize(actions)
    assert torch.equal(shared.codec._embedding_ids(tokens), tokens)  # the shared range is already bin ids
    # Without max_action_features the ids are the tokenizer's own (the original behaviour).
    original = build(4, 3, model="tokenized-spread", num_bins=16)
    assert torch.equal(original.codec._embedding_ids(tokens), tokens)
    assert original.codec.embedding.token.num_embeddings == original.codec.tokenizer.vocab_size


def test_shared_categorical_head_has_one_classifier_over_num_bins():
    model = build(4, 3, model="tokenized-spread", head="categorical", spread_head="shared", max_action_features=8,
                  num_bins=16)
    head = model.codec.head
    assert head.weight.shape == (1, 16, 32)
    logits = head(torch.randn(2, 1, 3, 32))
    assert logits.shape == (2, 1, 3, 16)
    # Bins a feature does not have are masked in each feature's logits.
    counts = model.codec.tokenizer.num_bins
    for j in range(3):
        assert torch.isinf(logits[..., j, int(counts[j]):]).all() and torch.isfinite(logits[..., j, : int(counts[j])]).all()


def test_sum_pooling_is_the_sum_of_the_feature_embeddings():
    mean = build(4, 3, model="tokenized")
    total = build(4, 3, model="tokenized", pool="sum")
    total.load_state_dict(mean.state_dict())
    actions = torch.rand(2, 5, 3) * 2 - 1
    tokens = mean.codec.tokenize(actions)
    per_feature = mean.codec.embedding.token(tokens)  # (2, 5, 3, D)
    torch.testing.assert_close(mean.codec.embed(actions, tokens)[:, :, 0], per_feature.mean(2))
    torch.testing.assert_close(total.codec.embed(actions, tokens)[:, :, 0], per_feature.sum(2))


@pytest.mark.parametrize("overrides, flag", [
    (dict(model="tokenized", spread_head="shared"), "--spread-head shared"),
    (dict(model="continuous", spread_head="shared"), "--spread-head shared"),
    (dict(model="tokenized-spread", pool="sum"), "--pool sum"),
    (dict(model="tokenized", pool="max"), "--pool"),
    (dict(model="tokenized-spread", spread_head="both"), "--spread-head"),
    (dict(model="continuous", max_action_features=8), "--max-action-features"),
    (dict(model="tokenized-spread", max_action_features=-1), "--max-action-features"),
])
def test_bad_codec_flags_are_config_errors_naming_the_flag(overrides, flag):
    with pytest.raises(ConfigError, match=flag):
        tiny_config(**overrides)


def test_a_task_with_more_action_features_than_the_maximum_is_refused():
    with pytest.raises(ConfigError, match="--max-action-features 2 is below"):
        build(4, 3, model="tokenized-spread", spread_head="shared", max_action_features=2)


def test_configs_written_before_the_new_flags_load_with_the_original_codec(tmp_path):
    fixture = Path(__file__).parents[2] / "fixtures" / "legacy_dt_run"
    saved = json.loads((fixture / "config.json").read_text())
    assert not {"pool", "spread_head", "max_action_features"} & set(saved)
    run_dir = tmp_path / "legacy"
    shutil.copytree(fixture, run_dir)
    run = load_run(run_dir)
    assert run.config.pool == "mean" and run.config.spread_head == "per-feature" and run.config.max_action_features == 0
    assert run.model.codec.head.weight.shape[0] == run.spec.act_dim  # the per-feature head
    # A stored tokenized config without the field pools by mean even where the default differs.
    from seqrl.families.dt.config import TrainConfig

    assert TrainConfig.from_dict({**saved, "model": "tokenized"}).pool == "mean"
    assert TrainConfig.from_dict({**saved, "model": "tokenized", "pool": "sum"}).pool == "sum"


def test_tiny_agnostic_spread_model_learns(tmp_path):
    """A real tiny training run with the shared head: the loss falls well below its start."""
    from seqrl.train import train

    result = train(tiny_config(tmp_path, model="tokenized-spread", spread_head="shared", max_action_features=8,
                               steps=60, log_every=10, checkpoint_every=1000), dataset=make_dataset(obs_dim=4, act_dim=3))
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 6 and np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]
