"""Up-front checks of numeric settings, with errors that name the flag as the user types it.

Every config's `__post_init__` calls these, so a bad value (NaN, inf, out of range) stops the
command before any data is read, with a message such as

    --learning-rate must be a finite number > 0, got nan

rather than a traceback from deep inside torch. `name` is the field name (`learning_rate`) or
the flag itself (`--learning-rate`); messages always show the flag.

`check_run_numbers(cfg)` checks the fields every model family's run shares (RunConfig);
`check_dt_numbers(cfg)` the Decision Transformer's own. `warmup_warning(steps, warmup_steps)` is
the message the training loop prints when the warm-up is longer than the run.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from seqrl.errors import ConfigError


def flag(name: str) -> str:
    """'learning_rate' -> '--learning-rate' (a name that already starts with '-' is kept)."""
    return name if name.startswith("-") else "--" + name.replace("_", "-")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_finite(name: str, value: Any) -> float:
    """`value` as a float; ConfigError unless it is a finite real number."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ConfigError(f"{flag(name)} must be a finite number, got {value!r}")
    return float(value)


def require_in_range(
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """`value` as a float; ConfigError unless it is finite and within the bounds.

    `lo`/`hi` None leave that side unbounded; `lo_open`/`hi_open` exclude the bound itself. The
    message states the allowed range: '--dropout must be a finite number in [0, 1), got 1.0'.
    """
    if lo is not None and hi is not None:
        allowed = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        allowed = f"{'>' if lo_open else '>='} {lo:g}"
    elif hi is not None:
        allowed = f"{'<' if hi_open else '<='} {hi:g}"
    else:
        allowed = ""
    message = f"{flag(name)} must be a finite number{' ' + allowed if allowed else ''}, got {value!r}"
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ConfigError(message)
    x = float(value)
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise ConfigError(message)
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise ConfigError(message)
    return x


def require_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """`value` as a float; ConfigError unless finite and > 0 (>= 0 with `allow_zero`)."""
    return require_in_range(name, value, 0.0, None, lo_open=not allow_zero)


def require_int(name: str, value: Any, minimum: int | None = None) -> int:
    """`value` as an int; ConfigError unless it is an integer (not a bool) >= `minimum`."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ConfigError(f"{flag(name)} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{flag(name)} must be >= {minimum}, got {value}")
    return int(value)


def require_all_finite(name: str, values: Iterable[Any] | None) -> None:
    """Every entry of a sequence (e.g. --targets) finite; None passes."""
    if values is None:
        return
    for value in values:
        if not _is_number(value) or not math.isfinite(float(value)):
            raise ConfigError(f"every value of {flag(name)} must be a finite number, got {value!r}")


# ----------------------------------------------------------------------------- configs
def check_run_numbers(cfg: Any) -> None:
    """The numeric fields every family's run shares (seqrl.config.RunConfig)."""
    for name in ("steps", "batch_size", "eval_episodes", "log_every", "checkpoint_every"):
        require_int(name, getattr(cfg, name), 1)
    for name in ("warmup_steps", "eval_every", "seed", "eval_seed"):
        require_int(name, getattr(cfg, name), 0)
    require_positive("checkpoint_minutes", cfg.checkpoint_minutes, allow_zero=True)
    require_positive("learning_rate", cfg.learning_rate)
    require_positive("weight_decay", cfg.weight_decay, allow_zero=True)
    require_positive("grad_clip", cfg.grad_clip, allow_zero=True)  # 0 disables clipping
    require_in_range("min_lr_ratio", cfg.min_lr_ratio, 0.0, 1.0)
    require_in_range("holdout_fraction", cfg.holdout_fraction, 0.0, 1.0, hi_open=True)
    betas = tuple(cfg.betas)
    if len(betas) != 2:
        raise ConfigError(f"--betas takes two numbers (beta1 beta2), got {betas!r}")
    for beta in betas:
        # torch.optim.AdamW's own condition, checked here so it is never a traceback.
        if not _is_number(beta) or not (math.isfinite(float(beta)) and 0.0 <= float(beta) < 1.0):
            raise ConfigError(f"--betas must be two finite numbers in [0, 1), got {betas!r}")


# ----------------------------------------------------------------------------- warnings
def warmup_warning(steps: int, warmup_steps: int) -> str | None:
    """A warning when the linear warm-up is longer than the run, else None.

    With `seqrl.train.warmup_schedule` the last of `steps` steps runs at steps / warmup_steps of
    the peak learning rate, so a 2000-step run with the CORL preset's 10,000 warm-up steps never
    gets past a fifth of --learning-rate.
    """
    if warmup_steps <= steps:
        return None
    reached = 100.0 * steps / warmup_steps
    suggestion = max(1, steps // 10)
    return (
        f"--warmup-steps {warmup_steps} is longer than the run (--steps {steps}): the learning rate "
        f"only reaches {reached:.0f}% of --learning-rate by the last step. Pass --warmup-steps "
        f"{suggestion} (a tenth of the run) or fewer for a run that reaches its peak rate."
    )
