"""The alignment loss (the paper's maximum cosine over k-means centres), its schedule, k-means
determinism, and co-training through the LM's tied head. Mechanics tests of the objectives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from seqrl.families.dt.config import TrainConfig
from seqrl.families import get_family
from seqrl.families.lm.model import CausalLM, TextBatch
from seqrl.lm_init.sources import initialise, load_gpt2, resolve_init
from seqrl.lm_init.objectives import alignment_loss, alignment_schedule, kmeans_centres
from seqrl.models.spec import DataSpec
from seqrl.runs import read_jsonl
from seqrl.train import train
from tests.helpers.dt import make_dataset

from tests.helpers.lm import CORPUS, DT_TINY


def brute_force(inputs, centres, mask):
    total, count = 0.0, 0
    for b in range(inputs.shape[0]):
        for i in range(inputs.shape[1]):
            if not mask[b, i]:
                continue
            best = max(float(torch.dot(inputs[b, i], c) / (inputs[b, i].norm() * c.norm())) for c in centres)
            total, count = total + best, count + 1
    return -total / count


def test_alignment_equals_a_brute_force_loop_and_passes_gradcheck():
    g = torch.Generator().manual_seed(0)
    inputs, centres = torch.randn(3, 5, 4, generator=g), torch.randn(7, 4, generator=g)
    mask = torch.rand(3, 5, generator=g) > 0.3
    assert alignment_loss(inputs, centres, mask).item() == pytest.approx(brute_force(inputs, centres, mask), abs=1e-6)
    x = inputs.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: alignment_loss(x, centres.double(), mask), (x,))


def test_padding_does_not_change_the_alignment_loss():
    g = torch.Generator().manual_seed(1)
    inputs, centres = torch.randn(2, 6, 4, generator=g), torch.randn(5, 4, generator=g)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[0, 4:] = mask[1, 2:] = False
    changed = inputs.clone()
    changed[~mask] = torch.randn(int((~mask).sum()), 4, generator=g) * 100
    assert alignment_loss(inputs, centres, mask).item() == pytest.approx(alignment_loss(changed, centres, mask).item(), abs=1e-7)


def test_schedule_is_the_authors_sigmoid():
    assert [round(alignment_schedule(t), 4) for t in (0, 2500, 5000)] == [0.9933, 0.5, 0.0067]
    assert alignment_schedule(torch.tensor(2500)).item() == pytest.approx(0.5)


def test_kmeans_is_deterministic_for_a_seed_and_cached(tmp_path):
    tokens = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    a = kmeans_centres(tokens, 10, seed=3)
    assert torch.equal(a, kmeans_centres(tokens, 10, seed=3)) and not torch.equal(a, kmeans_centres(tokens, 10, seed=4))
    cached = kmeans_centres(tokens, 10, seed=3, fingerprint="abc", cache_dir=tmp_path)
    assert (tmp_path / "kmeans" / "abc-k10-s3.npy").is_file()
    # The cache answers for the fingerprint, without clustering again.
    assert torch.equal(kmeans_centres(torch.zeros(200, 8), 10, seed=3, fingerprint="abc", cache_dir=tmp_path), cached)
    with pytest.raises(Exception, match="more than the LM's 200 token embeddings"):
        kmeans_centres(tokens, 201)


def test_dt_with_alignment_and_cotraining_logs_both_terms(tiny_gpt2, tmp_path):
    (tmp_path / "text.txt").write_text(CORPUS)
    # The tiny GPT-2 has no tokenizer files; give its directory a byte-level one of its 96 tokens.
    tok_dir = tmp_path / "g2"
    import shutil

    shutil.copytree(tiny_gpt2, tok_dir)
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.BPE(vocab={chr(33 + i): i for i in range(95)} | {"Ġ": 95}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.save(str(tok_dir / "tokenizer.json"))
    cfg = TrainConfig(dataset="tiny", model="tokenized", num_bins=8, init=f"gpt2:{tok_dir}", align_weight=0.1,
                      align_clusters=5, cotrain_weight=0.5, cotrain_corpus=str(tmp_path / "text.txt"),
                      cotrain_context=8, cotrain_batch_size=2, run_dir=str(tmp_path / "run"), **DT_TINY)
    result = train(cfg, dataset=make_dataset(obs_dim=3, act_dim=2, episodes=4))
    records = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if "loss" in r]
    assert {"loss/action", "loss/align", "loss/cotrain"} <= set(records[0])
    first = records[0]
    weight = 0.1 * alignment_schedule(0)
    assert first["loss"] == pytest.approx(first["loss/action"] + weight * first["loss/align"] + 0.5 * first["loss/cotrain"],
                                          rel=1e-5)
    assert -1.0 <= first["loss/align"] <= 1.0
    objectives = result.model.lm_objectives
    assert objectives.centres.shape == (5, 16) and int(objectives.step) == 3
    # Resuming keeps the schedule's clock and the LM's embeddings (shapes from the checkpoint).
    resumed = train(dataclasses.replace(cfg, steps=4, resume=True), dataset=make_dataset(obs_dim=3, act_dim=2, episodes=4))
    assert int(resumed.model.lm_objectives.step) == 4 and resumed.model.lm_objectives.tokens.shape == (96, 16)


def test_cotrain_term_is_the_lm_loss_of_the_source(corpus_dir, tmp_path):
    # A DT initialised from an LM computes, through its trunk and the LM's tied head, exactly the
    # LM's own next-token loss on the same window (before any training).
    from seqrl.cli import main

    from tests.helpers.lm import LM_TINY

    run = tmp_path / "lm"
    main(["pretrain-lm", "--dataset", str(corpus_dir), "--steps", "2", "--run-dir", str(run), "--dropout", "0", *LM_TINY])
    cfg = resolve_init(TrainConfig(dataset="tiny", init=f"lm:{run}", cotrain_weight=1.0, dropout=0.0, **DT_TINY))
    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    spec = DataSpec.from_dataset(data, rtg_scale=0.1, targets=(10.0,))
    dt = get_family("dt").build_model(cfg, spec, None)
    initialise(dt, cfg)
    from seqrl.loading import load_run

    lm = load_run(run).model
    text = torch.randint(0, lm.tok.num_embeddings, (3, 17), generator=torch.Generator().manual_seed(0))
    dt.eval()
    with torch.no_grad():
        assert dt.lm_objectives.cotrain_term(dt.trunk, text).item() == pytest.approx(
            lm.loss_terms(TextBatch(text))[0].item(), rel=1e-5)


def test_cotraining_without_a_tokenizer_is_refused_with_nothing_written(tiny_gpt2,
                                                                       tmp_path):
    """The co-training sampler's checks run before the run directory is written."""
    from seqrl.errors import ConfigError

    (tmp_path / "text.txt").write_text(CORPUS)
    data = make_dataset(obs_dim=3, act_dim=2, episodes=4)
    base = dict(dataset="tiny", model="tokenized", num_bins=8, init=f"gpt2:{tiny_gpt2}", cotrain_weight=0.5,
                cotrain_corpus=str(tmp_path / "text.txt"), cotrain_batch_size=2, **DT_TINY)
    with pytest.raises(ConfigError, match="comes with no tokenizer"):  # the tiny GPT-2 ships none
        train(TrainConfig(**base, cotrain_context=8, run_dir=str(tmp_path / "a")), dataset=data)
    assert not (tmp_path / "a").exists()


def test_the_alignment_anneal_spans_the_run_unless_set_and_is_recorded():
    from seqrl.families.dt.config import TrainConfig, resolve_presets
    from seqrl.families.tt.config import TTConfig
    from seqrl.lm_init.objectives import alignment_schedule

    cfg = resolve_presets(TrainConfig(dataset="hopper-medium", steps=1500))
    assert cfg.align_anneal_steps == 1500  # written to config.json as resolved
    assert alignment_schedule(1500, cfg.align_anneal_steps) < 0.01  # ~0 by the run's end
    assert alignment_schedule(1500, 5000) > 0.88  # what the old fixed 5000 left at step 1500
    assert resolve_presets(TrainConfig(dataset="hopper-medium", steps=1500, align_anneal_steps=700)).align_anneal_steps == 700
    assert TTConfig(dataset="hopper-medium", steps=900).resolved().align_anneal_steps == 900
    old = TrainConfig.from_dict({**TrainConfig(dataset="x").to_dict(), "align_anneal_steps": 5000})
    assert resolve_presets(old).align_anneal_steps == 5000  # a run written before the default keeps its own
