"""experiments/agnostic_smoke.yaml end to end, with tiny datasets of other sizes substituted:
an agnostic spread source, a fine-tune keeping its action layers, DT at 6 targets, BC, report."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from seqrl.checkpoint import load_checkpoint
from seqrl.data.sources import save_dataset
from seqrl.experiments.report import write_report
from seqrl.experiments.spec import expand
from seqrl.experiments.sweep import run_sweep
from tests.helpers.dt import make_dataset

from .conftest import TINY_DEFAULTS

SPEC = Path(__file__).parents[2] / "experiments" / "agnostic_smoke.yaml"


def test_agnostic_smoke_spec_runs_keeps_the_action_layers_and_reports(tmp_path, minari_root):
    # The source task has 2 action features (Reacher), the target 1 (InvertedPendulum): the kept
    # action layers must fit both.
    for name, env_id, obs_dim, act_dim in [("reach-tiny", "Reacher-v5", 10, 2), ("pole-tiny", "InvertedPendulum-v5", 4, 1)]:
        save_dataset(make_dataset(obs_dim=obs_dim, act_dim=act_dim, episodes=4, name=name), f"seqrl/{name}-v0", env_id,
                     ref_min_score=-100.0, ref_max_score=100.0)
    text = SPEC.read_text().replace("lunarlander-medium", "reach-tiny").replace("lunarlander-expert", "pole-tiny")
    spec = yaml.safe_load(text)
    spec["defaults"].update({k: v for k, v in TINY_DEFAULTS.items() if k != "targets"}, binning="uniform")
    spec["experiments"]["dt-bc"]["options"]["targets"] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    sweep = expand(spec)
    out = tmp_path / "out"
    result = run_sweep(sweep, out, workers=1, threads=1)
    assert sorted(result.names("done")) == sorted(r.name for r in sweep.runs) and len(sweep.runs) == 8

    for model in ("tokenized-spread", "continuous-spread"):
        source = load_checkpoint(out / f"source/reach-tiny/{model}/s0")["model"]
        tuned_dir = out / f"transfer/pole-tiny/{model}+ft-embeddings,rebuild=state/s0"
        tuned = load_checkpoint(tuned_dir)["model"]
        kept = [k for k in source if k.startswith(("codec.embedding.", "codec.head.w", "codec.head.b", "trunk.",
                                                   "embed_return.", "embed_timestep."))]
        assert kept and [k for k in kept if not torch.equal(source[k], tuned[k])] == []
        assert tuned["embed_state.weight"].shape[1] == 4 and source["embed_state.weight"].shape[1] == 10
        assert json.loads((tuned_dir / "metadata.json").read_text())["finetune"]["rebuilt"] == ["state"]
        assert json.loads((tuned_dir / "eval.json").read_text())["results"]

    dt_eval = json.loads((out / "dt-bc/reach-tiny/continuous/s0/eval.json").read_text())
    assert len(dt_eval["results"]) == 6
    bc_eval = json.loads((out / "bc/reach-tiny/bc+top50/s0/eval.json").read_text())
    assert bc_eval["family"] == "bc" and [r["target"] for r in bc_eval["results"]] == [None]

    mt = json.loads((out / "multitask/reach-tiny+pole-tiny/mt-tokenized-spread/s0/eval.json").read_text())
    assert set(mt["tasks"]) == {"reach-tiny", "pole-tiny"}

    report = write_report(out)
    names = {p.name for p in report["files"]}
    assert "targets-dt-bc-reach-tiny.png" in names
    assert {r["model"] for r in report["rows"]} == {"tokenized-spread", "continuous-spread", "continuous", "bc",
                                                    "mt-tokenized-spread"}
