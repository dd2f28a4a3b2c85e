"""The Trajectory Transformer through the sweep and report machinery, beside DT runs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from seqrl.errors import ConfigError
from seqrl.experiments.report import write_report
from seqrl.experiments.spec import expand
from seqrl.experiments.sweep import run_sweep
from seqrl.families.tt.config import TTConfig

from .conftest import TINY_DEFAULTS

PLANNER = {"horizon": 2, "beam_width": 2, "expansion": 2, "context_transitions": 2}


def mixed_spec(pole: str) -> dict:
    return {
        "name": "mixed", "defaults": {**TINY_DEFAULTS, "sequence_length": 3},
        "eval": {"episodes": 2, "planner": PLANNER},
        "experiments": {"main": {"datasets": [pole], "models": ["continuous", "tt"], "seeds": 2}},
    }


def test_a_sweep_trains_dt_and_tt_rows_and_reports_them_side_by_side(tmp_path, tiny_datasets):
    pole = tiny_datasets["pole"]
    sweep = expand(mixed_spec(pole))
    tt_run = sweep.by_name[f"main/{pole}/tt/s0"]
    cfg = tt_run.config(tmp_path)
    assert cfg.family == "tt" and cfg.sequence_length == 3 and cfg.embed_dim == 16
    assert not hasattr(cfg, "context_len")  # the DT-only defaults are left out of TT runs
    # a new run takes today's defaults, not those a stored config of an older seqrl implies: the
    # sweep once built configs as if read back from disk, and every sweep TT saw its value tokens
    assert cfg.mask_values is True and cfg == TTConfig.from_options(dataclasses.asdict(cfg))
    assert TTConfig.from_dict({k: v for k, v in dataclasses.asdict(cfg).items() if k != "mask_values"}).mask_values is False
    assert tt_run.eval_settings == PLANNER and sweep.by_name[f"main/{pole}/continuous/s0"].eval_settings is None
    result = run_sweep(sweep, tmp_path / "out", workers=1, threads=1)
    assert sorted(result.names("done")) == sorted(r.name for r in sweep.runs)
    evaluation = json.loads((tmp_path / "out" / tt_run.name / "eval.json").read_text())
    assert evaluation["family"] == "tt" and evaluation["planner"]["beam_width"] == 2
    report = write_report(tmp_path / "out", plots=True)
    by_model = {}
    for row in report["rows"]:
        by_model.setdefault(row["model"], []).append(row)
    assert [r["target"] for r in by_model["tt"]] == [None] and by_model["tt"][0]["seeds"] == 2
    assert sorted(r["target"] for r in by_model["continuous"]) == [5.0, 10.0]
    assert "| tt | – | - | 2 |" in report["markdown"]
    assert (tmp_path / "out" / "report" / "results.csv").read_text().count("\nmain,pole-tiny,tt,") == 1


def test_spec_errors_name_the_family_problem(tiny_datasets):
    pole = tiny_datasets["pole"]
    bad_option = {"name": "x", "experiments": {"e": {"datasets": [pole], "models": ["tt"], "options": {"context_len": 3}}}}
    with pytest.raises(ConfigError, match="unknown config fields: context_len"):
        expand(bad_option)
    bad_model = {"name": "x", "experiments": {"e": {"datasets": [pole], "models": ["ttt"]}}}
    with pytest.raises(ConfigError, match="unknown model 'ttt'"):
        expand(bad_model)
    bad_planner = {"name": "x", "eval": {"planner": {"horizon": 0}}, "experiments": {"e": {"datasets": [pole], "models": ["tt"]}}}
    with pytest.raises(ConfigError, match="horizon"):
        expand(bad_planner)
