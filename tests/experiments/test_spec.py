"""Sweep specs: cartesian expansion, override order, names, finetune dependencies, errors."""

from __future__ import annotations

import textwrap

import pytest

from seqrl.errors import ConfigError
from seqrl.experiments.spec import Finetune, RunSpec, _dependency_order, expand, load_spec


def spec(**experiments) -> dict:
    return {"name": "t", "defaults": {"steps": 7, "num_bins": 50, "embed_dim": 32}, "experiments": experiments}


def test_cartesian_product_of_datasets_models_grid_variants_and_seeds():
    sweep = expand(spec(bins={
        "datasets": ["a", "b"], "models": ["tokenized", "tokenized-spread"], "seeds": 3,
        "grid": {"num_bins": [100, 300], "binning": ["quantile", "uniform"]},
        "variants": [{"name": "plain"}, {"name": "no-offset", "token_offsets": False}],
    }))
    assert len(sweep.runs) == 2 * 2 * 4 * 2 * 3
    assert len({r.name for r in sweep.runs}) == len(sweep.runs)
    run = sweep.by_name["bins/b/tokenized-spread+num_bins=300,binning=uniform,no-offset/s2"]
    cfg = run.config("out")
    assert (cfg.dataset, cfg.model, cfg.seed, cfg.num_bins, cfg.binning, cfg.token_offsets) == \
        ("b", "tokenized-spread", 2, 300, "uniform", False)
    assert cfg.steps == 7 and cfg.embed_dim == 32  # defaults reach every run
    assert cfg.run_dir == "out/" + run.name and cfg.resume and not cfg.progress
    assert run.group == "bins/b/tokenized-spread+num_bins=300,binning=uniform,no-offset"
    assert [r.seed for r in sweep.runs[:3]] == [0, 1, 2]  # seeds vary fastest


def test_later_overrides_win_defaults_then_options_then_grid_then_variant():
    sweep = expand(spec(e={
        "datasets": "a", "seeds": [5], "options": {"num_bins": 60, "embed_dim": 48, "n_layers": 2},
        "grid": {"num_bins": [70]}, "variants": [{"name": "v", "n_layers": 1}],
    }))
    (run,) = sweep.runs
    cfg = run.config("out")
    assert (cfg.num_bins, cfg.embed_dim, cfg.n_layers, cfg.steps, cfg.seed) == (70, 48, 1, 7, 5)
    assert run.name == "e/a/continuous+num_bins=70,v/s5"  # options are not in the name, grid and variants are


def test_eval_episodes_default_spec_level_and_per_experiment():
    sweep = expand({"eval": {"episodes": 3}, "experiments": {"x": {"datasets": ["a"]}, "y": {"datasets": ["a"], "eval": False}}})
    assert [r.eval_episodes for r in sweep.runs] == [3, 0]
    assert sweep.runs[0].config("o").eval_episodes == 3  # also for evaluations during training
    assert expand({"experiments": {"x": {"datasets": ["a"]}}}).runs[0].eval_episodes == 10


def test_finetune_runs_depend_on_the_one_source_run_and_come_after_it():
    sweep = expand(spec(
        transfer={  # listed first: the order must still put its sources before it
            "datasets": ["walker"], "models": ["continuous", "tokenized"], "seeds": 2,
            "finetune": {"from": "pre/hopper/{model}/s{seed}", "train": ["embeddings", "all"]},
        },
        pre={"datasets": ["hopper", "cheetah"], "models": ["continuous", "tokenized"], "seeds": 2},
    ))
    tuned = [r for r in sweep.runs if r.finetune]
    assert len(tuned) == 2 * 2 * 2
    run = sweep.by_name["transfer/walker/tokenized+ft-embeddings/s1"]
    assert run.finetune == Finetune("pre/hopper/tokenized/s1", "embeddings")
    assert run.depends_on == ("pre/hopper/tokenized/s1",)
    position = {r.name: i for i, r in enumerate(sweep.runs)}
    assert all(position[r.finetune.source] < position[r.name] for r in tuned)
    assert sweep.by_name["transfer/walker/continuous+ft-all/s0"].finetune.train == "all"


def test_finetune_pattern_may_use_wildcards_but_must_match_exactly_one_run():
    base = {"pre": {"datasets": ["hopper"], "seeds": 1}}
    ok = expand(spec(**base, ft={"datasets": ["w"], "finetune": {"from": "pre/*/{model}/s{seed}", "train": "all"}}))
    assert ok.by_name["ft/w/continuous+ft-all/s0"].finetune.source == "pre/hopper/continuous/s0"
    with pytest.raises(ConfigError, match="matches no run"):
        expand(spec(**base, ft={"datasets": ["w"], "finetune": {"from": "pre/cheetah/{model}/s{seed}"}}))
    two = {"pre": {"datasets": ["hopper", "cheetah"], "seeds": 1}}
    with pytest.raises(ConfigError, match="matches 2"):
        expand(spec(**two, ft={"datasets": ["w"], "finetune": {"from": "pre/*/{model}/s{seed}"}}))
    with pytest.raises(ConfigError, match="not a field"):
        expand(spec(**base, ft={"datasets": ["w"], "finetune": {"from": "pre/{nope}/s{seed}"}}))
    with pytest.raises(ConfigError, match="embeddings, all"):
        expand(spec(**base, ft={"datasets": ["w"], "finetune": {"from": "pre/hopper/{model}/s{seed}", "train": "heads"}}))


def test_dependency_cycles_are_refused():
    def run(name: str, source: str) -> RunSpec:
        return RunSpec(name, "e", "d", "continuous", 0, "", {}, {}, 0, Finetune(source, "all"))

    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        _dependency_order([run("a", "b"), run("b", "a")])


@pytest.mark.parametrize("bad, match", [
    ({"defaults": {"stepz": 3}}, "unknown config fields stepz"),
    ({"defaults": {"seed": 3}}, "set by the sweep"),
    ({"experiments": {"x": {"datasets": ["a"], "models": ["transformer"]}}}, "unknown model"),
    ({"experiments": {"x": {"datasets": ["a"], "options": {"num_bins": 1}}}}, "--num-bins must be >= 2"),
    ({"experiments": {"x": {"models": ["continuous"]}}}, "needs 'datasets'"),
    ({"experiments": {"x": {"datasets": ["a"], "seed": [1]}}}, "unknown keys seed"),
    ({"experiments": {"x": {"datasets": ["a"], "variants": [{"token_offsets": False}]}}}, "needs a 'name'"),
    ({"experiments": {"x": {"datasets": ["a"], "variants": [{"name": "v"}, {"name": "v"}]}}}, "both named"),
    ({"experiments": {"x/y": {"datasets": ["a"]}}}, "may hold only"),
    ({"experiments": {}}, "needs 'experiments'"),
    ({"experiment": {}}, "unknown sweep keys"),
])
def test_mistakes_are_config_errors_naming_the_problem(bad, match):
    with pytest.raises(ConfigError, match=match):
        expand({"experiments": {"x": {"datasets": ["a"]}}, **bad})


def test_yaml_and_python_specs_load_the_same(tmp_path):
    (tmp_path / "s.yaml").write_text(textwrap.dedent("""
        defaults: {steps: 3}
        experiments:
          main: {datasets: [a], models: [continuous, tokenized], seeds: 2}
    """))
    (tmp_path / "s.py").write_text("SWEEP = {'defaults': {'steps': 3}, 'experiments': "
                                   "{'main': {'datasets': ['a'], 'models': ['continuous', 'tokenized'], 'seeds': 2}}}\n")
    (tmp_path / "f.py").write_text("def sweep():\n    return {'name': 'fn', 'experiments': {'main': {'datasets': ['a']}}}\n")
    from_yaml, from_py = load_spec(tmp_path / "s.yaml"), load_spec(tmp_path / "s.py")
    assert [r.to_dict() for r in from_yaml.runs] == [r.to_dict() for r in from_py.runs]
    assert from_yaml.name == "s" and len(from_yaml.runs) == 4
    assert load_spec(tmp_path / "f.py").name == "fn"
    (tmp_path / "n.py").write_text("X = 1\n")
    with pytest.raises(ConfigError, match="SWEEP or a function sweep"):
        load_spec(tmp_path / "n.py")


def test_select_keeps_the_runs_a_selection_fine_tunes_from():
    sweep = expand(spec(pre={"datasets": ["h"], "seeds": 2},
                        ft={"datasets": ["w"], "seeds": 2, "finetune": {"from": "pre/h/{model}/s{seed}"}}))
    chosen = sweep.select(["ft/*/s1"])
    assert [r.name for r in chosen.runs] == ["pre/h/continuous/s1", "ft/w/continuous+ft-all/s1"]
    with pytest.raises(ConfigError, match="no run"):
        sweep.select(["nothing*"])


def test_shipped_specs_expand():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "experiments"
    paper = load_spec(root / "paper.yaml")
    experiments = {r.experiment for r in paper.runs}
    assert {"main", "ablations", "bins", "transfer-hopper-walker2d", "transfer-halfcheetah-hopper"} <= experiments
    assert all(len({r.seed for r in paper.runs if r.group == g}) >= 3 for g in {r.group for r in paper.runs})
    bins = {(r.config("x").num_bins, r.config("x").binning) for r in paper.runs if r.experiment == "bins"}
    assert bins == {(b, s) for b in (100, 300, 1000, 3000) for s in ("quantile", "uniform")}
    assert {r.finetune.train for r in paper.runs if r.finetune} == {"embeddings", "all"}
    assert load_spec(root / "smoke.yaml").runs
