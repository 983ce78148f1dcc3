"""The ``wsgiscope`` command line.

Sub-commands live next to what they drive; each module exposes ``add_parser(subparsers)``
which registers its sub-command(s) with a ``func(args) -> int`` default. Errors a user can
fix are raised as :class:`CliError` (or ``simulator.ScenarioError``) and printed to stderr
as one line, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class CliError(Exception):
    """A problem the user can fix; printed as ``wsgiscope: <message>``, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from . import cli_simulate

    parser = argparse.ArgumentParser(
        prog="wsgiscope",
        description="See how a Python WSGI server handles concurrent requests.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_simulate.add_parser(sub)
    for name in ("wsgiscope.app.serve", "wsgiscope.app.lab.cli"):
        try:
            module = __import__(name, fromlist=["add_parser"])
        except ImportError:
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from wsgiscope.simulator import ScenarioError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, ScenarioError) as exc:
        print(f"wsgiscope: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    # Run as ``python -m wsgiscope.app.cli``: import the package module so that CliError is the same
    # class the sub-commands raise.
    from wsgiscope.app.cli import main as _main

    sys.exit(_main())
