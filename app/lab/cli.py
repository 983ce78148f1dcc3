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
    _python_flag(m)
    m.set_defaults(func=cmd_measure)

    c = subparsers.add_parser(
        "compare",
        help="simulate and measure a scenario; judge measured runs against simulated seeds",
        description=(
            "With --runs N and/or --seeds M: measure the scenario N times on the real "
            "server and simulate it over M seeds, then judge distributions -- sorted "
            "completion times, latency p50/p95/p99, each worker's share of requests, "
            "statuses: every measured run must lie inside the simulated [min, max] (or the "
            "--band quantile range), each edge of a time widened by max(30 ms, 10 %). "
            "Without them (or with --per-request): one run against one seed, each "
            "request's completion time side by side with the error; a request off by more "
            "than 10 % and 30 ms, or with a different status, disagrees. "
            "--suite DIR runs a folder of cases (see 'wsgiscope fidelity'). "
            "Exit status 1 when they disagree."
        ),
    )
    c.add_argument("scenario", metavar="SCENARIO", nargs="?",
                   help=scenario_help + ", or a fidelity case file (its runs, seeds and "
                   "statistics become the defaults)")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c.add_argument("--seed", type=int, default=None,
                   help="seed of the first run and seed (default: the scenario's own)")
    c.add_argument("--runs", type=int, default=None, metavar="N",
                   help="measured runs (1 to 50; default 1, or a case file's own)")
    c.add_argument("--seeds", type=int, default=None, metavar="M",
                   help="simulated seeds (1 to 500; default 40, or a case file's own)")
    c.add_argument("--band", type=float, default=None, metavar="Q",
                   help="judge against the [Q, 1-Q] quantiles of the seeds instead of "
                   "[min, max] (default 0)")
    c.add_argument("--judge", default=None, metavar="LIST",
                   help="comma-separated statistics to judge: done, p50, p95, p99 "
                   "(optionally followed by a path, 'p95 /quick'), share, status "
                   "(default: all that apply)")
    c.add_argument("--per-request", action="store_true",
                   help="the single-run view: each request side by side (N=1, M=1)")
    c.add_argument("--suite", metavar="DIR", default=None,
                   help="run every case of a fidelity suite folder instead of SCENARIO")
    _python_flag(c)
    c.add_argument(
        "--profile",
        metavar="FILE",
        default=None,
        help="calibration profile (from 'wsgiscope calibrate') merged into the "
        "scenario before simulating",
    )
    c.set_defaults(func=cmd_compare)

    f = subparsers.add_parser(
        "fidelity",
        help="run the fidelity suite: measured runs against simulated seeds, case by case",
        description=(
            "Run every case of a fidelity suite (a folder of case files: scenario, runs, "
            "seeds, the statistics judged), judge each as 'compare --runs --seeds' does, "
            "and write fidelity.md and fidelity.json. Exit status 1 when a case disagrees."
        ),
    )
    _suite_flags(f)
    f.set_defaults(func=cmd_fidelity)

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


def _python_flag(parser: Any) -> None:
    parser.add_argument(
        "--python",
        metavar="PATH",
        default=None,
        help="interpreter that runs the server (default: this one), e.g. a free-threaded "
        "python3.13t for a machine.gil: false scenario; it needs wsgiscope installed",
    )


def _suite_flags(parser: Any) -> None:
    parser.add_argument("--suite", metavar="DIR", default=DEFAULT_SUITE,
                        help=f"folder of case files (default: {DEFAULT_SUITE})")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where to write fidelity.md and fidelity.json (default: the "
                        "suite folder)")
    parser.add_argument("--only", metavar="CASE", action="append", default=[],
                        help="run only this case (repeatable)")
    parser.add_argument("--runs", type=int, default=None, metavar="N",
                        help="measured runs per case (default: each case's own)")
    parser.add_argument("--seeds", type=int, default=None, metavar="M",
                        help="simulated seeds per case (default: each case's own)")
    parser.add_argument("--update", action="store_true",
                        help="write each case's measured figures back into its file")
    parser.add_argument("--stored", action="store_true",
                        help="start no server: judge the model as it is now against the "
                        "measured figures each case file keeps (seconds, not minutes); "
                        "writes a report only with --out")
    _python_flag(parser)


#: Where the project keeps its fidelity suite (relative to the repository root).
DEFAULT_SUITE = "tests/fidelity"


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
        trace = measure(
            data, progress=_progress(), seed=args.seed, keep_dir=args.keep, python=args.python
        )
    except LabError as exc:
        raise _lab_error(exc) from None
    sys.stdout.write(render(trace, args.format))
    sys.stdout.flush()
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from wsgiscope.app.commands.common import CliError

    from .compare import format_comparison, run_compare
    from .launcher import LabError

    if args.suite:
        if args.scenario:
            raise CliError("give either SCENARIO or --suite DIR, not both")
        args.out, args.only, args.update = None, [], False
        return cmd_fidelity(args)
    if not args.scenario:
        raise CliError("compare needs a SCENARIO (or --suite DIR)")
    if args.per_request and ((args.runs or 1) > 1 or (args.seeds or 1) > 1):
        raise CliError("--per-request compares one run with one seed: drop --runs/--seeds")
    case = _case_file(args.scenario)
    if case is not None and args.per_request:
        raise CliError(f"{args.scenario} is a fidelity case: compare it without --per-request")
    if not args.per_request and (args.runs or args.seeds or case is not None):
        return _compare_distributions(args, case)
    data = _scenario(args)
    try:
        _sim, _meas, result = run_compare(
            data, seed=args.seed, progress=_progress(), python=args.python
        )
    except LabError as exc:
        raise _lab_error(exc) from None
    flask, lost = _compare_flask(data, _sim, _meas)
    result["flask"] = {**flask, "lost_updates": lost}
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        from .hooks_compare import format_hooks

        sys.stdout.write(format_comparison(result) + format_hooks(flask, lost))
    sys.stdout.flush()
    hooks_agree = flask["summary"]["agrees"] or not flask["rows"]
    lost_agrees = lost is None or lost["within"]
    return 0 if result["summary"]["agrees"] and hooks_agree and lost_agrees else 1


def _compare_flask(data: Any, simulated: Any, measured: Any) -> tuple[Any, Any]:
    """Hook order per request, and lost updates when the run increments a counter."""
    from .hooks_compare import compare_hooks, compare_lost_updates, lost_update_spread

    lost = None
    if "increments" in simulated.summary:
        lost = compare_lost_updates(lost_update_spread(data, list(range(1, 11))), measured)
    return compare_hooks(simulated, measured), lost


def _case_file(path: str) -> dict[str, Any] | None:
    """The fidelity case in ``path``, or None when it is not a case file."""
    from pathlib import Path

    from wsgiscope.app.commands.common import CliError

    from .fidelity import CaseError, load_case

    p = Path(path)
    if p.suffix != ".json" or not p.is_file():
        return None
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the scenario loader says what is wrong
    if not (isinstance(raw, dict) and "case" in raw and "scenario" in raw):
        return None
    try:
        return load_case(p)
    except CaseError as exc:
        raise CliError(str(exc)) from None


def _compare_distributions(args: argparse.Namespace, case: dict[str, Any] | None) -> int:
    from wsgiscope.app.commands.common import merge_profile

    from .distribution import check_families
    from .fidelity import format_case, run_case
    from .launcher import LabError

    if case is None:
        data = _scenario(args)
    else:
        data = case["scenario"]
        if args.profile:
            from pathlib import Path

            from wsgiscope.app.commands.common import CliError

            try:
                profile = json.loads(Path(args.profile).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CliError(f"{args.profile}: not a readable JSON profile ({exc})") from None
            data = merge_profile(data, profile, args.profile)
    families = case.get("judge") if case else None
    if args.judge:
        try:
            families = check_families([p.strip() for p in args.judge.split(",") if p.strip()])
        except ValueError as exc:
            from wsgiscope.app.commands.common import CliError

            raise CliError(f"--{exc}") from None
    runs = args.runs or (case["runs"] if case else 1)
    seeds = args.seeds or (case["seeds"] if case else 40)
    q = args.band if args.band is not None else (case.get("band_q", 0.0) if case else 0.0)
    try:
        result = run_case(data, runs, seeds, families, q=q, python=args.python,
                          seed=args.seed, progress=_progress())
    except LabError as exc:
        raise _lab_error(exc) from None
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(format_case(result))
    sys.stdout.flush()
    return 0 if result["agrees"] else 1


def cmd_fidelity(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wsgiscope.app.commands.common import CliError

    from .fidelity import CaseError, load_suite, run_suite
    from .fidelity_report import format_report, write_report

    suite = Path(args.suite)
    try:
        cases = load_suite(suite, args.only)
    except CaseError as exc:
        raise CliError(str(exc)) from None
    if args.stored and args.update:
        raise CliError("--update: nothing is measured with --stored")
    report = run_suite(
        cases, runs=args.runs, seeds=args.seeds, python=args.python, update=args.update,
        log=lambda m: print(m, file=sys.stderr, flush=True), stored=args.stored,
    )
    if args.stored and not args.out:
        print(f"{report['agree']} of {report['total']} cases agree with the kept figures",
              file=sys.stderr)
        sys.stdout.write(format_report(report))
    else:
        md, js = write_report(report, Path(args.out) if args.out else suite)
        print(f"{report['agree']} of {report['total']} cases agree; wrote {md} and {js}",
              file=sys.stderr)
        sys.stdout.write(md.read_text())
    return 0 if report["agree"] == report["total"] else 1


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
