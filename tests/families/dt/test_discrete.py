"""The Decision Transformer on Discrete(n) actions (issue 28): one action token, a cross-entropy
head over the n actions, flags without meaning refused by name, checkpoints, and acting in the
real environment (CartPole-v1's data, tests/helpers/discrete.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from seqrl.data.tokenizer import ActionTokenizer
from seqrl.errors import CheckpointError, ConfigError
from seqrl.evaluation.rollout import evaluate
from seqrl.families.dt.actions import ActionRepresentation, ActionTokenizedEmbedding, REPRESENTATIONS, register_representation
from seqrl.loading import load_run
from seqrl.models.spec import DataSpec
from seqrl.train import train
from tests.helpers.discrete import MAX_STEPS, balance, cartpole_dataset
from tests.helpers.dt import make_dataset, tiny_config

MODELS = ("continuous", "tokenized", "tokenized-spread", "continuous-spread")


@pytest.fixture(scope="module")
def data():
    return cartpole_dataset()


def discrete_config(tmp_path, name: str, **overrides):
    base = dict(num_bins=256, targets=(40.0,), rtg_scale=0.05, steps=40, log_every=10, checkpoint_every=40)
    return tiny_config(run_dir=str(tmp_path / name), **{**base, **overrides})


def losses(run_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


# --------------------------------------------------------------------------- the spec
def test_spec_records_the_discrete_action_space_and_old_specs_load_as_continuous(data):
    spec = DataSpec.from_dataset(data, rtg_scale=0.1, targets=(1.0,))
    assert (spec.discrete, spec.num_actions, spec.act_dim, spec.action_low, spec.action_high) == (True, 2, 1, (), ())
    assert spec.action_space == "Discrete(2)"
    assert DataSpec.from_dict(spec.to_dict()) == spec
    continuous = DataSpec.from_dataset(make_dataset(), rtg_scale=0.1, targets=(1.0,))
    written = continuous.to_dict()
    assert "num_actions" not in written  # continuous specs are written as before
    assert DataSpec.from_dict(written) == continuous and not DataSpec.from_dict(written).discrete
    with pytest.raises(CheckpointError, match=r"Box\(3\) actions, but cartpole-tiny .* has Discrete\(2\) actions"):
        continuous.check_compatible(data)
    with pytest.raises(CheckpointError, match=r"Discrete\(2\) actions, but tiny .* has Box\(3\) actions"):
        spec.check_compatible(make_dataset())


def test_index_tokenizer_is_the_identity_on_action_indices():
    tok = ActionTokenizer.for_indices(4)
    assert tok.vocab_size == 4 and tok.bins_per_feature.tolist() == [4]
    idx = np.arange(4)[:, None]
    assert tok.encode(idx).tolist() == idx.tolist()
    assert tok.decode(idx).tolist() == idx.astype(np.float32).tolist()
    assert ActionTokenizer.from_state_dict(tok.state_dict()).edges[0].tolist() == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- training, checkpoints, acting
@pytest.mark.parametrize("model", MODELS)
def test_each_representation_trains_saves_loads_and_acts_in_cartpole(tmp_path, data, model):
    cfg = discrete_config(tmp_path, model, model=model, steps=60)
    result = train(cfg, dataset=data)
    recorded = json.loads((tmp_path / model / "config.json").read_text())
    assert recorded["head"] == "categorical"  # the head the data settled, as the run records it
    assert result.spec.num_actions == 2
    logged = losses(tmp_path / model)
    assert logged[0] < 1.0 and logged[-1] < logged[0]  # cross-entropy over 2 actions starts near ln 2
    # The head is a classifier over the 2 actions, not a regression.
    batch_actions = torch.tensor([[[0], [1], [1]]])
    hidden = torch.zeros(1, 3, 1, cfg.embed_dim)
    assert result.model.codec.head(hidden).shape == (1, 3, 1, 2)
    assert result.model.codec.tokenize(batch_actions).tolist() == batch_actions.tolist()

    loaded = load_run(tmp_path / model)
    assert loaded.spec == result.spec and loaded.config.head == "categorical"
    # The checkpoint acts as the trained model does, in the real environment, with integer actions.
    first = evaluate(result.model, result.spec, config=result.config, episodes=4, seed=3, progress=False)
    again = evaluate(loaded.model, loaded.spec, config=loaded.config, episodes=4, seed=3, progress=False)
    assert first[0]["returns"] == again[0]["returns"]
    assert all(1 <= r <= MAX_STEPS for r in first[0]["returns"])  # CartPole pays 1 per step, capped


def test_the_dt_learns_the_balancing_rule_and_balances(tmp_path):
    """Trained on the rule's own episodes, the DT's argmax agrees with the rule on held-out
    states and keeps the pole up far longer than random actions do (about 20 steps)."""
    clean = cartpole_dataset(episodes=12, epsilons=(0.0,), seed=1)
    cfg = discrete_config(tmp_path, "learn", model="tokenized", steps=250, learning_rate=3e-3, dropout=0.0)
    result = train(cfg, dataset=clean)
    out = evaluate(result.model, result.spec, config=result.config, episodes=6, seed=100, progress=False)
    assert out[0]["return_mean"] >= 35, out[0]["returns"]
    # Single-step contexts from states of another seed: the argmax action is the rule's.
    held_out = cartpole_dataset(episodes=4, epsilons=(0.5,), seed=7)
    model, spec = result.model.eval(), result.spec
    states = torch.from_numpy(spec.normalize_states(held_out.observations))[:, None]
    n = len(states)
    rtg = torch.full((n, 1, 1), 40.0 * spec.rtg_scale)
    acted = model.act(rtg, states, torch.zeros(n, 1, 1), torch.from_numpy(held_out.timesteps)[:, None])
    rule = np.array([balance(o) for o in held_out.observations])
    assert (acted[:, 0].numpy() == rule).mean() > 0.85


def test_spread_representations_are_their_pooled_counterparts_on_one_discrete_feature(tmp_path, data):
    for spread, pooled in (("tokenized-spread", "tokenized"), ("continuous-spread", "continuous")):
        a = train(discrete_config(tmp_path, spread, model=spread), dataset=data)
        b = train(discrete_config(tmp_path, pooled, model=pooled), dataset=data)
        assert a.model.tokens_per_step == b.model.tokens_per_step == 3
        assert losses(tmp_path / spread) == losses(tmp_path / pooled)
    # ... and the two pooled ones differ only by the one-hot input's bias.
    cont, tok = (load_run(tmp_path / m).model for m in ("continuous", "tokenized"))
    assert set(cont.codec.embedding.state_dict()) == {"linear.weight", "linear.bias"}
    assert set(tok.codec.embedding.state_dict()) == {"token.weight"}


# --------------------------------------------------------------------------- what is refused
@pytest.mark.parametrize("flags, named", [
    (dict(num_bins=100), "--num-bins 100"),
    (dict(binning="uniform"), "--binning uniform"),
    (dict(token_offsets=False, model="tokenized"), "--no-token-offsets"),
    (dict(action_index_embedding=True, model="tokenized-spread"), "--action-index-embedding"),
    (dict(pool="sum", model="tokenized"), "--pool sum"),
    (dict(spread_head="shared", model="tokenized-spread"), "--spread-head shared"),
    (dict(max_action_features=4, model="tokenized-spread"), "--max-action-features 4"),
    (dict(decode="expectation", head="categorical"), "--decode expectation"),
])
def test_flags_without_meaning_for_a_discrete_action_are_refused_by_name(tmp_path, data, flags, named):
    cfg = discrete_config(tmp_path, "refused", **flags)
    with pytest.raises(ConfigError, match=rf"Discrete\(2\) actions.*{named}"):
        train(cfg, dataset=data)
    assert not (tmp_path / "refused").exists()  # refused before anything is written


def test_defaults_and_meaningful_flags_pass(tmp_path, data):
    cfg = discrete_config(tmp_path, "ok", model="tokenized", head="categorical", decode="sample", temperature=0.5)
    assert cfg.for_discrete(2) is cfg
    assert tiny_config(num_bins=256).for_discrete(2).head == "categorical"


def test_a_representation_without_a_discrete_form_is_refused_by_name(tmp_path, data):
    name = "toy-continuous-only"
    if name not in REPRESENTATIONS:
        register_representation(ActionRepresentation(
            name, lambda s: ActionTokenizedEmbedding(s.vocab_size, s.act_dim, s.dim, False), tokenized=True, spread=False))
    try:
        with pytest.raises(ConfigError, match=rf"--model {name} has no form for cartpole-tiny's Discrete\(2\) actions"):
            train(discrete_config(tmp_path, "toy", model=name), dataset=data)
    finally:
        REPRESENTATIONS.pop(name, None)


def test_finetune_names_a_mismatched_action_space(tmp_path, data):
    from seqrl.transfer import finetune

    train(discrete_config(tmp_path, "src", model="tokenized", steps=4), dataset=data)
    continuous = make_dataset(act_dim=1)
    with pytest.raises(ConfigError, match=r"source run has Discrete\(2\) actions and tiny has Box\(1\)"):
        finetune(tmp_path / "src", "tiny", steps=2, data=continuous, rebuild=("state",), run_dir=tmp_path / "ft",
                 progress=False)
    # With the action layers rebuilt the trunk transfers, and the continuous task gets a regression head.
    result = finetune(tmp_path / "src", "tiny", steps=2, data=continuous, run_dir=tmp_path / "ft2", progress=False)
    assert result.config.head == "regression" and not result.spec.discrete
    assert math.isfinite(losses(tmp_path / "ft2")[-1])


def test_sampled_decoding_acts_with_valid_indices(tmp_path, data):
    result = train(discrete_config(tmp_path, "sample", model="tokenized", decode="sample", temperature=2.0, steps=4),
                   dataset=data)
    out = evaluate(result.model, result.spec, config=result.config, episodes=4, seed=0, progress=False)
    assert all(1 <= r <= MAX_STEPS for r in out[0]["returns"])
    n = 64
    acted = result.model.eval().act(torch.zeros(n, 1, 1), torch.zeros(n, 1, 4), torch.zeros(n, 1, 1),
                                    torch.zeros(n, 1, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert set(acted[:, 0].tolist()) == {0.0, 1.0}  # both actions drawn at temperature 2, nothing else


def test_a_gpt2_initialised_dt_with_alignment_trains_and_resumes_on_discrete_actions(tiny_gpt2, tmp_path, data):
    import dataclasses

    cfg = discrete_config(tmp_path, "lm", model="tokenized", init=f"gpt2:{tiny_gpt2}", align_weight=0.1, align_clusters=8, steps=3,
                          log_every=1, checkpoint_every=3)
    first = train(cfg, dataset=data)
    assert first.config.head == "categorical" and first.config.embed_dim == 16  # the GPT-2's width
    terms = json.loads((tmp_path / "lm" / "metrics.jsonl").read_text().splitlines()[0])
    assert math.isfinite(terms["loss/action"]) and math.isfinite(terms["loss/align"])
    resumed = train(dataclasses.replace(cfg, steps=5, resume=True), dataset=data)
    assert resumed.step == 5 and resumed.config.head == "categorical"
