"""experiments/lm_init_smoke.yaml end to end on a tiny corpus and a tiny dataset: the LMs train
first, the DT arms wait for them and initialise from their run directories, every run is
evaluated and reported. Mechanics test of the sweep; it says nothing about LM initialisation."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from seqrl.checkpoint import load_checkpoint
from seqrl.data.sources import save_dataset
from seqrl.experiments.report import write_report
from seqrl.experiments.spec import expand, load_spec
from seqrl.experiments.sweep import run_sweep
from seqrl.runs import read_jsonl
from tests.helpers.dt import make_dataset

ROOT = Path(__file__).parents[2] / "experiments"
CORPUS_PATH = "/usr/share/dictd/gcide.dict.dz"


def test_full_spec_expands_with_every_arm_after_its_lm():
    sweep = load_spec(ROOT / "lm_init.yaml")
    assert len(sweep.runs) == 53  # 2 LMs + 17 arms x 3 seeds
    names = [r.name for r in sweep.runs]
    for run in sweep.runs:
        for dep in run.depends_on:
            assert names.index(dep) < names.index(run.name)
    arms = {r.name.rsplit("/", 3)[0] + "/" + r.name.rsplit("/", 2)[1] for r in sweep.runs}
    assert {"text/continuous+plain", "text/continuous+align-cotrain", "text/continuous+frozen",
            "synthetic/continuous+plain", "random/continuous", "spread/tokenized-spread+random",
            "spread/tokenized-spread+text"} <= arms


def test_smoke_spec_runs_end_to_end(tmp_path, minari_root):
    save_dataset(make_dataset(obs_dim=4, act_dim=1, episodes=4, name="pole-tiny"), "seqrl/pole-tiny-v0",
                 "InvertedPendulum-v5", ref_min_score=0.0, ref_max_score=1000.0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Offline reinforcement learning reads logged episodes; a dictionary reads words. " * 300)
    safe = str(corpus).replace("/", "_")
    text = ((ROOT / "lm_init_smoke.yaml").read_text().replace("lunarlander-medium", "pole-tiny")
            .replace(CORPUS_PATH.replace("/", "_"), safe).replace(CORPUS_PATH, str(corpus)))
    spec = yaml.safe_load(text)
    spec["defaults"].update(steps=4, warmup_steps=1, eval_every=2, log_every=1, checkpoint_every=2, rtg_scale=0.1,
                            targets=[10.0], precision="fp32", device="cpu", eval_seed=0)
    for name in ("pretrain", "pretrain-markov"):
        spec["experiments"][name]["options"].update(steps=3, context_len=16, batch_size=2)
    for name in ("text", "spread"):
        spec["experiments"][name]["options"]["init"] = f"lm:@pretrain/{safe}/lm/s0"
    spec["experiments"]["text"]["variants"][1]["cotrain_context"] = 8
    sweep = expand(spec)
    out = tmp_path / "out"
    result = run_sweep(sweep, out, workers=1, threads=1)
    assert sorted(result.names("done")) == sorted(r.name for r in sweep.runs), result.errors
    lm = load_checkpoint(out / f"pretrain/{safe}/lm/s0")["model"]
    plain = out / "text/pole-tiny/continuous+plain/s0"
    meta = json.loads((plain / "metadata.json").read_text())
    assert meta["init"]["kind"] == "lm" and json.loads((plain / "config.json").read_text())["embed_dim"] == 32
    frozen = load_checkpoint(out / "text/pole-tiny/continuous+frozen/s0")["model"]
    assert all(torch.equal(frozen[k], v) for k, v in lm.items() if k.startswith("trunk."))
    records = read_jsonl(out / "text/pole-tiny/continuous+align-cotrain/s0/metrics.jsonl")
    assert any("loss/cotrain" in r and "loss/align" in r for r in records)
    assert any(r.get("kind") == "eval" for r in records)
    assert json.loads((plain / "eval.json").read_text())["results"]
    write_report(out)
    from .test_lm_init_tables import _module

    rows = _module().arm_rows(out)  # the convergence table reads every evaluated arm, and no LM run
    assert {r["arm"] for r in rows} == {"random/continuous", "text/continuous+plain", "text/continuous+align-cotrain",
                                        "text/continuous+frozen", "synthetic/continuous", "spread/tokenized-spread"}
    assert all(r["steps_to_best"] in (2, 4) for r in rows)
