"""A separate trunk learning rate, the frozen trunk and LoRA adapters act on the parameters they
name. Mechanics tests of the optimiser set-up, on a tiny DT."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seqrl.loading import load_run
from seqrl.families.dt.config import TrainConfig
from seqrl.data.sampler import ContextSampler
from seqrl.families import get_family
from seqrl.models.spec import DataSpec
from seqrl.train import make_optimizer, train
from tests.helpers.dt import make_dataset

from tests.helpers.lm import DT_TINY


def _model(cfg: TrainConfig):
    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    spec = DataSpec.from_dataset(data, rtg_scale=0.1, targets=(10.0,))
    family = get_family("dt")
    model = family.build_model(cfg, spec, family.fit_artefacts(cfg, data, spec))
    batch = ContextSampler(data, cfg.context_len, rtg_scale=0.1).sample(8, __import__("numpy").random.default_rng(0))
    return model, batch.to_torch("cpu")


def _one_step(cfg: TrainConfig):
    torch.manual_seed(0)
    model, batch = _model(cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    loss, _ = model.loss_terms(batch)
    loss.backward()
    optimizer.step()
    return model, {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}


def test_trunk_learning_rate_applies_to_the_trunk_only():
    # Adam's first step moves every parameter with a gradient by about its learning rate: the
    # size of the step shows which rate each parameter got.
    cfg = TrainConfig(dataset="tiny", embed_dim=16, n_layers=2, n_heads=1, weight_decay=0.0, dropout=0.0,
                      **{**DT_TINY, "learning_rate": 1e-2}, trunk_learning_rate=1e-5)
    model, moved = _one_step(cfg)
    trunk = [v for n, v in moved.items() if n.startswith("trunk.")]
    rest = [v for n, v in moved.items() if not n.startswith("trunk.") and v > 0]
    assert trunk and max(trunk) <= 1.01e-5 and max(trunk) > 0.5e-5
    assert rest and min(max(rest), 1.0) > 0.5e-2 and max(rest) <= 1.01e-2
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    trunk_ids = {id(p) for p in model.trunk.parameters()}
    lrs = {g["lr"] for g in optimizer.param_groups if any(id(p) in trunk_ids for p in g["params"])}
    assert lrs == {1e-5}
    # Unset, every parameter moves at the one rate.
    _, same = _one_step(dataclasses.replace(cfg, trunk_learning_rate=None))
    assert max(v for n, v in same.items() if n.startswith("trunk.")) > 0.5e-2


def test_frozen_trunk_stays_put_while_the_rest_trains(tmp_path):
    cfg = TrainConfig(dataset="tiny", embed_dim=16, n_layers=1, freeze_trunk=True, run_dir=str(tmp_path / "r"), **DT_TINY)
    torch.manual_seed(cfg.seed)
    start, _ = _model(cfg)
    result = train(cfg, dataset=make_dataset(obs_dim=3, act_dim=2, episodes=4))
    after = result.model.state_dict()
    for name, value in start.state_dict().items():
        if name.startswith("trunk."):
            assert torch.equal(after[name], value), name
    assert not torch.equal(after["embed_state.weight"], start.state_dict()["embed_state.weight"])


@pytest.mark.parametrize("model", ["continuous", "tokenized-spread"])
def test_lora_adapts_attention_only_and_round_trips(tmp_path, model):
    pytest.importorskip("peft")
    cfg = TrainConfig(dataset="tiny", model=model, num_bins=8, embed_dim=16, n_layers=2, lora_rank=2,
                      run_dir=str(tmp_path / "r"), **DT_TINY)
    dt, batch = _model(cfg)
    lora = {n for n, p in dt.named_parameters() if "lora_" in n}
    assert lora and all(".attn.qkv." in n or ".attn.proj." in n for n in lora)
    assert {n for n, p in dt.named_parameters() if p.requires_grad and n.startswith("trunk.")} == lora
    # The adapters take part in the forward, including the query-subset path `act` reads.
    with torch.no_grad():
        for name, p in dt.named_parameters():
            if "lora_B" in name:
                p.normal_()
        dt.eval()
        hidden, _ = dt(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
        full_x, _ = dt.embed(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
        full = dt.trunk(full_x)  # (B, L, D), no query selection
        m = dt.tokens_per_step
        k = dt.codec.tokens_per_step
        T = batch.states.shape[1]
        reads = (torch.arange(T)[:, None] * m + 1 + torch.arange(k)).flatten()
        torch.testing.assert_close(hidden.flatten(1, 2), full[:, reads], atol=1e-5, rtol=1e-5)
    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    result = train(cfg, dataset=data)
    loaded = load_run(result.run_dir)
    for name, value in result.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value)
    assert any("lora_B" in n and v.abs().sum() > 0 for n, v in loaded.model.state_dict().items())
