"""The `seqrl` command: one subcommand per task, each a typed function parsed by tyro.

Every subcommand function lives beside the code it drives; this file only names them.
"""

from __future__ import annotations

import sys
from typing import Callable


# name -> (where its function lives, what `seqrl --help` says of it). Only the command that runs
# is imported: `seqrl --help` imports nothing heavy, `seqrl eval ...` not the sweep machinery.
# (tests/test_cli_family.py checks each line against the function's own docstring.)
COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("seqrl.collect.recipes:collect_command",
                "Collect a named dataset (hopper-medium, lunarlander-expert, ...) or any task's with --env and --policy."),
    "datasets": ("seqrl.data.sources:datasets_command",
                 "List the local datasets (Minari format, all namespaces) with their size and returns."),
    "demo": ("seqrl.demo:demo_command",
             "Build LunarLander datasets, train the four action representations, evaluate, plot (about 3 minutes)."),
    "train": ("seqrl.train_command:train_command",
              "Train a model on a dataset (`--family tt|bc|mtdt|lm|dynamics` for other families)."),
    "pretrain-lm": ("seqrl.cli:pretrain_lm_command",
                    "Pretrain a small causal language model on text or Markov-chain tokens, for --init lm:RUN_DIR."),
    "eval": ("seqrl.evaluation.command:eval_command",
             "Evaluate a trained run (any family) in its environment; writes RUN_DIR/eval.json."),
    "finetune": ("seqrl.transfer:finetune_command",
                 "Transfer a trained run's transformer trunk to another dataset."),
    "export": ("seqrl.export:export_command",
               "Export a trained run's policy to ONNX or TorchScript, with a runner that needs no seqrl."),
    "predict": ("seqrl.analysis.prediction:predict_command",
                "Roll trained models (TT, dynamics ensemble) forward open-loop and report the prediction error."),
    "sweep": ("seqrl.experiments.sweep:sweep_command",
              "Run a sweep spec (YAML or Python): every dataset x model x option x seed, then evaluate."),
    "report": ("seqrl.experiments.report:report_command",
               "Tables (Markdown, CSV) of normalized scores, mean ± std over seeds, and plots (PNG)."),
}


def command_function(name: str) -> Callable:
    """The function behind `seqrl NAME` (imported now)."""
    import importlib

    module, function = COMMANDS[name][0].split(":")
    return getattr(importlib.import_module(module), function)


def _subcommands() -> dict[str, Callable]:
    """Every command's function (imports them all; `main` imports only the one it runs)."""
    return {name: command_function(name) for name in COMMANDS}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: seqrl COMMAND [OPTIONS]   (seqrl COMMAND --help: the command's options)", "",
             "Offline RL as sequence modelling: collect data, train, evaluate, transfer, sweep.", "", "commands:"]
    lines += [f"  {name:<{width}}  {description}" for name, (_, description) in COMMANDS.items()]
    return "\n".join(lines)


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

    tag = _run_family(argv[1:])
    if tag is None:
        return False  # no run named (`seqrl eval --help`), or one that records no family: the plain path
    try:
        flags = get_family(tag).eval_flags
    except ConfigError:
        return False  # an unknown tag: the plain path loads the run and names the problem
    if flags is None:
        return False
    from seqrl.evaluation.command import family_eval_command

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
    from seqrl.train_command import family_train_command

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
    from seqrl.errors import SeqRLError

    args = sys.argv[1:] if argv is None else list(argv)
    prog = "seqrl train"
    if args and args[0] == "pretrain-lm":  # `seqrl pretrain-lm ...` is `seqrl train --family lm ...`
        args, prog = ["train", "--family", "lm", *args[1:]], "seqrl pretrain-lm"
    try:
        if not args or args[0] in ("-h", "--help"):
            print(usage())
            raise SystemExit(0 if args else 2)
        if args[0] not in COMMANDS:
            print(f"seqrl: unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
            raise SystemExit(2)
        if _train_of_family(args, prog) or _eval_of_family(args):
            return
        import tyro

        tyro.cli(command_function(args[0]), args=args[1:], prog=prog if args[0] == "train" else f"seqrl {args[0]}")
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
