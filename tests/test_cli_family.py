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
