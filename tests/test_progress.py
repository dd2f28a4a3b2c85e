"""seqrl.progress.Progress: plain lines when the output is not a terminal, a tqdm bar when it is."""

from __future__ import annotations

import io

import pytest

from seqrl.progress import Progress, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_every_interval_with_step_loss_rate_and_eta():
    out, clock = io.StringIO(), FakeClock()
    with Progress(1000, "train hopper", unit="step", every=10, file=out, clock=clock) as progress:
        assert not progress.tty
        for _ in range(9):  # 9 s at 10 steps/s: no line yet
            clock.now += 1
            progress.update(10, loss=0.123456)
        assert out.getvalue() == ""
        clock.now += 1
        progress.update(10, loss=0.5)
        lines = out.getvalue().splitlines()
        assert lines == ["train hopper: 100/1000 steps (10%) loss=0.5 | 10 step/s | elapsed 10s | ETA 1m30s"]
        clock.now += 5
        progress.update(50)  # within the interval: nothing new
        assert len(out.getvalue().splitlines()) == 1
    # close writes the last state
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("train hopper: 150/1000 steps (15%) loss=0.5 | 10 step/s | elapsed 15s")


def test_close_after_nothing_new_writes_nothing_and_done_is_marked():
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(4, "sweep", unit="run", every=0, file=out, clock=clock)
    clock.now += 120
    progress.update(4)
    progress.close()
    progress.close()  # idempotent
    progress.update(1)  # ignored after close
    assert out.getvalue().splitlines() == ["sweep: 4/4 runs (100%) | 30 s/run | elapsed 2m00s | done"]


def test_resumed_progress_rates_only_this_session_and_unknown_total():
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(1000, "run", initial=900, every=0, file=out, clock=clock)
    clock.now += 10
    progress.update(50)
    assert out.getvalue().splitlines()[-1] == "run: 950/1000 steps (95%) | 5 step/s | elapsed 10s | ETA 10s"
    unknown = Progress(None, "collect", unit="transition", every=0, file=out, clock=clock)
    clock.now += 2
    unknown.set_postfix(episodes=3)
    assert out.getvalue().splitlines()[-1] == "collect: 0 transitions episodes=3 | - transition/s | elapsed 2s"


def test_disabled_progress_is_silent():
    out, clock = io.StringIO(), FakeClock()
    with Progress(10, "x", enabled=False, every=0, file=out, clock=clock) as progress:
        clock.now += 1
        progress.update(5)
    assert out.getvalue() == ""


def test_interval_from_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEQRL_PROGRESS_SECONDS", "2.5")
    assert Progress(1, file=io.StringIO()).every == 2.5
    monkeypatch.setenv("SEQRL_PROGRESS_SECONDS", "nan")
    assert Progress(1, file=io.StringIO()).every == 30.0


def test_terminal_gets_a_tqdm_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    with Progress(10, "bar", file=out) as progress:
        assert progress.tty and progress._bar is not None
        progress.update(10, loss=0.25)
    assert "10/10" in out.getvalue() and "loss=0.25" in out.getvalue()


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 61, 3599, 3600 * 2 + 300)] == ["0s", "59s", "1m01s", "59m59s", "2h05m"]


def test_skipped_units_count_but_not_in_the_rate():
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(100, "demo", every=0, file=out, clock=clock)
    progress.skip(60)  # reused from an earlier, interrupted run
    clock.now += 4
    progress.update(20)
    assert out.getvalue().splitlines()[-1] == "demo: 80/100 steps (80%) | 5 step/s | elapsed 4s | ETA 4s"


def test_seqrl_sweep_prints_plain_progress_lines_when_not_a_terminal(tmp_path, minari_root, monkeypatch):
    """SweepView on a piped console: no live view, plain lines on stderr with runs done and the
    running runs' steps (rich's live view shows nothing until the end there)."""
    from rich.console import Console

    from seqrl.experiments.spec import expand
    from seqrl.experiments.sweep import SweepView, run_sweep
    from tests.helpers.dt import SWEEP_TINY_DEFAULTS as TINY_DEFAULTS

    from seqrl.data.sources import save_dataset
    from tests.helpers.dt import make_dataset

    save_dataset(make_dataset(obs_dim=4, act_dim=1, episodes=4, seed=0, name="pole-tiny"), "seqrl/pole-tiny-v0",
                 "InvertedPendulum-v5", ref_min_score=0.0, ref_max_score=1000.0)
    monkeypatch.setenv("SEQRL_PROGRESS_SECONDS", "0")
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    spec = {"name": "plain", "defaults": TINY_DEFAULTS, "eval": {"episodes": 1},
            "experiments": {"e": {"datasets": ["pole-tiny"], "models": ["continuous"], "seeds": 2}}}
    console = Console(file=io.StringIO(), force_terminal=False)
    result = run_sweep(expand(spec), tmp_path / "out", workers=1, threads=1, view=SweepView(console))
    assert len(result.names("done")) == 2
    lines = stderr.getvalue().splitlines()
    assert lines and all(line.startswith("sweep plain: ") for line in lines)
    assert lines[-1].startswith("sweep plain: 2/2 runs (100%)") and lines[-1].endswith("| done")

    # While runs train, the lines name them with their logged step and loss.
    from seqrl.experiments.sweep import SweepResult

    sweep = expand(spec)
    out = tmp_path / "out2"
    view = SweepView(console)
    view.start(sweep, out, SweepResult(out))
    name = sweep.runs[0].name
    view.update(name, "running")
    (out / name).mkdir(parents=True)
    (out / name / "metrics.jsonl").write_text('{"step": 2, "loss": 0.5}\n')
    view.refresh()
    view.stop()
    assert stderr.getvalue().splitlines()[-1].startswith(f"sweep plain: 0/2 runs (0%) running={name} step 2/4 loss 0.5 |")


def test_step_time_estimate_times_steps_after_the_first_and_prints_the_whole_run():
    from seqrl.progress import StepTimeEstimate

    out, clock = io.StringIO(), FakeClock()
    estimate = StepTimeEstimate(first_step=10, total=1010, timed=3, file=out, clock=clock)
    clock.now += 60.0  # the first step's one-off costs are not timed
    estimate.step_done(11)
    for step in (12, 13):
        clock.now += 2.0
        estimate.step_done(step)
        assert out.getvalue() == ""
    clock.now += 2.0
    estimate.step_done(14)
    assert estimate.seconds_per_step == pytest.approx(2.0)
    assert out.getvalue().strip() == ("estimated 2 s/step (steps 12-14 timed): 1000 steps take about 33m20s, "
                                      "without evaluations")
    estimate.step_done(15)  # printed once
    assert len(out.getvalue().splitlines()) == 1


def test_step_time_estimate_is_silent_when_disabled_or_too_short():
    from seqrl.progress import StepTimeEstimate

    for kwargs in (dict(first_step=0, total=100, enabled=False), dict(first_step=0, total=4)):
        out = io.StringIO()
        estimate = StepTimeEstimate(file=out, clock=FakeClock(), **kwargs)
        for step in range(1, 6):
            estimate.step_done(step)
        assert out.getvalue() == ""


def test_evaluation_progress_moves_with_environment_steps_within_an_episode(monkeypatch: pytest.MonkeyPatch):
    from seqrl.evaluation.rollout import EpisodeProgress

    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    counter = EpisodeProgress("eval run", episodes=4)
    counter.progress.every = 0.0  # a line on every update
    counter(4)  # reset: four episodes running
    for _ in range(5):  # five steps, none finished
        counter(4)
    lines = out.getvalue().splitlines()
    assert "0/4 episodes" in lines[-1] and "env_step=5" in lines[-1]
    counter(3)  # one ends at step 6
    assert "1/4 episodes" in out.getvalue().splitlines()[-1] and "env_step=6" in out.getvalue().splitlines()[-1]
    counter(4)  # the next condition's reset starts the count again
    counter(4)
    assert "env_step=1" in out.getvalue().splitlines()[-1]
    counter.close()


def test_python_evaluate_shows_progress_unless_told_not_to(tmp_path, monkeypatch):
    from seqrl.evaluation.evaluate import evaluate

    from tests.helpers.envs import register, trained

    register()
    result = trained(tmp_path)
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    evaluate(result.model, result.spec, context_len=5, episodes=3, seed=11, targets=(-1.0,))
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("evaluate: 3/3 episodes (100%)") and "done" in last
    out.truncate(0)
    out.seek(0)
    evaluate(result.model, result.spec, context_len=5, episodes=3, seed=11, targets=(-1.0,), progress=False)
    assert out.getvalue() == ""
