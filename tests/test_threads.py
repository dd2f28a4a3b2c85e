"""`--threads`: every command that runs a model sets torch's threads for its duration only."""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import torch

from seqrl import demo, train as train_module, transfer
from seqrl.cli import main
from seqrl.errors import ConfigError
from seqrl.evaluation import evaluate as evaluate_module
from seqrl.threads import torch_threads


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_torch_threads_sets_and_restores(two_threads):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with torch_threads(None):
        assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("the setting is restored on errors too")
    assert torch.get_num_threads() == 2
    with pytest.raises(ConfigError, match="threads must be >= 1, got 0"), torch_threads(0):
        pass


# (command line, module, function the command calls, what that function returns)
COMMANDS = {
    "train": (["train", "--dataset", "x", "--model", "continuous"], train_module, "train",
              SimpleNamespace(run_dir="r", step=0)),
    "eval": (["eval", "some-run", "--json"], evaluate_module, "evaluate_run", {}),
    "finetune": (["finetune", "--from", "src", "--dataset", "x"], transfer, "finetune",
                 SimpleNamespace(run_dir="r", step=0)),
    "demo": (["demo", "--quick"], demo, "run_demo", None),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_threads_flag_applies_while_the_command_runs(name, two_threads, monkeypatch):
    argv, module, function, returned = COMMANDS[name]
    seen = []

    def fake(*args, **kwargs):
        seen.append(torch.get_num_threads())
        if returned is None:
            raise SystemExit(0)  # the demo prints a summary of what it returns; stop before that
        return returned

    monkeypatch.setattr(module, function, fake)
    with pytest.raises(SystemExit) if returned is None else nullcontext():
        main([*argv, "--threads", "1"])
    assert seen == [1]
    assert torch.get_num_threads() == 2

