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
    with pytest.raises(ConfigError, match="threads must be an integer >= 0"), torch_threads(-1):
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



# --------------------------------------------------------------------------- the default: one thread
def _threads_while_training(tmp_path, name: str) -> int:
    from seqrl.train import train
    from tests.helpers.dt import make_dataset, tiny_config

    seen = []
    train(tiny_config(tmp_path, run_dir=str(tmp_path / name), steps=2),
          dataset=make_dataset(), prepare_model=lambda model: seen.append(torch.get_num_threads()))
    return seen[0]


def test_python_train_runs_on_one_thread_unless_told_otherwise(tmp_path, two_threads, monkeypatch):
    """torch's default (one thread per core) spin-waits on a busy machine: seqrl's default is 1."""
    monkeypatch.delenv("SEQRL_THREADS", raising=False)
    assert _threads_while_training(tmp_path, "default") == 1
    assert torch.get_num_threads() == 2  # the caller's setting, restored
    with torch_threads(2):
        assert _threads_while_training(tmp_path, "chosen") == 2
    monkeypatch.setenv("SEQRL_THREADS", "2")
    assert _threads_while_training(tmp_path, "env") == 2
    monkeypatch.setenv("SEQRL_THREADS", "0")  # torch's own default: left alone
    assert _threads_while_training(tmp_path, "torch") == 2
    monkeypatch.setenv("SEQRL_THREADS", "two")
    with pytest.raises(ConfigError, match="SEQRL_THREADS='two' is not an integer"):
        _threads_while_training(tmp_path, "bad")


def test_python_evaluate_runs_on_one_thread_and_a_sweep_worker_on_its_share(tmp_path, two_threads, monkeypatch):
    from seqrl.evaluation import rollout as rollout_module
    from seqrl.threads import set_process_threads, threads_for_models
    from tests.helpers.envs import register, trained

    monkeypatch.delenv("SEQRL_THREADS", raising=False)
    register()
    result = trained(tmp_path)
    seen = []
    real = rollout_module.rollout

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(rollout_module, "rollout", recording)
    rollout_module.evaluate(result.model, result.spec, config=result.config, episodes=2, targets=(-1.0,),
                            progress=False)
    assert seen == [1] and torch.get_num_threads() == 2
    set_process_threads(2)  # what a sweep worker started with --threads 2 does
    try:
        assert threads_for_models() == 2
        rollout_module.evaluate(result.model, result.spec, config=result.config, episodes=2, targets=(-1.0,),
                                progress=False)
        assert seen == [1, 2]
    finally:
        set_process_threads(None)
