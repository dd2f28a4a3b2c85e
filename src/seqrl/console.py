"""The one rich Console every command prints through."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output (CI logs, `| less`, captured test output) gets no terminal width, and rich
# falls back to 80 columns, squeezing wide tables until headers and numbers vanish.
PIPED_WIDTH = 160


def make_console(**kwargs) -> Console:
    if not sys.stdout.isatty():
        kwargs.setdefault("width", PIPED_WIDTH)
    return Console(**kwargs)
