"""``wsgiscope measure``, ``wsgiscope compare`` and ``wsgiscope calibrate``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from wsgiscope.app.commands.common import FORMATS


def add_parser(subparsers: Any) -> None:
    """Register the lab's sub-commands with the ``wsgiscope`` command line."""
    scenario_help = "JSON file, '-' for standard input, or a preset name"
    m = subparsers.add_parser(
        "measure",
        help="run a scenario on the real server it describes (127.0.0.1) and print the result",
        description=(
            "Start the real server the scenario describes on 127.0.0.1, fire its workload, "
            "measure every request and the kernel backlog, and print the measured run in "
            "the same formats as 'simulate'. A lab run is bounded: at most 2,000 requests "
            "sent over at most 120 s."
        ),
    )
    m.add_argument("scenario", metavar="SCENARIO", help=scenario_help)
    m.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="json, table, csv or trace, as for 'simulate' (default: table)",
    )
    m.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the arrival schedule (default: the scenario's own)",
    )
    m.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help="keep the raw records (server log, per-process records, driver output) in DIR",
    )
    m.set_defaults(func=cmd_measure)

    c = subparsers.add_parser(
        "compare",
        help="simulate and measure a scenario; print completion times side by side",
        description=(
            "Simulate the scenario, measure it on the real server, and print each request's "
            "completion time in both with the error, then a summary: median and max "
            "absolute error, makespan error, status mismatches. Exit status 1 when they "
            "disagree (a request off by more than 10 percent and 30 ms, or a different status)."
        ),
    )
    c.add_argument("scenario", metavar="SCENARIO", help=scenario_help)
    c.add_argument("--format", choices=("table", "json"), default="table")
    c.add_argument("--seed", type=int, default=None)
    c.add_argument(
        "--profile",
        metavar="FILE",
        default=None,
        help="calibration profile (from 'wsgiscope calibrate') merged into the "
        "scenario before simulating",
    )
    c.set_defaults(func=cmd_compare)

    k = subparsers.add_parser(
        "calibrate",
        help="measure this machine's per-request overheads and write a simulator profile",
        description=(
            "Measure this machine's per-request costs (accept, thread start, fork, parse, "
            "dispatch stages, write, GIL hand-off) on real servers on 127.0.0.1 and write a "
            'profile {"costs": {...}, "machine": {...}} that simulate/compare --profile use.'
        ),
    )
    k.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="write the profile to FILE (default: standard output)",
    )
    k.set_defaults(func=cmd_calibrate)


def _scenario(args: argparse.Namespace) -> dict[str, Any]:
    from wsgiscope.app.commands.common import scenario_with_profile

    return scenario_with_profile(args.scenario, getattr(args, "profile", None))


def _progress() -> Any:
    if not sys.stderr.isatty():
        return None
    last = [-1]

    def show(fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if pct != last[0]:
            last[0] = pct
            sys.stderr.write(f"\r[{pct:3d}%] {message:<40}")
            if fraction >= 1.0:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return show


def _lab_error(exc: Exception) -> Exception:
    from wsgiscope.app.commands.common import CliError

    return CliError(f"the lab run failed: {exc}")


def cmd_measure(args: argparse.Namespace) -> int:
    from wsgiscope.app.commands.common import render

    from .launcher import LabError
    from .measure import measure

    data = _scenario(args)
    try:
        trace = measure(data, progress=_progress(), seed=args.seed, keep_dir=args.keep)
    except LabError as exc:
        raise _lab_error(exc) from None
    sys.stdout.write(render(trace, args.format))
    sys.stdout.flush()
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import format_comparison, run_compare
    from .launcher import LabError

    data = _scenario(args)
    try:
        _sim, _meas, result = run_compare(data, seed=args.seed, progress=_progress())
    except LabError as exc:
        raise _lab_error(exc) from None
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(format_comparison(result))
    sys.stdout.flush()
    return 0 if result["summary"]["agrees"] else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate
    from .launcher import LabError

    try:
        profile = calibrate(progress=_progress())
    except LabError as exc:
        raise _lab_error(exc) from None
    text = json.dumps(profile, indent=2) + "\n"
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            from wsgiscope.app.commands.common import CliError

            raise CliError(f"cannot write {args.out}: {exc}") from None
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
