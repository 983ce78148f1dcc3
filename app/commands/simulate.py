"""``wsgiscope simulate`` and ``wsgiscope presets``.

``simulate`` runs a scenario -- a JSON file, ``-`` for standard input, or the name of a
built-in preset -- through the simulator and prints the result as JSON (the result
format of docs/ARCHITECTURE.md), a plain-text table, CSV, or a Chrome trace for Perfetto.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from .common import (
    FORMATS,
    add_lessons_flag,
    load_lessons_arg,
    render,
    scenario_with_profile,
)


def add_parser(subparsers: Any) -> None:
    """Register ``simulate`` and ``presets`` with the ``wsgiscope`` command line."""
    p = subparsers.add_parser(
        "simulate",
        help="run a scenario through the simulator and print the result",
        description=(
            "Simulate a WSGI server under a workload. SCENARIO is a JSON file, '-' for "
            "standard input, or a preset name (see 'wsgiscope presets')."
        ),
    )
    p.add_argument("scenario", metavar="SCENARIO", help="JSON file, '-' or a preset name")
    p.add_argument(
        "--seed", type=int, default=None,
        help="random seed, 0 to 4294967295 (default: the scenario's own)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="json: result format; table: timeline for a slide; csv: one row per request; "
        "trace: Chrome Trace Event JSON for Perfetto (default: table)",
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        default=None,
        help='calibration profile {"costs": {...}, "machine": {...}} measured on a machine; '
        "its values replace the scenario's",
    )
    add_lessons_flag(p)
    p.set_defaults(func=cmd_simulate)

    q = subparsers.add_parser(
        "presets",
        help="list the built-in scenarios",
        description="List the built-in scenarios: name, title and the lesson each teaches.",
    )
    add_lessons_flag(q)
    q.set_defaults(func=cmd_presets)


def cmd_simulate(args: argparse.Namespace) -> int:
    from wsgiscope import simulator
    from wsgiscope.simulator.validation import check_seed

    if args.seed is not None:
        check_seed(args.seed, "--seed")  # the scenario's range: 0 to 2**32 - 1
    data = scenario_with_profile(args.scenario, args.profile, load_lessons_arg(args.lessons))
    scenario = simulator.load_scenario(data)  # ScenarioError -> one line, exit 2
    trace = simulator.run(scenario, seed=args.seed)
    for piece in output(trace, args.format):
        sys.stdout.write(piece)
    sys.stdout.flush()
    return 0


def output(trace: Any, fmt: str) -> Iterator[str]:
    """What :func:`~.common.render` returns, the same text, in pieces: the JSON formats are
    written as they are encoded instead of being built whole first (a run of 200,000
    requests would hold its result several times over)."""
    from wsgiscope.simulator import export

    if fmt == "json":
        return export.iter_json(trace)
    if fmt == "trace":
        return export.iter_chrome_trace(trace)
    return iter((render(trace, fmt),))


def cmd_presets(args: argparse.Namespace) -> int:
    items = list(load_lessons_arg(args.lessons).values())
    if not items:
        print("no presets")
        return 0
    width = max(len(p.name) for p in items)
    for p in items:
        print(f"{p.name.ljust(width)}  {p.title}")
        print(f"{' ' * width}  {p.lesson}")
    return 0
