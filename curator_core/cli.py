"""The `curator` command. Library code logs; this module owns the console."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def command(name: str, help_text: str):
    """Register a subcommand: the decorated function adds its arguments; `run` is attached as `.run`."""

    def decorator(add_arguments: Callable[[argparse.ArgumentParser], None]):
        def attach(run: Callable[[argparse.Namespace], int]):
            COMMANDS[name] = (help_text, add_arguments, run)
            return run

        add_arguments.run = attach  # type: ignore[attr-defined]
        return add_arguments

    return decorator


@command("demo", "run a small pipeline on local Ray to check the engine works")
def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the run report as JSON")


@_demo_args.run
def _demo(args: argparse.Namespace) -> int:
    from curator_core.demo import run_engine_demo

    report = run_engine_demo(args.tasks)
    print(json.dumps(report, indent=2) if args.json else report["summary"])
    return 0 if report["failures"] == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curator", description="Video data curation on Ray and Dagster.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ray").setLevel(level)
    return COMMANDS[args.command][2](args)


if __name__ == "__main__":
    sys.exit(main())
