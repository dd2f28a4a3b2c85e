"""seqrl.figures: legends that neither cover the curves nor fall off the canvas, and reports that
draw without matplotlib giving up on its layout."""

from __future__ import annotations

import warnings

import numpy as np

from seqrl.experiments.report import write_report
from seqrl.figures import add_legend, new_figure, save_figure, wrap_label
from tests.helpers.runs import fake_run

LONG = "continuous+batch_size=8,context_len=5,embed_dim=32,learning_rate=0.001,n_heads=2,n_layers=2,num_bins=16"


def test_long_labels_wrap_at_commas():
    wrapped = wrap_label(LONG, width=40)
    assert wrapped.replace("\n", "") == LONG
    assert all(len(line) <= 40 for line in wrapped.splitlines()) and len(wrapped.splitlines()) >= 3
    assert all(line.endswith(",") for line in wrapped.splitlines()[:-1])
    assert wrap_label("continuous") == "continuous"


def test_a_short_legend_sits_inside_and_a_long_one_below_the_axes(tmp_path):
    fig, (short_ax, long_ax) = new_figure(1, 2, figsize=(8, 3))
    for ax, names in ((short_ax, ["a", "b"]), (long_ax, [LONG, LONG + ",x=1"])):
        for i, name in enumerate(names):
            ax.plot(np.arange(5), np.arange(5) * (i + 1), label=name)
    inside, below = add_legend(short_ax), add_legend(long_ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    short_box, inside_box = short_ax.get_window_extent(renderer), inside.get_window_extent(renderer)
    long_box, below_box = long_ax.get_window_extent(renderer), below.get_window_extent(renderer)
    assert short_box.x0 <= inside_box.x0 and inside_box.x1 <= short_box.x1 and short_box.y0 <= inside_box.y0
    assert below_box.y1 <= long_box.y0  # under the axes: it covers no curve
    path = save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_a_report_of_runs_with_long_option_labels_draws_without_layout_warnings(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        fake_run(runs, "", "hopper-medium", "continuous", seed, {100.0: 40.0 + seed, 50.0: 20.0, 20.0: 10.0},
                 sweep=False, options=dict(batch_size=8, context_len=5, embed_dim=32, learning_rate=0.001, n_heads=2,
                                           n_layers=2, num_bins=16))
    fake_run(runs, "", "hopper-medium", "tokenized", 0, {100.0: 30.0, 50.0: 25.0, 20.0: 12.0}, sweep=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Tight layout not applied" among them
        write_report(runs, tmp_path / "report")
    pngs = sorted(p.name for p in (tmp_path / "report").glob("*.png"))
    assert any(name.startswith("curves-") for name in pngs) and any(name.startswith("targets-") for name in pngs)
