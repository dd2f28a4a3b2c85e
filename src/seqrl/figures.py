"""What every seqrl figure shares: a constrained layout, legends that never cover the curves or
fall off the canvas, and a save that keeps everything drawn (reports, `seqrl eval --plot`,
`seqrl predict`, the demo).

Legends: a short legend goes inside the axes where it covers least; one with many entries or
long labels (a hand-trained run's options) goes below the axes, its labels wrapped at commas.
The constrained layout makes room for it, so nothing is cut off and matplotlib never has to
give up on a tight layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABEL_WIDTH = 48  # characters per line of a wrapped legend label
INSIDE_MAX_ENTRIES = 6  # more entries than this: the legend goes below the axes
INSIDE_MAX_LABEL = 32  # a longer label: the legend goes below the axes


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no window, ever)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs: Any) -> tuple[Any, Any]:
    """`plt.subplots` with the constrained layout (room for titles, labels and outside legends)."""
    return pyplot().subplots(nrows, ncols, figsize=figsize, layout="constrained", **kwargs)


def wrap_label(text: str, width: int = LABEL_WIDTH) -> str:
    """`text` on lines of at most about `width` characters, broken after commas (option lists)."""
    if len(text) <= width:
        return text
    lines, line = [], ""
    for part in text.replace(",", ",\0").split("\0"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = part
        else:
            line += part
    lines.append(line)
    return "\n".join(lines)


def add_legend(ax: Any, *, fontsize: str | float = "small", below: bool = False) -> Any:
    """The axes' legend, inside when it is short, else (or with `below`: bar charts, whose bars
    leave no empty corner) below the axes with wrapped labels."""
    handles, labels = ax.get_legend_handles_labels()
    if not labels:
        return None
    short = len(labels) <= INSIDE_MAX_ENTRIES and max(len(label) for label in labels) <= INSIDE_MAX_LABEL
    if short and not below:
        return ax.legend(handles, labels, fontsize=fontsize, loc="best")
    return ax.legend(handles, [wrap_label(label) for label in labels], fontsize="x-small", loc="upper center",
                     bbox_to_anchor=(0.5, -0.16), borderaxespad=0.0, frameon=False, ncols=len(labels) if short else 1)


def plain_log_ticks(ax: Any, axis: str = "y") -> None:
    """Plain numbers on a log axis: a narrow range gets minor ticks only, which matplotlib
    labels as 4x10^-1."""
    from matplotlib.ticker import FormatStrFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FormatStrFormatter("%.3g"))
    target.set_minor_formatter(FormatStrFormatter("%.3g"))


def save_figure(fig: Any, path: Path | str, dpi: int = 100) -> Path:
    """Write `fig` to `path` (its folder made), everything drawn kept on the canvas, and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path
