"""Every numeric flag is checked up front with an error naming it; the warm-up warning;
`seqrl report` on a folder without runs fails and writes nothing."""

from __future__ import annotations

import dataclasses
import math

import pytest

from seqrl.families.dt.config import TrainConfig
from seqrl.errors import CheckpointError, ConfigError
from seqrl.validation import (
    flag,
    require_all_finite,
    require_finite,
    require_in_range,
    require_int,
    require_positive,
    warmup_warning,
)

NAN, INF = math.nan, math.inf
FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def test_validators_name_the_flag_and_the_range():
    assert flag("learning_rate") == "--learning-rate" and flag("--x") == "--x"
    with pytest.raises(ConfigError, match=r"^--learning-rate must be a finite number > 0, got nan$"):
        require_positive("learning_rate", NAN)
    with pytest.raises(ConfigError, match=r"^--weight-decay must be a finite number >= 0, got -1$"):
        require_positive("weight_decay", -1, allow_zero=True)
    with pytest.raises(ConfigError, match=r"^--dropout must be a finite number in \[0, 1\), got 1.0$"):
        require_in_range("dropout", 1.0, 0, 1, hi_open=True)
    with pytest.raises(ConfigError, match=r"^--discount must be a finite number in \(0, 1\], got 0.0$"):
        require_in_range("discount", 0.0, 0, 1, lo_open=True)
    with pytest.raises(ConfigError, match="--x must be a finite number, got inf"):
        require_finite("x", INF)
    with pytest.raises(ConfigError, match="--x must be a finite number, got '0.1'"):
        require_finite("x", "0.1")
    with pytest.raises(ConfigError, match="--x must be a finite number, got True"):
        require_finite("x", True)
    with pytest.raises(ConfigError, match="--steps must be >= 1, got 0"):
        require_int("steps", 0, 1)
    with pytest.raises(ConfigError, match="--steps must be an integer, got 2.5"):
        require_int("steps", 2.5, 1)
    with pytest.raises(ConfigError, match="every value of --targets must be a finite number, got nan"):
        require_all_finite("targets", (100.0, NAN))
    assert require_in_range("x", 1, 0, 1) == 1.0 and require_positive("x", 0, allow_zero=True) == 0.0
    require_all_finite("targets", None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("learning_rate", NAN, "--learning-rate must be a finite number > 0, got nan"),
        ("learning_rate", INF, "--learning-rate must be a finite number > 0, got inf"),
        ("learning_rate", 0.0, "--learning-rate must be a finite number > 0"),
        ("weight_decay", NAN, "--weight-decay must be a finite number >= 0"),
        ("weight_decay", -0.1, "--weight-decay must be a finite number >= 0"),
        ("dropout", NAN, r"--dropout must be a finite number in \[0, 1\)"),
        ("dropout", 1.0, r"--dropout must be a finite number in \[0, 1\)"),
        ("dropout", -0.1, r"--dropout must be a finite number in \[0, 1\)"),
        ("grad_clip", NAN, "--grad-clip must be a finite number >= 0"),
        ("grad_clip", -1.0, "--grad-clip must be a finite number >= 0"),
        ("grad_clip", INF, "--grad-clip must be a finite number >= 0"),
        ("betas", (0.9, NAN), r"--betas must be two finite numbers in \[0, 1\)"),
        ("betas", (1.0, 0.999), r"--betas must be two finite numbers in \[0, 1\)"),
        ("betas", (-0.1, 0.999), r"--betas must be two finite numbers in \[0, 1\)"),
        ("discount", NAN, r"--discount must be a finite number in \(0, 1\]"),
        ("discount", 1.5, r"--discount must be a finite number in \(0, 1\]"),
        ("discount", 0.0, r"--discount must be a finite number in \(0, 1\]"),
        ("temperature", NAN, "--temperature must be a finite number > 0"),
        ("temperature", 0.0, "--temperature must be a finite number > 0"),
        ("temperature", INF, "--temperature must be a finite number > 0"),
        ("rtg_scale", NAN, "--rtg-scale must be a finite number > 0"),
        ("rtg_scale", 0.0, "--rtg-scale must be a finite number > 0"),
        ("rtg_scale", -0.001, "--rtg-scale must be a finite number > 0"),
        ("targets", (3600.0, NAN), "every value of --targets must be a finite number"),
        ("targets", (INF,), "every value of --targets must be a finite number"),
        ("min_lr_ratio", NAN, r"--min-lr-ratio must be a finite number in \[0, 1\]"),
        ("min_lr_ratio", 1.5, r"--min-lr-ratio must be a finite number in \[0, 1\]"),
        ("steps", 0, "--steps must be >= 1"),
        ("batch_size", 0, "--batch-size must be >= 1"),
        ("warmup_steps", -1, "--warmup-steps must be >= 0"),
        ("num_bins", 1, "--num-bins must be >= 2"),
        ("embed_dim", 0, "--embed-dim must be >= 1"),
        ("n_layers", 0, "--n-layers must be >= 1"),
        ("n_heads", 0, "--n-heads must be >= 1"),
        ("context_len", 0, "--context-len must be >= 1"),
        ("eval_every", -1, "--eval-every must be >= 0"),
        ("eval_episodes", 0, "--eval-episodes must be >= 1"),
        ("log_every", 0, "--log-every must be >= 1"),
        ("checkpoint_every", 0, "--checkpoint-every must be >= 1"),
        ("seed", -1, "--seed must be >= 0"),
        ("eval_seed", -1, "--eval-seed must be >= 0"),
    ],
)
def test_every_bad_numeric_flag_of_train_config_is_refused_by_name(field, value, message):
    if field not in FIELDS:
        pytest.skip(f"TrainConfig has no field {field}")
    with pytest.raises(ConfigError, match=message):
        TrainConfig(dataset="x", **{field: value})


def test_good_edge_values_are_accepted():
    edges = dict(dropout=0.0, grad_clip=0.0, weight_decay=0.0, discount=1.0, betas=(0.0, 0.0), warmup_steps=0,
                 eval_every=0, min_lr_ratio=0.0, targets=(-100.0, 0.0), rtg_scale=None, seed=0)
    TrainConfig(dataset="x", **{k: v for k, v in edges.items() if k in FIELDS})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--learning-rate", "nan"], "--learning-rate must be a finite number > 0, got nan"),
        (["--weight-decay", "inf"], "--weight-decay must be a finite number >= 0, got inf"),
        (["--betas", "0.9", "1.0"], "--betas must be two finite numbers in [0, 1), got (0.9, 1.0)"),
        (["--discount", "nan"], "--discount must be a finite number in (0, 1], got nan"),
        (["--targets", "3600", "nan"], "every value of --targets must be a finite number, got nan"),
    ],
)
def test_seqrl_train_with_a_bad_flag_exits_2_with_the_flag_named(args, message, capsys):
    """Before any dataset is read (the dataset named here does not exist)."""
    from seqrl.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "no-such-dataset", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"seqrl: error: {message}" in err and "Traceback" not in err


def test_warmup_warning_only_when_the_warmup_is_longer_than_the_run():
    assert warmup_warning(2000, 2000) is None
    assert warmup_warning(2000, 100) is None
    text = warmup_warning(2000, 10_000)
    assert text is not None
    assert "--warmup-steps 10000 is longer than the run (--steps 2000)" in text
    assert "only reaches 20% of --learning-rate" in text and "--warmup-steps 200" in text


def test_seqrl_report_on_a_folder_without_runs_exits_2_and_writes_nothing(tmp_path, capsys):
    from seqrl.cli import main
    from seqrl.experiments.report import write_report

    empty = tmp_path / "nothing-here"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a run")
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(empty)])
    assert exit_info.value.code == 2
    assert "no run directories under" in capsys.readouterr().err
    assert sorted(p.name for p in empty.iterdir()) == ["notes.txt"]  # no report/ folder
    with pytest.raises(CheckpointError, match="nothing written"):
        write_report(empty, tmp_path / "elsewhere", require_runs=True)
    assert not (tmp_path / "elsewhere").exists()


def test_seqrl_report_on_only_unfinished_runs_exits_2_and_says_why(tmp_path, capsys):
    from seqrl.cli import main
    from tests.helpers.runs import fake_run

    fake_run(tmp_path, "main", "hopper", "tokenized", 0, None, status="running")
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path), "--no-plots"])
    assert exit_info.value.code == 2
    assert "1 unfinished run(s) left out (--include-unfinished" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("family", "args", "message"),
    [
        ("tt", ["--lora-rank", "-1"], "--lora-rank must be >= 0, got -1"),
        ("tt", ["--lora-alpha", "nan"], "--lora-alpha must be a finite number > 0, got nan"),
        ("dt", ["--lora-alpha", "nan"], "--lora-alpha must be a finite number > 0, got nan"),
        ("tt", ["--trunk-learning-rate", "nan"], "--trunk-learning-rate must be a finite number > 0, got nan"),
        ("tt", ["--lora-rank", "2", "--freeze-trunk"], "choose one"),
        ("tt", ["--termination-penalty", "nan"], "--termination-penalty must be a finite reward"),
    ],
)
def test_lm_init_flags_are_checked_for_every_family_before_anything_is_written(family, args, message, tmp_path,
                                                                               capsys):
    """The LM-init checks live on the config class the DT and the TT share."""
    from seqrl.cli import main

    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--family", family, "--dataset", "no-such-dataset", "--run-dir", str(run_dir), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not run_dir.exists()


def test_a_loss_that_becomes_nan_is_a_seqrl_error_naming_the_steps_and_keeping_the_last_checkpoint(tmp_path):
    import torch

    from seqrl.checkpoint import load_checkpoint
    from seqrl.errors import TrainingError
    from seqrl.train import train

    from tests.helpers.dt import make_dataset, tiny_config

    calls = {"n": 0}

    def poison(model):
        honest = model.loss_terms

        def loss_terms(batch):
            calls["n"] += 1
            loss, terms = honest(batch)
            return (loss * math.nan if calls["n"] >= 3 else loss), terms  # from step 3 on

        model.loss_terms = loss_terms

    cfg = tiny_config(tmp_path, steps=10, log_every=2, checkpoint_every=2)
    with pytest.raises(TrainingError, match=r"loss became nan between steps 3 and 4; the checkpoint of step 2 is "
                                            r"intact \(--resume continues from it\)\. Likely causes: a learning rate"):
        train(cfg, dataset=make_dataset(), prepare_model=poison)
    payload = load_checkpoint(tmp_path / "run")
    assert payload["step"] == 2
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "RUN", "--seed", "-1"], "--seed must be >= 0, got -1"),
        (["eval", "RUN", "--targets", "nan"], "every value of --targets must be a finite number, got nan"),
        (["eval", "RUN", "--targets", "3600", "inf"], "every value of --targets must be a finite number, got inf"),
        (["eval", "RUN", "--episodes", "0"], "--episodes must be >= 1, got 0"),
        (["collect", "lunarlander-medium", "--seed", "-1"], "--seed must be >= 0, got -1"),
        (["collect", "--env", "LunarLanderContinuous-v3", "--policy", "random", "--env-kwargs", "foo=1"],
         "--env-kwargs foo=1 do not fit LunarLanderContinuous-v3"),
    ],
)
def test_eval_and_collect_refuse_bad_numbers_and_env_arguments_before_any_work(argv, message, tmp_path, monkeypatch,
                                                                               capsys):
    from seqrl.cli import main

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "eval.json").write_text('{"kept": true}')
    argv = [str(run_dir) if a == "RUN" else a for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert (run_dir / "eval.json").read_text() == '{"kept": true}'
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").rglob("*.hdf5"))


def test_resume_with_fewer_steps_than_the_checkpoint_is_refused_and_config_kept(tmp_path):
    import json

    from seqrl.train import train

    from tests.helpers.dt import make_dataset, tiny_config

    data = make_dataset()
    train(tiny_config(tmp_path, steps=6, checkpoint_every=2), dataset=data)
    config = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(ConfigError, match=r"is at step 6, past --steps 4: a resumed run can only go on; give --steps 6"):
        train(tiny_config(tmp_path, steps=4, checkpoint_every=2, resume=True), dataset=data)
    assert (tmp_path / "run" / "config.json").read_text() == config
    assert json.loads(config)["steps"] == 6


def test_a_dynamics_run_refuses_eval_every_before_anything_is_written(tmp_path, capsys):
    from seqrl.cli import main

    run_dir = tmp_path / "dyn"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--family", "dynamics", "--dataset", "no-such-dataset", "--eval-every", "2",
              "--run-dir", str(run_dir)])
    assert exit_info.value.code == 2
    assert "a dynamics model does not act" in capsys.readouterr().err and not run_dir.exists()
