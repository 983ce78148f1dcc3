"""``wsgiscope simulate`` and ``wsgiscope presets``.

``simulate`` runs a scenario -- a JSON file, ``-`` for standard input, or the name of a
built-in preset -- through the simulator and prints the result as JSON (DESIGN.md's result
format), a plain-text table, CSV, or a Chrome trace for Perfetto.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from typing import Any

FORMATS = ("json", "table", "csv", "trace")

#: Sections of a calibration profile merged into a scenario by ``--profile``.
PROFILE_SECTIONS = ("costs", "machine")


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
        "--seed", type=int, default=None, help="random seed (default: the scenario's own)"
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
    p.set_defaults(func=cmd_simulate)

    q = subparsers.add_parser(
        "presets",
        help="list the built-in scenarios",
        description="List the built-in scenarios: name, title and the lesson each teaches.",
    )
    q.set_defaults(func=cmd_presets)


def _cli_error(message: str) -> Exception:
    from .cli import CliError

    return CliError(message)


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _cli_error(
            f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def _read_file(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise _cli_error(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise _cli_error(f"{what} {path} is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _cli_error(f"cannot read {what} file {path}: {exc}") from None


def load_scenario_arg(text: str) -> dict[str, Any]:
    """Scenario data from a command-line argument: ``-`` (standard input), a JSON file
    path, or a preset name. Raises ``CliError`` with one clear line on any problem; the
    data is not validated here (``simulator.load_scenario`` does that)."""
    from wsgiscope.simulator import presets

    if text == "-":
        data = _parse_json(sys.stdin.read(), "standard input")
        where = "standard input"
    elif os.path.exists(text):
        data = _parse_json(_read_file(text, "scenario"), text)
        where = text
    else:
        try:
            preset = presets.get(text)
        except KeyError:
            if text.endswith(".json") or os.sep in text:
                raise _cli_error(f"scenario file not found: {text}") from None
            names = ", ".join(sorted(presets.PRESETS)) or "none"
            raise _cli_error(
                f"{text!r} is neither a scenario file nor a preset (presets: {names})"
            ) from None
        return copy.deepcopy(dict(preset.scenario))
    if not isinstance(data, dict):
        raise _cli_error(f"{where}: a scenario must be a JSON object, got {type(data).__name__}")
    return data


def merge_profile(scenario: dict[str, Any], profile: Any, where: str = "profile") -> dict[str, Any]:
    """A copy of ``scenario`` with the profile's ``costs`` and ``machine`` values laid over
    its own (other keys of the profile, e.g. when and where it was measured, are ignored)."""
    if not isinstance(profile, dict):
        raise _cli_error(f"{where}: a profile must be a JSON object with costs and/or machine")
    if not any(k in profile for k in PROFILE_SECTIONS):
        raise _cli_error(f'{where}: a profile needs a "costs" or "machine" object')
    out = copy.deepcopy(scenario)
    for section in PROFILE_SECTIONS:
        if section not in profile:
            continue
        values = profile[section]
        if not isinstance(values, dict):
            raise _cli_error(f"{where}: {section} must be an object")
        base = out.get(section) or {}
        if not isinstance(base, dict):
            base = {}
        out[section] = {**base, **values}
    return out


def render(trace: Any, fmt: str) -> str:
    """A Trace in one of :data:`FORMATS`, as text ending in a newline."""
    from wsgiscope.simulator import export

    if fmt == "json":
        return json.dumps(export.to_json(trace), indent=2) + "\n"
    if fmt == "csv":
        return export.to_csv(trace)
    if fmt == "trace":
        return json.dumps(export.to_chrome_trace(trace)) + "\n"
    return export.to_table(trace)


def scenario_with_profile(scenario_arg: str, profile_path: str | None) -> dict[str, Any]:
    """The scenario named on the command line, with a ``--profile`` file laid over it."""
    data = load_scenario_arg(scenario_arg)
    if profile_path:
        profile = _parse_json(_read_file(profile_path, "profile"), profile_path)
        data = merge_profile(data, profile, profile_path)
    return data


def cmd_simulate(args: argparse.Namespace) -> int:
    from wsgiscope import simulator

    data = scenario_with_profile(args.scenario, args.profile)
    scenario = simulator.load_scenario(data)  # ScenarioError -> one line, exit 2
    trace = simulator.run(scenario, seed=args.seed)
    sys.stdout.write(render(trace, args.format))
    sys.stdout.flush()
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from wsgiscope.simulator import presets

    items = list(presets.PRESETS.values())
    if not items:
        print("no presets")
        return 0
    width = max(len(p.name) for p in items)
    for p in items:
        print(f"{p.name.ljust(width)}  {p.title}")
        print(f"{' ' * width}  {p.lesson}")
    return 0
