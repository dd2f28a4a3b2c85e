"""The `seqrl` command: one subcommand per task, each a typed function parsed by tyro.

Every subcommand function lives beside the code it drives; this file only names them.
"""

from __future__ import annotations

import sys
from typing import Callable


def _subcommands() -> dict[str, Callable]:
    # Imported here, not at module import, so `import seqrl.cli` stays cheap.
    from seqrl.collect.recipes import collect_command
    from seqrl.data.sources import datasets_command
    from seqrl.demo import demo_command
    from seqrl.evaluation.evaluate import eval_command
    from seqrl.experiments.report import report_command
    from seqrl.experiments.sweep import sweep_command
    from seqrl.train import train_command
    from seqrl.transfer import finetune_command

    return {
        "collect": collect_command,
        "datasets": datasets_command,
        "demo": demo_command,
        "eval": eval_command,
        "finetune": finetune_command,
        "train": train_command,
        "sweep": sweep_command,
        "report": report_command,
    }


def main(argv: list[str] | None = None) -> None:
    import tyro

    from seqrl.errors import SeqRLError

    try:
        tyro.extras.subcommand_cli_from_dict(
            _subcommands(),
            prog="seqrl",
            description="Offline RL as sequence modelling: collect data, train, evaluate, transfer, sweep.",
            args=argv,
        )
    except SeqRLError as exc:
        print(f"seqrl: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(
            "seqrl: interrupted; nothing is lost: `seqrl train ... --resume` continues a run, and "
            "`seqrl sweep` or `seqrl demo` continue when the same command is run again",
            file=sys.stderr,
        )
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
