"""Issue 28, done-when 1, through the command line: `seqrl collect --env Acrobot-v1 --policy
dqn:0.1`, then `seqrl train` (tokenized and continuous DT, TT, BC) and `seqrl eval` on it.
Needs the trained-agent zoo ($SEQRL_ZOO, else ../shared/zoo beside the checkout)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seqrl.cli import main

DATASET = "seqrl/acrobot-dqn_eps0p1-v0"  # the name `seqrl collect` gives these sources
SMALL = ["--steps", "20", "--warmup-steps", "2", "--batch-size", "8", "--embed-dim", "16", "--n-layers", "1",
         "--log-every", "10", "--checkpoint-every", "20", "--no-progress", "--device", "cpu"]


def zoo() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "zoo"
    path = Path(os.environ.get("SEQRL_ZOO", default))
    if not path.is_dir():
        pytest.skip(f"no trained-agent zoo at {path} (set SEQRL_ZOO)")
    return path


@pytest.mark.slow
def test_collect_train_and_eval_discrete_acrobot_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    main(["collect", "--env", "Acrobot-v1", "--policy", "dqn:0.1", "--zoo", str(zoo()), "--transitions", "1500",
          "--n-envs", "2"])
    runs = {
        "tokenized": ["--model", "tokenized", "--context-len", "4"],
        "continuous": ["--model", "continuous", "--context-len", "4"],
        "tt": ["--family", "tt", "--num-bins", "8", "--sequence-length", "4"],
        "bc": ["--family", "bc"],
    }
    for name, flags in runs.items():
        small = [f for f in SMALL if name != "bc" or f not in ("--embed-dim", "16", "--n-layers", "1")]
        main(["train", *flags, "--dataset", DATASET, *small, "--run-dir", name])
        spec = json.loads((tmp_path / name / "metadata.json").read_text())["spec"]
        assert spec["num_actions"] == 3 and spec["act_dim"] == 1
        planner = ["--horizon", "2", "--beam-width", "2", "--context-transitions", "2"] if name == "tt" else []
        main(["eval", name, "--episodes", "2", "--no-progress", *planner])
        report = json.loads((tmp_path / name / "eval.json").read_text())
        for result in report["results"]:
            # Acrobot pays -1 a step until the swing-up, for at most 500 steps.
            assert result["episodes"] == 2 and all(-500 <= r <= 0 for r in result["returns"])
            assert result["lengths"] == [-r + (r > -500) for r in result["returns"]]
    assert json.loads((tmp_path / "tokenized" / "config.json").read_text())["head"] == "categorical"
    # A flag that has no meaning for one action token is refused by name.
    with pytest.raises(SystemExit):
        main(["train", "--dataset", DATASET, "--model", "tokenized", "--num-bins", "64", *SMALL, "--run-dir", "bad"])
    assert "--num-bins 64" in capsys.readouterr().err
