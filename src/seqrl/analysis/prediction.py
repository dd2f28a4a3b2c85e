"""Long-horizon prediction: roll trained models forward open-loop from real start states and
measure how far their predicted states drift from the real ones (the Trajectory Transformer
paper's model analysis: its Figure 2, with the discrete oracle of its appendix B).

`seqrl predict RUN_DIR [RUN_DIR ...]` rolls every run forward from the same start states of
the first run's dataset (transitions with `context` steps before them and `horizon` after them
in their episode, drawn with `seed`), with the dataset's actions (or, for a TT, its own), and
writes per horizon step, for each run:

- `error`: the mean over start states of the squared error of the predicted state, each
  dimension divided by the data's standard deviation, averaged over dimensions;
- `log_density`: the mean log-density of the TRUE next state under the model's open-loop
  prediction (the TT's bins spread uniformly over their widths; the ensemble's Gaussian mixture);
- for a TT also `log_prob`, the discrete log-probability of the true state's bins.

The discrete oracle is the error of the best any discretized model could do: the true states
passed through the TT's discretizer (decode(encode(s))), a constant floor over the horizon.
Each run's family provides its own open-loop rollout (`Family.open_loop`); the output is
RUN_DIR/predict.json (the first run's folder, or --out) and a plot.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import numpy as np
import tyro

from seqrl.errors import ConfigError

PREDICT_FILE = "predict.json"


def prediction_starts(dataset: Any, n: int, horizon: int, context: int, seed: int = 0) -> np.ndarray:
    """`n` dataset indices i with `context` transitions before them and s_{i+horizon} after them,
    all in i's episode (drawn without replacement where there are enough)."""
    index = np.arange(dataset.num_transitions)
    start = dataset.episode_starts[dataset.episode_index]
    end = dataset.episode_ends[dataset.episode_index]
    valid = index[(index - start >= context) & (index + horizon <= end - 1)]
    if len(valid) == 0:
        raise ConfigError(
            f"{dataset.name}: no episode is long enough for {context} steps of context and a {horizon}-step "
            f"horizon (longest: {int(dataset.episode_lengths.max())} steps); lower --horizon or --context"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(valid, size=min(n, len(valid)), replace=False))


def normalized_error(predicted: np.ndarray, dataset: Any, starts: np.ndarray) -> np.ndarray:
    """(n, H) squared error per dimension in units of the data's std, averaged over dimensions."""
    horizon = predicted.shape[1]
    truth = dataset.observations[starts[:, None] + np.arange(1, horizon + 1)]  # (n, H, obs_dim)
    std = dataset.observation_std
    return (((predicted - truth) / std) ** 2).mean(-1)


def predict_runs(
    run_dirs: Sequence[str | Path],
    *,
    horizon: int = 100,
    starts: int = 50,
    context: int = 1,
    actions: Literal["dataset", "model"] = "dataset",
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Open-loop predictions of every run from the same start states; the report (see the module)."""
    from seqrl.loading import load_run
    from seqrl.data.sources import load_dataset
    from seqrl.families import get_family
    from seqrl.runtime import resolve_device

    if horizon < 1 or starts < 1 or context < 0:
        raise ConfigError(f"--horizon and --starts must be >= 1 and --context >= 0, got {horizon}, {starts}, {context}")
    if not run_dirs:
        raise ConfigError("name at least one run directory")
    torch_device = resolve_device(device)
    runs = [(Path(r), load_run(r, torch_device)) for r in run_dirs]
    for path, run in runs:  # before its dataset is looked for: an LM run's "dataset" is a corpus
        if not get_family(run.family).predicts_states:
            raise ConfigError(f"{path} is a {run.family} run, which does not predict states; "
                              "seqrl predict takes Trajectory Transformer and dynamics runs")
    dataset = load_dataset(runs[0][1].config.dataset)
    for path, run in runs:
        run.spec.check_compatible(dataset, what=f"the run in {path}")
    chosen = prediction_starts(dataset, starts, horizon, context, seed)
    report: dict[str, Any] = {"dataset": dataset.name, "horizon": horizon, "starts": chosen.tolist(), "context": context,
                              "actions": actions, "seed": seed, "runs": [], "oracle": None}
    for path, run in runs:
        family = get_family(run.family)
        begin = time.perf_counter()
        out = family.open_loop(run.model, run.config, run.artefacts, dataset, chosen, horizon, actions=actions,
                               context=context)
        entry = {"run_dir": str(path), "family": run.family, "model": family.describe(run.config), "step": run.step,
                 "seconds": time.perf_counter() - begin,
                 "error": normalized_error(out["states"], dataset, chosen).mean(0).tolist(),
                 "log_density": out["log_density"].mean(0).tolist()}
        if "log_prob" in out:
            entry["log_prob"] = out["log_prob"].mean(0).tolist()
        report["runs"].append(entry)
        oracle = family.open_loop_oracle(run.artefacts, dataset, chosen, horizon) if report["oracle"] is None else None
        if oracle is not None:
            report["oracle"] = {"run_dir": str(path), "error": oracle.mean(0).tolist()}
    return report


def plot_predictions(report: dict[str, Any], path: str | Path) -> Path:
    """Error and log-density against the horizon, one line per run, the oracle dashed."""
    from seqrl.figures import add_legend, new_figure, save_figure

    steps = np.arange(1, report["horizon"] + 1)
    fig, (err_ax, ll_ax) = new_figure(1, 2, figsize=(10, 3.8))
    for run in report["runs"]:
        label = f"{run['model']} ({Path(run['run_dir']).name})"
        err_ax.plot(steps, run["error"], label=label)
        ll_ax.plot(steps, run["log_density"], label=label)
    if report["oracle"] is not None:
        err_ax.plot(steps, report["oracle"]["error"], "k--", label="discrete oracle")
    err_ax.set(xlabel="prediction horizon (steps)", ylabel="state error (normalized MSE)", yscale="log",
               title=f"{report['dataset']}: open-loop error ({report['actions']} actions)")
    # symlog: an overconfident Gaussian's log-density runs to -1e5 while a TT's stays near 0
    ll_ax.set(xlabel="prediction horizon (steps)", ylabel="log-density of the true state (symlog)",
              title=f"{len(report['starts'])} start states", yscale="symlog")
    add_legend(err_ax)
    path = save_figure(fig, path, dpi=120)
    return path


def predict_command(
    run_dirs: Annotated[tuple[str, ...], tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")],
    horizon: int = 100,
    starts: int = 50,
    context: int = 1,
    actions: Literal["dataset", "model"] = "dataset",
    seed: int = 0,
    device: str = "cpu",
    out: str | None = None,
    plot: str | None = None,
) -> None:
    """Roll trained models (TT, dynamics ensemble) forward open-loop from real start states and
    report the prediction error and log-likelihood against the horizon.

    Args:
        run_dirs: Run directories (the first one's dataset gives the start states).
        horizon: Steps to predict (the paper: 100).
        starts: Start states, drawn from the dataset with --seed.
        context: Real transitions the TT sees before each start state.
        actions: Feed the dataset's actions, or (a TT) let the model choose its own.
        seed: Seed of the start states.
        device: cpu, cuda, cuda:N, or auto.
        out: Where to write predict.json (default: the first run's directory).
        plot: Where to write the plot (default: predict.png beside predict.json).
    """
    from seqrl.runs import write_json_atomic

    report = predict_runs(run_dirs, horizon=horizon, starts=starts, context=context, actions=actions, seed=seed,
                          device=device)
    folder = Path(out) if out else Path(run_dirs[0])
    write_json_atomic(folder / PREDICT_FILE, report)
    image = plot_predictions(report, plot or folder / "predict.png")
    for run in report["runs"]:
        at = {h: run["error"][h - 1] for h in (1, 10, 100) if h <= horizon}
        print(f"{run['model']:>18} {run['run_dir']}: error " + ", ".join(f"h{h} {v:.3g}" for h, v in at.items()))
    if report["oracle"] is not None:
        print(f"{'discrete oracle':>18}: error {np.mean(report['oracle']['error']):.3g}")
    print(f"wrote {folder / PREDICT_FILE} and {image}")
