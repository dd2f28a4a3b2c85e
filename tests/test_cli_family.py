"""`seqrl train --family F` and `seqrl pretrain-lm` parse with the family's own config and name
themselves in their help."""

from __future__ import annotations

import pytest

from seqrl.cli import main


@pytest.mark.parametrize("argv, prog, flag", [
    (["train", "--family", "tt", "--help"], "seqrl train", "--sequence-length"),
    (["train", "--family", "dynamics", "--help"], "seqrl train", "--ensemble-size"),
    (["pretrain-lm", "--help"], "seqrl pretrain-lm", "--dataset"),
])
def test_family_help_names_the_command_and_lists_the_familys_flags(argv, prog, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog} ") and flag in out


def test_tt_size_preset_fills_flags_and_the_users_own_flags_win(monkeypatch):
    import seqrl.train_command
    from seqrl.families.tt.config import SIZE_PRESETS, TTConfig

    seen = []
    monkeypatch.setattr(seqrl.train_command, "train_command", lambda cfg, threads=None: seen.append(cfg))
    main(["train", "--family", "tt", "--dataset", "lunarlander-medium-expert", "--preset", "cpu", "--steps", "10"])
    cfg = seen[-1]
    assert cfg.embed_dim == SIZE_PRESETS["cpu"]["embed_dim"] and cfg.n_layers == SIZE_PRESETS["cpu"]["n_layers"]
    assert cfg.steps == 10  # given after the preset: the user's value
    assert cfg == TTConfig.from_preset("cpu", dataset="lunarlander-medium-expert", steps=10)
    main(["train", "--family", "tt", "--dataset", "hopper-medium", "--preset=authors"])
    assert seen[-1] == TTConfig(dataset="hopper-medium")


@pytest.mark.parametrize("argv, message", [
    (["train", "--family", "tt", "--dataset", "x", "--preset", "huge"], "unknown --preset 'huge'; choose one of authors, cpu"),
    (["train", "--family", "bc", "--dataset", "x", "--preset", "cpu"], "family bc has none"),
    (["train", "--family", "tt", "--dataset", "x", "--preset", "cpu", "--preset", "authors"], "give it once"),
])
def test_bad_presets_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_top_level_help_lists_pretrain_lm_and_eval_help_has_one_cache_flag(capsys, tmp_path):
    from seqrl.families.tt.planner import PlannerFlags

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "pretrain-lm" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    assert "--horizon" not in out and "TT_RUN_DIR --help" in out  # the generic command has no planner flags
    # A TT run's `seqrl eval` takes the TT's planner flags (its family's eval_flags), read off its config.json.
    (tmp_path / "tt-run").mkdir()
    (tmp_path / "tt-run" / "config.json").write_text('{"family": "tt", "dataset": "x"}')
    with pytest.raises(SystemExit):
        main(["eval", str(tmp_path / "tt-run"), "--help"])
    out = capsys.readouterr().out
    assert "--horizon" in out and "--beam-width" in out
    assert "--no-cache" in out and "--no-no-cache" not in out
    assert PlannerFlags(cache=False).overrides()["use_cache"] is False
    assert "use_cache" not in PlannerFlags().overrides()


def test_top_level_help_imports_nothing_heavy_and_every_command_resolves():
    import subprocess
    import sys

    from seqrl.cli import COMMANDS, command_function

    code = ("import sys\nfrom seqrl.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
            "    assert e.code == 0\nheavy = [m for m in ('torch', 'numpy', 'tyro', 'gymnasium') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    for name in COMMANDS:
        assert name in out
        assert (command_function(name).__doc__ or "").strip()  # what `seqrl NAME --help` describes


@pytest.mark.parametrize("argv", [["train", "--help"], ["eval", "--help"], ["sweep", "--help"], ["collect", "--help"]])
def test_a_commands_help_imports_no_torch(argv):
    """Parsing flags needs the config classes only: torch loads when a run starts (seconds saved)."""
    import subprocess
    import sys

    code = (f"import sys\nfrom seqrl.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n"
            "    assert e.code == 0\nprint('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "TORCH False" in out and "usage:" in out


def test_an_unknown_command_is_named_with_the_list(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["trian", "--dataset", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown command 'trian'" in err and "train" in err and "sweep" in err
