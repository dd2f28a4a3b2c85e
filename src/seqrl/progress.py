"""One progress display for every long command: a tqdm bar on a terminal, plain lines otherwise.

When the output is a terminal, `Progress` is a tqdm bar. When it is not (piped, `nohup`, a CI
log), a bar would either print nothing or fill the log with carriage returns, so `Progress`
writes one plain line every `every` seconds instead, plus a last one when it closes:

    train hopper-medium: 1200/5000 steps (24%) loss=0.0123 | 8.1 step/s | elapsed 2m28s | ETA 7m49s

Use it like tqdm:

    with Progress(total=cfg.steps, desc=run_name, unit="step", initial=step) as progress:
        for ...:
            progress.update(1, loss=loss)        # or progress.set_postfix(loss=loss)

The interval comes from `every`, else the environment variable SEQRL_PROGRESS_SECONDS, else
DEFAULT_EVERY_SECONDS. `enabled=False` shows nothing (for `--no-progress`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, TextIO

DEFAULT_EVERY_SECONDS = 30.0
EVERY_ENV_VAR = "SEQRL_PROGRESS_SECONDS"


def format_duration(seconds: float) -> str:
    """'45s', '2m28s', '1h05m'."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _default_every() -> float:
    raw = os.environ.get(EVERY_ENV_VAR)
    if raw is None:
        return DEFAULT_EVERY_SECONDS
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_EVERY_SECONDS
    return value if math.isfinite(value) and value >= 0 else DEFAULT_EVERY_SECONDS


class Progress:
    """Progress of `total` units of work (steps, transitions, runs).

    Args:
        total: Units of work in all (None: unknown; no percentage or ETA).
        desc: What is progressing, printed first on every line.
        unit: Name of one unit ("step", "transition", "run").
        initial: Units already done (a resumed run); the rate counts only this session's units.
        every: Seconds between plain lines (default: $SEQRL_PROGRESS_SECONDS, else 30).
        file: Where to write (default: sys.stderr, read at construction).
        tty: Force the bar (True) or plain lines (False); default: whether `file` is a terminal.
        enabled: False shows nothing at all.
        clock: Monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        *,
        unit: str = "step",
        initial: int = 0,
        every: float | None = None,
        file: TextIO | None = None,
        tty: bool | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = int(initial)
        self._initial = int(initial)
        self.every = _default_every() if every is None else float(every)
        self.file = file if file is not None else sys.stderr
        self.enabled = enabled
        self._clock = clock
        self._start = self._last_line = clock()
        self._n_at_last_line = self.n
        self.postfix: dict[str, Any] = {}
        self.closed = False
        self._bar = None
        if tty is None:
            isatty = getattr(self.file, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        if enabled and tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=desc or None, unit=unit, dynamic_ncols=True, file=self.file
            )

    # ------------------------------------------------------------------ tqdm-like interface
    def update(self, n: int = 1, **postfix: Any) -> None:
        """`n` more units done; keyword arguments replace the shown values (e.g. loss=0.12)."""
        if self.closed:
            return
        self.n += n
        if postfix:
            self.postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix({k: _format_value(v) for k, v in self.postfix.items()}, refresh=False)
            self._bar.update(n)
        elif self.enabled:
            now = self._clock()
            if now - self._last_line >= self.every:
                self._write_line(now)

    def skip(self, n: int) -> None:
        """`n` units found already done (reused from disk): counted, but not in the rate."""
        if self.closed:
            return
        self._initial += n
        self.n += n
        self._n_at_last_line += n
        if self._bar is not None:
            self._bar.update(n)

    def set_total(self, total: int | None) -> None:
        """A new estimate of the units in all (work whose size is learnt as it runs)."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def set_postfix(self, **postfix: Any) -> None:
        """Replace the shown values without counting any units."""
        self.update(0, **postfix)

    def close(self) -> None:
        """End the display: the bar closes; in plain mode a last line is written if anything
        happened since the previous one."""
        if self.closed:
            return
        self.closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.n != self._n_at_last_line:
            self._write_line(self._clock())

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ plain lines
    def line(self, now: float | None = None) -> str:
        """The plain progress line as of `now`."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 0.0)
        done = self.n - self._initial
        rate = done / elapsed if elapsed > 0 else math.nan
        parts = [f"{self.desc}: " if self.desc else ""]
        if self.total is not None:
            pct = 100.0 * self.n / self.total if self.total else 100.0
            parts.append(f"{self.n}/{self.total} {self.unit}s ({pct:.0f}%)")
        else:
            parts.append(f"{self.n} {self.unit}s")
        if self.postfix:
            parts.append(" " + " ".join(f"{k}={_format_value(v)}" for k, v in self.postfix.items()))
        text = "".join(parts)
        if rate > 0:
            rate_text = f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}"
        else:
            rate_text = f"- {self.unit}/s"
        text += f" | {rate_text} | elapsed {format_duration(elapsed)}"
        if self.total is not None:
            remaining = max(self.total - self.n, 0)
            if remaining == 0:
                text += " | done"
            elif rate > 0:
                text += f" | ETA {format_duration(remaining / rate)}"
        return text

    def _write_line(self, now: float) -> None:
        print(self.line(now), file=self.file, flush=True)
        self._last_line = now
        self._n_at_last_line = self.n


class StepTimeEstimate:
    """Prints, a few steps into training, the measured time per step and the whole run's estimate.

    The first step of a session pays one-off costs (allocation, kernel selection, a compile), so
    it is left out: steps 2 .. 1 + `timed` are timed. A run whose steps take seconds (the
    Trajectory Transformer at the authors' size on a CPU) says so within seconds, instead of
    after the first progress line.
    """

    def __init__(self, first_step: int, total: int, *, timed: int = 3, enabled: bool = True,
                 file: TextIO | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.first_step, self.total, self.timed = int(first_step), int(total), int(timed)
        self.enabled = enabled and self.total - self.first_step > self.timed + 1
        self.file = file if file is not None else sys.stderr
        self._clock = clock
        self._start: float | None = None
        self.seconds_per_step: float | None = None

    def step_done(self, step: int) -> None:
        """Call after every step with the number of steps done so far."""
        if not self.enabled or self.seconds_per_step is not None:
            return
        if step == self.first_step + 1:
            self._start = self._clock()
        elif step == self.first_step + 1 + self.timed and self._start is not None:
            self.seconds_per_step = (self._clock() - self._start) / self.timed
            print(self.line(), file=self.file, flush=True)

    def line(self) -> str:
        remaining = self.total - self.first_step
        per = self.seconds_per_step or 0.0
        per_text = f"{per:.3g} s/step" if per >= 1 else f"{1000 * per:.3g} ms/step"
        return (f"estimated {per_text} (steps {self.first_step + 2}-{self.first_step + 1 + self.timed} timed): "
                f"{remaining} steps take about {format_duration(per * remaining)}, without evaluations")
