"""The `seqrl` command: one subcommand per task, each a typed function parsed by tyro.

Every subcommand function lives beside the code it drives; this file only names them.
"""

from __future__ import annotations

import sys
from typing import Callable


def _subcommands() -> dict[str, Callable]:
    # Imported here, not at module import, so `import seqrl.cli` stays cheap.
    from seqrl.analysis.prediction import predict_command
    from seqrl.collect.recipes import collect_command
    from seqrl.data.sources import datasets_command
    from seqrl.demo import demo_command
    from seqrl.evaluation.evaluate import eval_command
    from seqrl.export import export_command
    from seqrl.experiments.report import report_command
    from seqrl.experiments.sweep import sweep_command
    from seqrl.train import train_command
    from seqrl.transfer import finetune_command

    return {
        "collect": collect_command,
        "pretrain-lm": pretrain_lm_command,
        "datasets": datasets_command,
        "demo": demo_command,
        "eval": eval_command,
        "export": export_command,
        "finetune": finetune_command,
        "predict": predict_command,
        "train": train_command,
        "sweep": sweep_command,
        "report": report_command,
    }


def pretrain_lm_command() -> None:
    """Pretrain a small causal language model on text or Markov-chain tokens, for --init lm:RUN_DIR
    (`seqrl train --family lm`; `seqrl pretrain-lm --help` lists its flags)."""
    # Listed for `seqrl --help` only: main() turns `seqrl pretrain-lm ...` into `seqrl train --family lm ...`.
    main(["pretrain-lm", "--help"])


def _family_flag(argv: list[str]) -> str | None:
    """The value of `--family` in `seqrl train ...` arguments, if given."""
    for i, arg in enumerate(argv):
        if arg == "--family" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--family="):
            return arg.split("=", 1)[1]
    return None


def _run_family(argv: list[str]) -> str | None:
    """The family tag of the run directory (or checkpoint file) among `seqrl eval`'s arguments,
    read from its config.json; None when none names a readable run."""
    import json
    from pathlib import Path

    for arg in argv:
        if arg.startswith("-"):
            continue
        path = Path(arg)
        for config in (path / "config.json", path.parent.parent / "config.json"):
            try:
                values = json.loads(config.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(values, dict):
                return values.get("family")
    return None


def _eval_of_family(argv: list[str]) -> bool:
    """`seqrl eval RUN_DIR ...` of a run whose family has evaluation flags of its own (the TT's
    planner): parse with them added. Returns False for the plain path."""
    if not argv or argv[0] != "eval":
        return False
    import tyro

    from seqrl.errors import ConfigError
    from seqrl.families import get_family

    try:
        flags = get_family(_run_family(argv[1:])).eval_flags
    except ConfigError:
        return False  # an unknown tag: the plain path loads the run and names the problem
    if flags is None:
        return False
    from seqrl.evaluation.evaluate import family_eval_command

    tyro.cli(family_eval_command(flags), args=argv[1:], prog="seqrl eval")
    return True


def _train_of_family(argv: list[str], prog: str = "seqrl train") -> bool:
    """`seqrl train --family F ...`: parse with family F's config (its own flags and defaults).

    tyro parses one dataclass per command, and each family has its own config class, so the
    family flag picks the class before parsing. Returns False for the DT (the plain path).
    """
    import tyro

    family = _family_flag(argv[1:])
    if not argv or argv[0] != "train" or family is None:
        return False  # the plain path: the Decision Transformer's flags
    from seqrl.errors import ConfigError
    from seqrl.families import get_family
    from seqrl.train import family_train_command

    try:
        config_class = get_family(family).config_class
    except ConfigError as exc:
        raise ConfigError(f"unknown --family {family!r}: {exc}") from None
    args = _expand_preset(argv[1:], family)
    tyro.cli(family_train_command(config_class), args=args, prog=prog)
    return True


def _expand_preset(args: list[str], family: str) -> list[str]:
    """`--preset NAME` replaced by the family's preset flags (`Family.preset_flags`), put first so
    the user's own flags win (the Trajectory Transformer's sizes: seqrl.families.tt.config.SIZE_PRESETS)."""
    names = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--preset"]
    names += [a.split("=", 1)[1] for a in args if a.startswith("--preset=")]
    if not names:
        return args
    from seqrl.errors import ConfigError
    from seqrl.families import get_family

    if len(names) > 1:
        raise ConfigError(f"--preset given {len(names)} times; give it once")
    preset_flags = get_family(family).preset_flags

    rest, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
        elif a == "--preset":
            skip = True
        elif not a.startswith("--preset="):
            rest.append(a)
    return preset_flags(names[0]) + rest


def main(argv: list[str] | None = None) -> None:
    import tyro

    from seqrl.errors import SeqRLError

    args = sys.argv[1:] if argv is None else list(argv)
    prog = "seqrl train"
    if args and args[0] == "pretrain-lm":  # `seqrl pretrain-lm ...` is `seqrl train --family lm ...`
        args, prog = ["train", "--family", "lm", *args[1:]], "seqrl pretrain-lm"
    try:
        if _train_of_family(args, prog) or _eval_of_family(args):
            return
        tyro.extras.subcommand_cli_from_dict(
            _subcommands(),
            prog="seqrl",
            description="Offline RL as sequence modelling: collect data, train, evaluate, transfer, sweep.",
            args=args,
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
