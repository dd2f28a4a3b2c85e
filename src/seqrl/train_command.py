"""`seqrl train`: the command, apart from the loop (seqrl.train) so that parsing its flags and
`seqrl train --help` import no torch: the config classes are torch-free, and the loop is
imported when a run starts."""

from __future__ import annotations

from typing import Any, Callable

import tyro

from seqrl.families.dt.config import TrainConfig  # noqa: F401 (resolves train_command's annotation)


def train_command(cfg: "tyro.conf.OmitArgPrefixes[TrainConfig]", threads: int | None = None) -> None:  # noqa: F821 (resolved by tyro)
    """Train a model on a dataset: `seqrl train --dataset NAME --model VARIANT` for a Decision
    Transformer, `seqrl train --family tt --dataset NAME` for a Trajectory Transformer.

    Every config field is a flag (`seqrl train --family tt --help` lists the TT's); presets per
    dataset fill --rtg-scale and --targets.

    Args:
        cfg: The training configuration.
        threads: CPU threads for torch (default: torch's, one per core). 1 is often fastest for
            small models and on a busy machine (see seqrl.threads).
    """
    from seqrl.threads import torch_threads
    from seqrl.train import train

    with torch_threads(threads):
        result = train(cfg)
    from seqrl.distributed import Processes

    if Processes.from_environment().main:  # under torchrun, rank 0 speaks for the run
        print(f"run directory: {result.run_dir} (step {result.step})")


def family_train_command(config_class: type) -> Callable[..., None]:
    """`train_command` for another family's config class (what `seqrl train --family F` runs)."""

    def command(cfg: Any, threads: int | None = None) -> None:
        train_command(cfg, threads)

    command.__annotations__ = {"cfg": tyro.conf.OmitArgPrefixes[config_class], "threads": int | None, "return": None}
    command.__doc__ = (f"{(config_class.__doc__ or '').strip().rstrip('.')} (`seqrl train --family "
                       f"{config_class.__dataclass_fields__['family'].default} --dataset NAME`).\n\n"
                       "Every config field is a flag.\n\nArgs:\n    cfg: The training configuration.\n"
                       "    threads: CPU threads for torch (default: torch's, one per core).")
    return command
