"""The ``wsgiscope`` command line: the entry module.

It only collects the sub-commands -- :mod:`.commands.simulate` (``simulate``,
``presets``), :mod:`.commands.serve` (``serve``) and the lab's :mod:`.lab.cli`
(``measure``, ``compare``, ``calibrate``) -- and turns the errors a user can fix
(:class:`~.commands.common.CliError`, ``simulator.ScenarioError``) into one line on stderr,
never a traceback. Sub-commands never import this module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .commands import serve, simulate
from .commands.common import CliError

#: Sub-commands that need more than the core install (the lab); skipped if they cannot load.
OPTIONAL_COMMANDS = ("wsgiscope.app.lab.cli",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsgiscope",
        description="See how a Python WSGI server handles concurrent requests.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    simulate.add_parser(sub)
    serve.add_parser(sub)
    for name in OPTIONAL_COMMANDS:
        try:
            module = importlib.import_module(name)
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
    sys.exit(main())
