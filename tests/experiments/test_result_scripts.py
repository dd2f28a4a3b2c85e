"""experiments/tt_goal_tables.py and experiments/agnostic_tables.py, the scripts that print
RESULTS.md's goal-reaching and agnostic-codec tables, on made-up run folders and CSVs."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def _run_script(name: str, argv: list[str], capsys) -> str:
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    old = sys.argv
    sys.argv = [name, *argv]
    try:
        module.main()
    finally:
        sys.argv = old
    return capsys.readouterr().out


def _eval(root: Path, name: str, successes: list[bool], lengths: list[int]) -> None:
    run = root / name
    run.mkdir(parents=True)
    reached = [n for n, s in zip(lengths, successes) if s]
    result = {"target": None, "episodes": len(successes), "success_rate": sum(successes) / len(successes),
              "successes": successes, "steps_to_goal_mean": sum(reached) / len(reached) if reached else None}
    (run / "eval.json").write_text(json.dumps({"results": [result], "wall_time_per_episode_s": 2.0}))


def test_goal_tables_give_each_run_and_the_mean_and_std_over_seeds_of_each_arm(tmp_path, capsys):
    _eval(tmp_path, "goal/maze/tt/s0", [True, False, False, False], [100, 500, 500, 500])
    _eval(tmp_path, "goal/maze/tt/s1", [True, True, False, False], [200, 300, 500, 500])
    _eval(tmp_path, "baseline/maze/bc/s0", [False, False], [500, 500])
    out = _run_script("tt_goal_tables", [str(tmp_path)], capsys)
    assert "| goal/maze/tt/s0 | 4 | 25 | 100 | 2.0 |" in out
    assert "| goal/maze/tt/s1 | 4 | 50 | 250 | 2.0 |" in out
    assert "| baseline/maze/bc/s0 | 2 | 0 | – | 2.0 |" in out  # no success: no steps to goal
    assert "| goal/maze/tt | 2 | 37.5 ± 12.5 | 175 ± 75 |" in out  # population std over the 2 seeds
    assert "| baseline/maze/bc | 1 | 0.0 (1 seed) | – |" in out


def _csv(path: Path, rows: list[dict]) -> None:
    columns = ["experiment", "dataset", "model", "options", "target", "seeds", "score_mean", "score_std", "final_loss_mean",
               "return_mean"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({"options": "", "seeds": 3, "score_std": 1.0, **row})


def test_agnostic_tables_take_the_higher_target_and_match_train_modes(tmp_path, capsys):
    today, agnostic = tmp_path / "paper.csv", tmp_path / "agnostic.csv"
    _csv(today, [
        dict(experiment="main", dataset="hopper-medium", model="tokenized-spread", target=3600, score_mean=17.0),
        dict(experiment="main", dataset="hopper-medium", model="tokenized-spread", target=1800, score_mean=99.0),
        dict(experiment="main", dataset="hopper-medium", model="tokenized-spread", options="no-offsets", target=3600,
             score_mean=55.0),  # an ablation: not the plain row
        dict(experiment="transfer-halfcheetah-hopper", dataset="hopper-medium", model="tokenized-spread",
             options="ft-embeddings", target=3600, score_mean=16.0),
    ])
    _csv(agnostic, [
        dict(experiment="source", dataset="hopper-medium", model="tokenized-spread", target=3600, score_mean=6.0, seeds=2),
        dict(experiment="transfer-halfcheetah-hopper", dataset="hopper-medium", model="tokenized-spread",
             options="ft-all,rebuild=state", target=3600, score_mean=24.0),
    ])
    out = _run_script("agnostic_tables", [str(agnostic), str(today)], capsys)
    assert "| hopper-medium | tokenized-spread | 17.0 ± 1.0 | 6.0 ± 1.0 (2 seeds) |" in out
    assert "| tokenized-spread | embeddings | 16.0 ± 1.0 | – | 17.0 ± 1.0 | 6.0 ± 1.0 (2 seeds) |" in out
    assert "| tokenized-spread | all | – | 24.0 ± 1.0 | 17.0 ± 1.0 | 6.0 ± 1.0 (2 seeds) |" in out
    assert "99.0" not in out and "55.0" not in out
    with pytest.raises(SystemExit):
        _run_script("agnostic_tables", [str(tmp_path / "missing.csv")], capsys)


def test_agnostic_tables_show_multitask_lunarlander_halfcheetah_variants_and_dt_against_bc(tmp_path, capsys):
    today, agnostic = tmp_path / "paper.csv", tmp_path / "agnostic.csv"
    _csv(today, [dict(experiment="main", dataset="halfcheetah-medium", model="continuous", target=12000,
                      score_mean=35.7, final_loss_mean=0.0012)])
    every = "hopper-medium+halfcheetah-medium+walker2d-medium"
    _csv(agnostic, [
        dict(experiment="multitask", dataset=f"walker2d-medium@{every}", model="mt-continuous-spread", target=5000,
             score_mean=31.0),
        dict(experiment="transfer-multitask-lunarlander", dataset="lunarlander-medium", model="tokenized-spread",
             options="ft-embeddings,rebuild=state", target=200, score_mean=12.0),
        dict(experiment="lunarlander-scratch", dataset="lunarlander-medium", model="tokenized-spread", target=200,
             score_mean=40.0),
        dict(experiment="halfcheetah-spread", dataset="halfcheetah-medium", model="continuous-spread", options="wide",
             target=12000, score_mean=13.0, final_loss_mean=0.0023),
        dict(experiment="halfcheetah-coverage", dataset="halfcheetah-ppo_noise0p1", model="bc", target="",
             score_mean=21.0),
        dict(experiment="halfcheetah-bc-precision", dataset="halfcheetah-medium", model="bc", options="10x-no-dropout",
             target="", score_mean=33.0, final_loss_mean=0.0009),
        dict(experiment="dt-bc-hopper", dataset="hopper-mixed", model="continuous", target=3600, score_mean=20.0,
             return_mean=100.0),
        dict(experiment="dt-bc-hopper", dataset="hopper-mixed", model="continuous", target=1800, score_mean=30.0,
             return_mean=150.0),
        dict(experiment="bc", dataset="hopper-mixed", model="bc", options="all", target="", score_mean=8.0),
        dict(experiment="bc", dataset="hopper-mixed", model="bc", options="top10", target="", score_mean=25.0),
    ])
    out = _run_script("agnostic_tables", [str(agnostic), str(today)], capsys)
    assert "| walker2d-medium | continuous-spread | 31.0 ± 1.0 | – | – |" in out
    assert "| tokenized-spread | embeddings | 12.0 ± 1.0 | – | 40.0 ± 1.0 |" in out
    assert "| wide | 13.0 ± 1.0 | 0.0023 |" in out
    assert "| paper.yaml main, continuous | 35.7 ± 1.0 | 0.0012 |" in out
    # the highest target, and beside it the best target chosen after the fact, named
    assert "| hopper-mixed | 20.0 ± 1.0 | 30.0 ± 1.0 (1800) | 8.0 ± 1.0 | 25.0 ± 1.0 |" in out
    assert "| hopper-medium | – | – | – | – |" in out
    assert "| bc | – | 21.0 ± 1.0 |" in out
    assert "| hopper-mixed | 1800 / 3600 | 150 / 100 |" in out  # achieved return, by target
    assert "| 10x-no-dropout | 33.0 ± 1.0 | 0.0009 |" in out


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_halfcheetah_failure_measures_a_narrow_tube_of_states_as_narrow():
    """data_coverage: episodes that repeat one trajectory are one narrow tube (each episode's
    states lie on the others'); independent episodes are not."""
    from types import SimpleNamespace

    failure = _load_script("halfcheetah_failure")
    rng = np.random.default_rng(0)
    path = rng.normal(size=(50, 4)).cumsum(0)  # one trajectory of 50 steps, 4 state dims
    starts, ends = np.arange(0, 500, 50), np.arange(50, 550, 50)
    tube = SimpleNamespace(observations=np.concatenate([path + 1e-3 * rng.normal(size=path.shape) for _ in range(10)]),
                           episode_starts=starts, episode_ends=ends)
    spread = SimpleNamespace(observations=rng.normal(size=(500, 4)).cumsum(0), episode_starts=starts, episode_ends=ends)
    ratio, median, p99 = failure.data_coverage(tube)
    assert ratio.max() < 0.01 and median < 0.01 and p99 < 0.05
    ratio, median, p99 = failure.data_coverage(spread)
    assert ratio.mean() > 0.3 and median > 0.3
    d = failure.nearest_distance(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(d, [0.0, np.sqrt(9 + 9)])


def test_the_table_scripts_refuse_a_missing_or_foreign_csv_by_name(tmp_path, capsys):
    """read_results_csv (seqrl.experiments.report), which the scripts share: a missing file and a
    CSV without the report's columns are errors naming the file (and the columns)."""
    from seqrl.errors import ConfigError
    from seqrl.experiments.report import read_results_csv, score_cell

    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"foreign.csv is not a results.csv .*no column experiment"):
        read_results_csv(foreign)
    with pytest.raises(ConfigError, match="cannot read results CSV .*missing.csv"):
        read_results_csv(tmp_path / "missing.csv")
    for script, argv in (("agnostic_tables", [str(foreign), str(foreign)]), ("paper_tables", [str(foreign)]),
                         ("tt_tables", [str(tmp_path / "missing.csv"), str(foreign)])):
        with pytest.raises(SystemExit, match=f"{script}.py: "):
            _run_script(script, argv, capsys)
    assert score_cell(None) == "–"
    assert score_cell({"seeds": "1", "score_mean": "2.25", "score_std": "0"}) == "2.2 ± 0.0 (1 seed)"
    assert score_cell({"seeds": "3", "score_mean": "2", "score_std": "0.5"}) == "2.0 ± 0.5"


def test_halfcheetah_failure_teacher_forced_error_is_the_policys_squared_error_on_the_data_history():
    """teacher_forced_error: each step's error is the mean squared difference between the policy's
    action and the data's, with the data's own states, actions and rewards fed in as history."""
    from types import SimpleNamespace

    failure = _load_script("halfcheetah_failure")
    rng = np.random.default_rng(1)
    starts, ends = np.arange(0, 2500, 250), np.arange(250, 2750, 250)  # 10 episodes of 250 steps
    data = SimpleNamespace(observations=rng.normal(size=(2500, 3)), actions=rng.uniform(-1, 1, size=(2500, 2)),
                           rewards=rng.normal(size=2500), episode_starts=starts, episode_ends=ends)
    seen = []

    class Replay:  # acts with the data's next action plus an offset, and records what it was fed
        def __init__(self, offset):
            self.offset = offset

        def reset(self, n, seed):
            assert n == 8

        def act(self, rows, observations, timesteps):
            t = int(timesteps[0])
            np.testing.assert_array_equal(observations, data.observations[starts[:8] + t])
            return data.actions[starts[:8] + t] + self.offset

        def observe(self, rows, actions, rewards):
            seen.append(actions)

    class Family:
        def __init__(self, offset):
            self.offset = offset

        def make_policy(self, model, spec, config, target, device):
            assert target == 6000.0 and device == "cpu"
            return Replay(self.offset)

    run = SimpleNamespace(model=SimpleNamespace(eval=lambda: None), spec=None, config=None)
    errors = failure.teacher_forced_error(Family(0.0), run, data, 6000.0)
    assert errors.shape == (200,) and not errors.any()
    np.testing.assert_array_equal(seen[5], data.actions[starts[:8] + 5])  # the data's actions, not the policy's
    np.testing.assert_allclose(failure.teacher_forced_error(Family(0.5), run, data, 6000.0), 0.25)
    short = SimpleNamespace(**{**vars(data), "episode_ends": starts + 100})
    with pytest.raises(SystemExit, match="must last 200 steps"):
        failure.teacher_forced_error(Family(0.0), run, short, 6000.0)


@pytest.mark.slow
def test_halfcheetah_failure_prints_each_runs_evaluation_score_and_distances(tmp_path, minari_root, capsys):
    """The script end to end on a real HalfCheetah-v5 dataset and a trained (tiny) DT: its score is
    the run's own evaluation at its highest target, and every column is filled."""
    from seqrl.cli import main as seqrl_main
    from seqrl.evaluation.evaluate import evaluate_run
    from seqrl.train import train
    from tests.helpers.dt import tiny_config

    seqrl_main(["collect", "--env", "HalfCheetah-v5", "--policy", "random", "--name", "cheetah-rnd",
                "--transitions", "8000", "--n-envs", "8"])
    run = train(tiny_config(tmp_path, dataset="cheetah-rnd", model="continuous", steps=3, targets=(0.0, 10.0),
                            device="cpu"))
    capsys.readouterr()
    out = _run_script("halfcheetah_failure", [str(run.run_dir), "--episodes", "1"], capsys)
    rows = [line for line in out.splitlines() if line.startswith(f"| {run.run_dir} |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == 9 and "nan" not in cells[1:6] + cells[7:]
    report = evaluate_run(run.run_dir, episodes=1, targets=[10.0], seed=10000)
    assert float(cells[1]) == pytest.approx(round(report["results"][0]["score_mean"], 1), abs=0.051)
    assert cells[5].endswith("/1")  # flips counted over the one episode
    assert "8 episodes" in out
    assert json.loads(out.strip().splitlines()[-1])["episodes"] == 1


def test_agnostic_tables_put_a_rerun_of_the_halfcheetah_variants_beside_the_first_runs(tmp_path, capsys):
    today, agnostic, rerun = tmp_path / "paper.csv", tmp_path / "agnostic.csv", tmp_path / "rerun.csv"
    _csv(today, [dict(experiment="main", dataset="halfcheetah-medium", model="continuous", target=12000,
                      score_mean=35.7, final_loss_mean=0.0012)])
    spread = dict(experiment="halfcheetah-spread", dataset="halfcheetah-medium", model="continuous-spread")
    pooled = dict(experiment="dt-bc-halfcheetah", dataset="halfcheetah-medium", model="continuous", return_mean=4000.0)
    _csv(agnostic, [dict(**spread, options="wide", target=12000, score_mean=6.4, final_loss_mean=0.0023, seeds=1),
                    dict(**pooled, target=12000, score_mean=44.5, final_loss_mean=0.0012)])
    _csv(rerun, [dict(**spread, options="wide", target=12000, score_mean=9.0, final_loss_mean=0.0021),
                 dict(**spread, options="wide", target=6000, score_mean=50.0, final_loss_mean=0.0021),
                 dict(**pooled, target=12000, score_mean=31.0, final_loss_mean=0.0011),
                 dict(**pooled, target=2000, score_mean=60.0, final_loss_mean=0.0011)])
    out = _run_script("agnostic_tables", [str(agnostic), str(today), "--halfcheetah-rerun", str(rerun)], capsys)
    assert "| variant | rerun: score | rerun: final loss | first runs: score | first runs: final loss |" in out
    assert "| wide | 9.0 ± 1.0 | 0.0021 | 6.4 ± 1.0 (1 seed) | 0.0023 |" in out  # the highest target of each
    assert "| wide-3x | – | – | – | – |" in out
    assert "| pooled DT (`continuous`, dt-bc-halfcheetah) | 31.0 ± 1.0 | 0.0011 | 44.5 ± 1.0 | 0.0012 |" in out
    assert "| paper.yaml main, continuous | 35.7 ± 1.0 | 0.0012 | | |" in out
    # Without the option the table is the first runs' alone, as before.
    out = _run_script("agnostic_tables", [str(agnostic), str(today)], capsys)
    assert "| wide | 6.4 ± 1.0 (1 seed) | 0.0023 |" in out and "rerun" not in out


def _fake_run(root: Path, name: str, loss=0.5, score=10.0, evaluation=3.0, status="done", lr=1e-3,
              returns=(5.0,), steps=(1, 2)) -> Path:
    """A run directory as a sweep leaves it: sweep.json, metrics.jsonl (training records with a
    machine-dependent speed, an evaluation) and eval.json (with a path and a wall time)."""
    d = root / name
    d.mkdir(parents=True)
    lines = [{"step": s, "loss": 1.0 if s < steps[-1] else loss, "loss/action": 0.25, "lr": lr, "grad_norm": 1.5,
              "steps_per_sec": 7.0 + len(str(root))} for s in steps]  # speed is not a result
    lines.append({"step": steps[-1], "kind": "eval", "eval/target_1/score_mean": evaluation})
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = {"target": 1.0, "episodes": len(returns), "return_mean": sum(returns) / len(returns), "score_mean": score,
              "returns": list(returns)}
    (d / "eval.json").write_text(json.dumps({"run_dir": str(d), "wall_time_s": len(str(root)), "episodes": len(returns),
                                             "results": [result]}))
    (d / "sweep.json").write_text(json.dumps({"status": status, **({"error": "boom"} if status == "failed" else {})}))
    (d / "metadata.json").write_text(json.dumps({"git_revision": "abc", "python": "3.11", "versions": {"torch": "2"}}))
    return d


def test_repeat_at_commit_finds_every_difference_between_two_runs_and_none_between_equal_ones(tmp_path):
    """repeat_at_commit.differences: every metrics record (losses and loss terms, lr, grad norm,
    evaluations) and every eval.json field, exactly; speeds, paths and wall times are not results."""
    repeat = _load_script("repeat_at_commit")
    a, b = tmp_path / "a", tmp_path / "bb"  # different lengths: different speeds, paths and wall times

    assert repeat.differences(_fake_run(a, "same"), _fake_run(b, "same")) == []
    assert repeat.differences(_fake_run(a, "loss"), _fake_run(b, "loss", loss=0.5000001)) == [
        "step 2 loss: 0.5 against 0.5000001"]
    assert repeat.differences(_fake_run(a, "lr"), _fake_run(b, "lr", lr=2e-3)) == [
        "step 1 lr: 0.001 against 0.002", "step 2 lr: 0.001 against 0.002"]
    assert repeat.differences(_fake_run(a, "score"), _fake_run(b, "score", score=10.5)) == [
        "eval.json results[0].score_mean: 10.0 against 10.5"]
    assert repeat.differences(_fake_run(a, "evaluation"), _fake_run(b, "evaluation", evaluation=3.5)) == [
        "step 2 eval eval/target_1/score_mean: 3.0 against 3.5"]
    assert repeat.differences(_fake_run(a, "int"), _fake_run(b, "int", returns=(5,))) == [  # 5 and 5.0 are not the same JSON
        "eval.json results[0].returns: [5.0] against [5]"]
    assert repeat.differences(_fake_run(a, "steps"), _fake_run(b, "steps", steps=(1, 2, 3))) == [
        "metrics.jsonl records differ from record 3: ['step 2 eval'] against ['step 3', 'step 3 eval'] "
        "(3 against 4 records)",
        "step 2 loss: 0.5 against 1.0"]


def test_repeat_at_commit_compares_every_run_of_both_sides_and_reports_them(tmp_path):
    """compare: one verdict per run either side wrote (identical, differs, failed, missing);
    write_report: the verdicts as Markdown and JSON."""
    repeat = _load_script("repeat_at_commit")
    other, this = tmp_path / "other", tmp_path / "this"
    for side in (other, this):
        _fake_run(side, "dt/data/continuous/s0")
        _fake_run(side, "lm/corpus/lm/s0")
    _fake_run(other, "tt/data/tt/s0")
    _fake_run(this, "tt/data/tt/s0", loss=0.25)
    _fake_run(other, "bc/data/bc/s0")
    _fake_run(this, "bc/data/bc/s0", status="failed")
    _fake_run(this, "new/data/continuous/s0")

    rows = {r["run"]: r for r in repeat.compare(other, this)}
    assert {name: r["verdict"] for name, r in rows.items()} == {
        "dt/data/continuous/s0": "identical", "lm/corpus/lm/s0": "identical", "tt/data/tt/s0": "differs",
        "bc/data/bc/s0": "failed", "new/data/continuous/s0": "missing"}
    assert rows["dt/data/continuous/s0"]["differences"] == []
    assert (rows["dt/data/continuous/s0"]["logged_steps"], rows["dt/data/continuous/s0"]["evaluations"]) == (2, 1)
    assert rows["tt/data/tt/s0"]["differences"] == ["step 2 loss: 0.5 against 0.25"]
    assert rows["bc/data/bc/s0"]["differences"] == ["this: failed (boom)"]
    assert rows["new/data/continuous/s0"]["differences"] == ["run directory absent on the other side"]

    summary = {"command": "python experiments/repeat_at_commit.py X spec.yaml --all", "identical": False,
               "other": {"commit": "X", "revision": "1" * 40, "recorded": ["1" * 40], "exit": 0, "seconds": 1.0},
               "this": {"revision": "2" * 40, "recorded": ["2" * 40], "exit": 1, "seconds": 1.0},
               "spec": "spec.yaml", "spec_from_here": True, "patterns": [], "machine": repeat._machine(this, list(rows)),
               "runs": list(rows.values())}
    repeat.write_report(tmp_path / "report" / "check.md", summary)
    text = (tmp_path / "report" / "check.md").read_text()
    assert "**Not identical: 2 of 5 runs identical to the bit**" in text
    assert "| tt/data/tt/s0 | differs | 2 (2) | 1 | 1 | 0.25 |" in text
    assert "### tt/data/tt/s0\n- step 2 loss: 0.5 against 0.25" in text
    assert json.loads((tmp_path / "report" / "check.json").read_text())["runs"][0]["run"] == "bc/data/bc/s0"


def test_repeat_at_commit_refuses_an_output_that_already_holds_runs(tmp_path, capsys):
    """A sweep skips a finished run, so a reused --output would compare old results: refused by
    name before anything is checked out or trained; so is a call naming no run and no --all."""
    with pytest.raises(SystemExit, match="name RUN patterns or give --all"):
        _run_script("repeat_at_commit", ["HEAD", "experiments/paper.yaml", "--output", str(tmp_path)], capsys)
    (tmp_path / "this" / "main" / "x" / "s0").mkdir(parents=True)
    with pytest.raises(SystemExit, match=r"this holds runs; give an empty --output"):
        _run_script("repeat_at_commit", ["HEAD", "experiments/paper.yaml", "main/x/s0", "--output", str(tmp_path)],
                    capsys)
    assert not (tmp_path / "checkout").exists()


def test_identity_spec_covers_what_issue_26_names():
    """experiments/identity.yaml: a DT of each action representation, a TT, an LM-initialised DT
    with alignment and co-training (from an LM the sweep pretrains), each evaluated during training."""
    from seqrl.families.dt.config import VARIANTS
    from seqrl.experiments.spec import load_spec

    runs = load_spec(EXPERIMENTS / "identity.yaml").runs
    plain = {r.model for r in runs if r.experiment == "dt"}
    assert plain == set(VARIANTS)
    assert [r.model for r in runs if r.experiment == "tt"] == ["tt"]
    (lm_init,) = [r for r in runs if str(r.overrides.get("init", "")).startswith("lm:@")]
    assert lm_init.overrides["align_weight"] > 0 and lm_init.overrides["cotrain_weight"] > 0
    assert lm_init.after == ("pretrain/_usr_share_common-licenses/lm/s0",)
    for run in runs:
        if run.experiment in ("dt", "tt", "lm-init"):
            assert run.overrides["eval_every"] <= run.steps and run.eval_episodes >= 1 and run.steps <= 60


def test_tt_action_context_compares_greedy_actions_and_values_with_the_data_by_context_length(tmp_path):
    from seqrl.train import train

    from tests.helpers.dt import make_dataset
    from tests.helpers.tt import tiny_tt_config

    script = _load_script("tt_action_context")
    data = make_dataset(obs_dim=3, act_dim=2, episodes=8)
    run = train(tiny_tt_config(tmp_path, steps=20), dataset=data)
    half = data.num_transitions // 2
    rows = script.action_context_errors(str(run.run_dir), [0, 2], [("first", 0, half), ("second", half, data.num_transitions)],
                                        windows=30, dataset=data)
    assert [(r["slice"], r["context"]) for r in rows] == [("first", 0), ("first", 2), ("second", 0), ("second", 2)]
    for row in rows:
        assert 0 < row["windows"] <= 30
        assert len(row["action_mse_over_var"]) == 2 and all(np.isfinite(row["action_mse_over_var"]))
        assert -1.0 <= row["value_corr"] <= 1.0 and row["value_mae"] >= 0 and row["value_std"] > 0


def test_quantized_heuristic_lands_the_lander_through_fine_bins_and_not_through_one():
    from seqrl.collect.policies import LunarLanderHeuristic
    from seqrl.collect.rollout import collect

    script = _load_script("lunarlander_quantized_heuristic")
    data = collect("LunarLanderContinuous-v3", LunarLanderHeuristic(), 1000, n_envs=2, seed=0)
    data.metadata.update(env_id="LunarLanderContinuous-v3", ref_min_score=-243.5, ref_max_score=288.0)
    plain = script.heuristic_score("unused", None, "states", episodes=2, data=data)
    assert plain > 80  # the expert itself
    assert script.heuristic_score("unused", 100, "states", episodes=2, data=data) > 80
    # two bins per dimension: every state decodes to one of two means, and the controller is nearly blind
    assert script.heuristic_score("unused", 2, "states", episodes=2, data=data) < plain - 30


def test_tt_goal_use_swaps_the_goal_tokens_of_every_transition_and_nothing_else():
    spec = importlib.util.spec_from_file_location("tt_goal_use", EXPERIMENTS / "tt_goal_use.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import torch

    transition_dim, dims = 10, (4, 5)  # [x, y, vx, vy, gx, gy, a0, a1, r, V]
    tokens = torch.arange(3 * 2 * transition_dim).reshape(3, 2 * transition_dim)  # 3 windows of 2 transitions
    order = torch.tensor([2, 0, 1])
    swapped = module.swap_state_goal(tokens, order, dims, transition_dim)
    goal_positions = [4, 5, 14, 15]
    assert torch.equal(swapped[:, goal_positions], tokens[order][:, goal_positions])
    rest = [i for i in range(2 * transition_dim) if i not in goal_positions]
    assert torch.equal(swapped[:, rest], tokens[:, rest])
    assert not torch.equal(swapped, tokens) and torch.equal(tokens[0, :3], torch.tensor([0, 1, 2]))  # input untouched


def test_tt_state_range_finds_the_first_step_outside_the_data_box_and_the_share_of_dims_outside_at_the_end():
    spec = importlib.util.spec_from_file_location("tt_state_range", EXPERIMENTS / "tt_state_range.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    low, high = np.array([-1.0, -1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0, 1.0])
    inside = np.zeros((5, 4))
    drifting = np.zeros((6, 4))
    drifting[3:, 0] = 2.0  # leaves at step 3 on one dimension
    drifting[5, 1] = -3.0  # and ends with two of four outside
    exits = module.range_exits([inside, drifting], low, high)
    assert exits == {"left": 0.5, "first_step_median": 3.0, "last_state_outside": (0.0 + 0.5) / 2}
    assert module.range_exits([inside], low, high)["first_step_median"] is None
    assert module.parse_planner(["horizon=1", "action_cdf=0.4", "mode=likelihood"]) == \
        {"horizon": 1, "action_cdf": 0.4, "mode": "likelihood"}


def _c6_run(root: Path, experiment: str, arm: str, seed: int, curve: dict[int, float], final: float) -> None:
    run = root / experiment / "hopper-medium" / arm / f"s{seed}"
    run.mkdir(parents=True)
    records = []
    for step, score in curve.items():
        records.append({"step": step, "loss": 0.1, "val_loss": 0.2})
        records.append({"kind": "eval", "step": step, "eval/target_3600.0/score_mean": score})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = {"target": 3600.0, "episodes": 10, "score_mean": final}
    (run / "eval.json").write_text(json.dumps({"results": [{**result, "target": 1800.0, "score_mean": final - 5}, result]}))


def test_claims_tables_c6_compare_final_scores_curve_areas_and_where_each_arm_reaches_the_random_plateau(
        tmp_path, capsys, monkeypatch):
    """C6 (issue 30): an LM-initialised arm that reaches the random arm's level sooner has the same
    final score but a larger curve mean, and its mean curve enters the random arm's plateau band
    earlier; both effects come with bootstrap intervals, the plateau steps from the mean curves."""
    steps = [500 * i for i in range(1, 9)]
    for seed in range(3):
        jitter = 0.5 * seed
        # random init: rises linearly to 40 at step 2500, flat after
        _c6_run(tmp_path, "c6-random", "continuous", seed,
                {s: min(40.0, 16.0 * s / 1000) + jitter for s in steps}, 40.0 + jitter)
        # text init: at 40 from the first evaluation
        _c6_run(tmp_path, "c6-text", "continuous+plain", seed, {s: 40.0 + jitter for s in steps}, 40.0 + jitter)
        # align + co-train: flat at 20 (a failing arm)
        _c6_run(tmp_path, "c6-text", "continuous+align-cotrain", seed, {s: 20.0 + jitter for s in steps}, 20.0 + jitter)
    monkeypatch.syspath_prepend(str(EXPERIMENTS))  # claims_tables imports its sibling scripts
    out = _run_script("claims_tables", [str(tmp_path), "--out", str(tmp_path / "out")], capsys)
    rows = {line.split(" | ")[1]: line for line in out.splitlines() if line.startswith("| C6 |")}
    final = rows["hopper-medium: text-LM init − random init, final score (10,000 updates)"]
    assert "| +0.0 [" in final and final.endswith("| 3, 3 | not resolved |")
    area = rows["hopper-medium: text-LM init − random init, mean score over the learning curve"]
    expected = 40.0 - np.mean([min(40.0, 16.0 * s / 1000) for s in steps])
    assert f"| {expected:+.1f} [" in area and area.endswith("| B higher |")
    assert rows["hopper-medium: text-LM init + alignment + co-training − text-LM init, final score (10,000 updates)"
                ].endswith("| B lower |")
    # the random arm's plateau: its mean curve is within 5 of its last quarter's level (40.5) from 2500 on,
    # and the text arm is in that band from its first evaluation; the failing arm never
    table = {line.split(" | ")[1]: line for line in out.splitlines() if line.startswith("| hopper-medium | ")}
    assert table["random init"].endswith("| 3 | 4000 | 2500 | 40.5 | 2500 |")
    assert table["text-LM init"].endswith("| 3 | 4000 | 500 | 40.5 | 500 |")
    assert table["text-LM init + alignment + co-training"].endswith("| never |")
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["c6-random"]["hopper-medium"]["continuous"]["0"]["curve"]["500"] == 8.0
