"""`seqrl report`: grouping, mean ± std over seeds from known eval.json files, CSV/Markdown, PNGs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from seqrl.cli import main
from seqrl.families.dt.config import TrainConfig
from seqrl.experiments.report import collect, summary_rows, write_report
from seqrl.experiments.spec import Finetune, RunSpec
from seqrl.runs import write_json_atomic
from tests.helpers.runs import fake_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_mean_and_std_over_seeds_per_group_and_target(tmp_path):
    for seed, (high, low) in enumerate([(10.0, 1.0), (20.0, 2.0), (60.0, 6.0)]):
        fake_run(tmp_path, "main", "hopper", "tokenized", seed, {100.0: high, 50.0: low},
                 losses=[1.0, 0.5, 0.01 * (seed + 1)], evals=[(4, 99.0)])  # the last *training* loss counts
    fake_run(tmp_path, "main", "hopper", "continuous", 0, {100.0: 42.0, 50.0: 7.0})
    fake_run(tmp_path, "main", "hopper", "continuous", 1, None)  # not evaluated: left out of the mean

    rows = summary_rows(collect(tmp_path))
    by = {(r["model"], r["target"]): r for r in rows}
    high = by[("tokenized", 100.0)]
    assert high["seeds"] == 3 and high["score_mean"] == pytest.approx(30.0)
    assert high["score_std"] == pytest.approx(np.std([10.0, 20.0, 60.0]))  # 21.60..., population std
    assert by[("tokenized", 50.0)]["score_mean"] == pytest.approx(3.0)
    assert by[("tokenized", 100.0)]["return_mean"] == pytest.approx(300.0)
    assert by[("continuous", 100.0)]["seeds"] == 1 and by[("continuous", 100.0)]["score_std"] == 0.0

    report = write_report(tmp_path, tmp_path / "report", plots=False)
    table = list(csv.DictReader(io.StringIO((tmp_path / "report/results.csv").read_text())))
    row = next(r for r in table if r["model"] == "tokenized" and r["target"] == "100.0")
    assert float(row["score_mean"]) == pytest.approx(30.0) and float(row["score_std"]) == pytest.approx(21.6024, abs=1e-4)
    markdown = (tmp_path / "report/results.md").read_text()
    assert "| hopper | tokenized | – | 100 | 3 | 30.0 ± 21.6 | 300.0 ± 216.0 | 0.02 ± 0.0082 |" in markdown
    assert high["seconds_mean"] == 60.0
    assert high["final_loss_mean"] == pytest.approx(0.02) and high["final_loss_std"] == pytest.approx(np.std([.01, .02, .03]))
    assert markdown == report["markdown"]


def test_groups_split_by_options_and_hand_trained_runs_are_labelled_from_their_config(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path, "bins", "hopper", "tokenized", seed, {1.0: 10.0 + seed}, label="num_bins=100",
                 options={"num_bins": 100})
        fake_run(tmp_path, "bins", "hopper", "tokenized", seed, {1.0: 20.0 + seed}, label="num_bins=300",
                 options={"num_bins": 300})
    fake_run(tmp_path / "manual", "", "walker2d-medium", "tokenized", 0, {1.0: 5.0}, options={"num_bins": 64},
             sweep=False)
    groups = {(g.experiment, g.label): g for g in collect(tmp_path)}
    # The hand-trained run's options: what differs from a default config (steps=10 too).
    assert set(groups) == {("bins", "num_bins=100"), ("bins", "num_bins=300"), ("", "num_bins=64,steps=10")}
    assert [r.seed for r in groups[("bins", "num_bins=300")].runs] == [0, 1]
    assert groups[("bins", "num_bins=300")].scores(1.0).mean() == pytest.approx(20.5)


def sweep_like_results(root: Path) -> None:
    """Enough runs for every plot: curves, bins, quantile/uniform, transfer."""
    rng = np.random.default_rng(0)
    for seed in range(2):
        for model in ("continuous", "tokenized"):
            fake_run(root, "main", "hopper", model, seed, {100.0: rng.uniform(0, 100)},
                     losses=list(rng.uniform(0.1, 1, 4)), evals=[(4, 10.0), (8, 20.0 + seed)])
            fake_run(root, "main", "walker", model, seed, {100.0: rng.uniform(0, 100)})
            for mode in ("embeddings", "all"):
                fake_run(root, "transfer", "walker", model, seed, {100.0: rng.uniform(0, 100)}, label=f"ft-{mode}",
                         finetune=Finetune(f"main/hopper/{model}/s{seed}", mode))
        for bins in (100, 300):
            for binning in ("quantile", "uniform"):
                fake_run(root, "bins", "hopper", "tokenized", seed, {100.0: rng.uniform(0, 100), 50.0: rng.uniform(0, 50)},
                         label=f"num_bins={bins},binning={binning}", options={"num_bins": bins, "binning": binning})


def test_plots_are_written_as_png(tmp_path):
    sweep_like_results(tmp_path)
    report = write_report(tmp_path)
    names = {p.name for p in report["files"]}
    expected = {"curves-main-hopper.png", "curves-main-walker.png", "curves-bins-hopper.png", "curves-transfer-walker.png",
                "bins-bins-hopper.png", "binning-bins-hopper.png", "transfer-transfer-walker.png"}
    assert expected <= names, report["notes"]
    for name in expected:
        assert (tmp_path / "report" / name).read_bytes()[:8] == PNG_MAGIC
    assert report["notes"] == []


def test_missing_groups_skip_their_plot_with_a_note(tmp_path):
    fake_run(tmp_path, "main", "hopper", "continuous", 0, {100.0: 50.0})
    # Fine-tuning runs that never got evaluated: the transfer plot has nothing to show.
    fake_run(tmp_path, "transfer", "walker", "continuous", 0, None, label="ft-all",
             finetune=Finetune("main/hopper/continuous/s0", "all"))
    report = write_report(tmp_path)
    assert (tmp_path / "report/curves-main-hopper.png").exists()
    assert not (tmp_path / "report/transfer-transfer-walker.png").exists()
    notes = "\n".join(report["notes"])
    assert "transfer-transfer-walker.png skipped: the fine-tuning runs have no eval.json" in notes
    assert "no bins plot: no tokenized runs that differ only in their number of bins" in notes
    assert "no binning plot" in notes


def test_report_and_sweep_commands(tmp_path, capsys):
    sweep_like_results(tmp_path / "runs")
    main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--no-plots"])
    printed = capsys.readouterr().out
    assert "## bins" in printed and "| hopper | tokenized | num_bins=100,binning=quantile |" in printed
    assert (tmp_path / "out/results.csv").exists() and not list((tmp_path / "out").glob("*.png"))

    spec = tmp_path / "s.yaml"
    spec.write_text("experiments:\n  e: {datasets: [a], models: [continuous, tokenized], seeds: 2}\n")
    main(["sweep", str(spec), "--output", str(tmp_path / "sweep"), "--dry-run"])
    printed = capsys.readouterr().out
    assert "4 runs" in printed and "e/a/tokenized/s1" in printed and "new" in printed
    assert not (tmp_path / "sweep").exists()  # a dry run writes nothing


def test_a_groups_finetune_sources_are_named_seed_wise(tmp_path):
    for seed in (0, 1, 2):
        fake_run(tmp_path, "transfer", "walker", "tokenized", seed, {100.0: 10.0 + seed}, label="ft-all",
                 finetune=Finetune(f"main/hopper/tokenized/s{seed}", "all"))
    fake_run(tmp_path, "odd", "walker", "tokenized", 0, {100.0: 1.0}, label="ft-all",
             finetune=Finetune("main/hopper/tokenized/s0", "all"))
    fake_run(tmp_path, "odd", "walker", "tokenized", 1, {100.0: 2.0}, label="ft-all",
             finetune=Finetune("main/cheetah/tokenized/s1", "all"))
    rows = {r["experiment"]: r for r in summary_rows(collect(tmp_path))}
    assert rows["transfer"]["finetune_from"] == "main/hopper/tokenized/s{seed}"
    assert rows["transfer"]["seeds"] == 3
    assert rows["odd"]["finetune_from"] == "main/cheetah/tokenized/s1, main/hopper/tokenized/s0"


def test_unfinished_sweep_runs_are_left_out_with_a_note_unless_asked_for(tmp_path):
    for seed in range(2):
        fake_run(tmp_path, "main", "hopper", "tokenized", seed, {100.0: 10.0 * (seed + 1)})
    # Killed mid-training (stale eval.json from an earlier, shorter budget) and a failed run: their
    # scores and short loss curves must not pass for results.
    fake_run(tmp_path, "main", "hopper", "tokenized", 2, {100.0: 90.0}, status="running", losses=[1.0])
    fake_run(tmp_path, "main", "hopper", "continuous", 0, {100.0: 5.0}, status="failed")

    report = write_report(tmp_path, tmp_path / "report")
    (row,) = report["rows"]
    assert (row["model"], row["seeds"], row["score_mean"]) == ("tokenized", 2, pytest.approx(15.0))
    (note,) = [n for n in report["notes"] if "unfinished" in n]
    assert "left out 2 unfinished" in note
    assert "main/hopper/tokenized/s2 (running)" in note and "main/hopper/continuous/s0 (failed)" in note
    assert "continuous" not in report["markdown"]

    everything = write_report(tmp_path, tmp_path / "all", include_unfinished=True)
    by_model = {r["model"]: r for r in everything["rows"]}
    assert by_model["tokenized"]["seeds"] == 3 and by_model["tokenized"]["score_mean"] == pytest.approx(40.0)
    assert by_model["continuous"]["score_mean"] == pytest.approx(5.0)
    assert not [n for n in everything["notes"] if "unfinished" in n]


def test_a_report_of_only_unfinished_runs_says_so(tmp_path):
    fake_run(tmp_path, "main", "hopper", "tokenized", 0, None, status="running")
    report = write_report(tmp_path, tmp_path / "report")
    assert report["rows"] == []
    assert any(n.startswith("no finished run directories") for n in report["notes"])
    assert not list((tmp_path / "report").glob("*.png"))


def test_binning_bars_are_ordered_by_number_of_bins_not_its_text():
    from seqrl.experiments.plots import binning_bar_order

    keys = [("tokenized", n, "regression", True, False) for n in (3000, 100, 1000, 300)]
    keys.append(("continuous", 3000, "regression", True, False))
    assert [k[:2] for k in sorted(keys, key=binning_bar_order)] == [
        ("continuous", 3000), ("tokenized", 100), ("tokenized", 300), ("tokenized", 1000), ("tokenized", 3000)]


def test_curve_legends_read_numbers_as_numbers():
    from seqrl.experiments.plots import natural_order

    names = ["tokenized+num_bins=3000", "tokenized+num_bins=300", "tokenized+num_bins=1000", "continuous",
             "tokenized+num_bins=100"]
    assert sorted(names, key=natural_order) == ["continuous", "tokenized+num_bins=100", "tokenized+num_bins=300",
                                                "tokenized+num_bins=1000", "tokenized+num_bins=3000"]


def test_final_loss_of_a_run_with_the_lm_objectives_is_its_action_loss(tmp_path):
    fake_run(tmp_path, "main", "hopper", "continuous", 0, {100.0: 1.0}, losses=[0.3])
    aligned = fake_run(tmp_path, "main", "hopper", "continuous", 0, {100.0: 1.0}, label="align", losses=[0.3])
    # the loop logs the weighted total (0.2 - 0.1 * 0.9 here) and each term unweighted
    record = {"step": 10, "loss": 0.2 - 0.09, "loss/action": 0.2, "loss/align": -0.9, "lr": 1e-4}
    (aligned / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    rows = summary_rows(collect(tmp_path))
    assert len(rows) == 2  # two groups: the plain run and the aligned one
    assert sorted(r["final_loss_mean"] for r in rows) == [pytest.approx(0.2), pytest.approx(0.3)]


def test_report_notes_a_corrupt_eval_a_duplicated_seed_and_a_killed_hand_trained_run(tmp_path, capsys):
    """Nothing is dropped or merged silently: a corrupt eval.json is named, two copies of one
    seed's run count once, and a hand-trained run killed before its last step is left out."""
    import shutil

    for seed in (0, 1):
        fake_run(tmp_path, "main", "hopper", "tokenized", seed, {100.0: 10.0 * (seed + 1)})
    shutil.copytree(tmp_path / "main/hopper/tokenized/s1", tmp_path / "copy/main/hopper/tokenized/s1")
    broken = fake_run(tmp_path, "main", "hopper", "continuous", 0, {100.0: 5.0})
    (broken / "eval.json").write_text('{"results": [')  # killed mid-write by something that was not seqrl
    fake_run(tmp_path / "manual", "", "walker2d-medium", "tokenized", 0, {1.0: 5.0}, sweep=False)
    killed = fake_run(tmp_path / "manual", "", "walker2d-medium", "tokenized", 1, None, sweep=False,
                      losses=[1.0, 0.9])
    (killed / "metrics.jsonl").write_text(json.dumps({"step": 2, "loss": 1.0}) + "\n")  # stopped at step 2 of 10

    left_out = []
    groups = {(g.dataset, g.model): g for g in collect(tmp_path, left_out=left_out)}
    out = capsys.readouterr().out
    tokenized = groups[("hopper", "tokenized")]
    assert [r.seed for r in tokenized.runs] == [0, 1] and tokenized.scores(100.0).tolist() == [10.0, 20.0]
    assert "seed 1 of" in out and "has 2 runs" in out and "leaving out" in out
    assert ("hopper", "continuous") not in groups
    assert [r.seed for r in groups[("walker2d-medium", "tokenized")].runs] == [0]
    statuses = {str(r.run_dir.relative_to(tmp_path)): r.status for r in left_out}
    assert statuses[str(broken.relative_to(tmp_path))].startswith("its eval.json is corrupt")
    assert statuses[str(killed.relative_to(tmp_path))] == "stopped at step 2 of 10"
    report = write_report(tmp_path, tmp_path / "report", plots=False)
    assert any("eval.json is corrupt" in note and "stopped at step 2 of 10" in note for note in report["notes"])


def test_a_seqrl_dataset_is_one_name_in_a_report_whether_typed_by_name_or_by_minari_id(tmp_path):
    """`hopper-medium` and `seqrl/hopper-medium-v0` are one dataset: one group, one name in the table."""
    fake_run(tmp_path, "", "seqrl/lunarlander-medium-v0", "continuous", 0, {100.0: 40.0}, sweep=False)
    fake_run(tmp_path, "", "lunarlander-medium", "continuous", 1, {100.0: 60.0}, sweep=False)
    fake_run(tmp_path, "main", "lunarlander-medium", "tokenized", 0, {100.0: 50.0})
    groups = collect(tmp_path)
    assert sorted((g.experiment, g.dataset, g.model, len(g.runs)) for g in groups) == [
        ("", "lunarlander-medium", "continuous", 2), ("main", "lunarlander-medium", "tokenized", 1)]
    rows = summary_rows(groups)
    assert {r["dataset"] for r in rows} == {"lunarlander-medium"}
    hand = next(r for r in rows if r["model"] == "continuous")
    assert hand["seeds"] == 2 and hand["score_mean"] == pytest.approx(50.0)
    from seqrl.data.minari_io import dataset_display_name

    for other in ("mujoco/hopper/medium-v0", "d4rl:hopper-medium-v2", "seqrl/hopper-medium-v1", "/data/x.hdf5"):
        assert dataset_display_name(other) == other  # not a seqrl name's id: shown as typed
