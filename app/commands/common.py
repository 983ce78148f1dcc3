"""What the sub-commands share: the error a user can fix, reading a scenario argument (file,
standard input or preset) and a calibration profile, and the output formats."""

from __future__ import annotations

import copy
import json
import os
import sys
from typing import Any


class CliError(Exception):
    """A problem the user can fix; printed as ``wsgiscope: <message>``, exit status 2."""


FORMATS = ("json", "table", "csv", "trace")

#: The most bytes read from a scenario or profile file, or from standard input.
MAX_INPUT_BYTES = 1_000_000

#: Sections of a calibration profile merged into a scenario by ``--profile``.
PROFILE_SECTIONS = ("costs", "machine")


def _parse_json(text: str, where: str) -> Any:
    """Scenario JSON parsed safely (``simulator.validation.parse_scenario_text``: bounded
    size, no NaN or Infinity, bounded nesting); any problem is a one-line CliError."""
    from wsgiscope.simulator import ScenarioError
    from wsgiscope.simulator.validation import parse_scenario_text

    try:
        return parse_scenario_text(text, MAX_INPUT_BYTES)
    except ScenarioError as exc:
        try:  # a syntax error: say where, as a person counts lines
            json.loads(text)
        except json.JSONDecodeError as jexc:
            raise CliError(
                f"{where}: invalid JSON at line {jexc.lineno}, column {jexc.colno}: {jexc.msg}"
            ) from None
        except (ValueError, RecursionError):
            pass
        raise CliError(f"{where}: {exc.message}") from None


def _read_bounded(stream: Any, where: str) -> str:
    """At most :data:`MAX_INPUT_BYTES` of a binary (or text) stream, as text: ``/dev/zero``
    or an endless pipe is an error, not a hang."""
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise CliError(f"{where} is larger than {MAX_INPUT_BYTES:,} bytes; a scenario or "
                       f"profile may be at most that")
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CliError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    return str(data)


def _read_file(path: str, what: str) -> str:
    try:
        with open(path, "rb") as fh:
            return _read_bounded(fh, f"{what} file {path}")
    except FileNotFoundError:
        raise CliError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise CliError(f"{what} {path} is a directory, not a JSON file") from None
    except OSError as exc:
        raise CliError(f"cannot read {what} file {path}: {exc}") from None


def read_stdin() -> str:
    """Standard input, bounded (see :func:`_read_bounded`)."""
    return _read_bounded(getattr(sys.stdin, "buffer", sys.stdin), "standard input")


def add_lessons_flag(parser: Any) -> None:
    """``--lessons DIR`` (repeatable): a teacher's folders of lesson files."""
    parser.add_argument(
        "--lessons", metavar="DIR", action="append", default=None,
        help="a folder of your own <lesson-name>.json lesson files, shown beside the "
        "built-in ones; may be given more than once (default: $WSGISCOPE_LESSONS, a path "
        "list)",
    )


def load_lessons_arg(folders: list[str] | None) -> dict[str, Any]:
    """The built-in lessons and those in ``--lessons`` folders (without the flag, in
    ``$WSGISCOPE_LESSONS``). A bad lesson file is a ``CliError`` naming file and field."""
    from wsgiscope.simulator.lesson import LessonError

    from ..lessons import ENV, load_lessons

    try:
        return load_lessons(os.environ.get(ENV, "") if folders is None else folders)
    except LessonError as exc:
        raise CliError(str(exc)) from None


def load_scenario_arg(text: str, lessons: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scenario data from a command-line argument: ``-`` (standard input), a JSON file
    path, or a preset name (of ``lessons``, default the built-in ones). Raises
    ``CliError`` with one clear line on any problem; the data is not validated here
    (``simulator.load_scenario`` does that)."""
    from wsgiscope.simulator import presets

    if text == "-":
        data = _parse_json(read_stdin(), "standard input")
        where = "standard input"
    elif os.path.exists(text):
        data = _parse_json(_read_file(text, "scenario"), text)
        where = text
    else:
        try:
            preset = presets.get(text, lessons)
        except KeyError:
            if text.endswith(".json") or os.sep in text:
                raise CliError(f"scenario file not found: {text}") from None
            names = ", ".join(sorted(lessons or presets.PRESETS)) or "none"
            raise CliError(
                f"{text!r} is neither a scenario file nor a preset (presets: {names})"
            ) from None
        return copy.deepcopy(dict(preset.scenario))
    if not isinstance(data, dict):
        raise CliError(f"{where}: a scenario must be a JSON object, got {type(data).__name__}")
    return data


def merge_profile(scenario: dict[str, Any], profile: Any, where: str = "profile") -> dict[str, Any]:
    """A copy of ``scenario`` with the profile's ``costs`` and ``machine`` values laid over
    its own (other keys of the profile, e.g. when and where it was measured, are ignored)."""
    if not isinstance(profile, dict):
        raise CliError(f"{where}: a profile must be a JSON object with costs and/or machine")
    if not any(k in profile for k in PROFILE_SECTIONS):
        raise CliError(f'{where}: a profile needs a "costs" or "machine" object')
    out = copy.deepcopy(scenario)
    for section in PROFILE_SECTIONS:
        if section not in profile:
            continue
        values = profile[section]
        if not isinstance(values, dict):
            raise CliError(f"{where}: {section} must be an object")
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


def scenario_with_profile(scenario_arg: str, profile_path: str | None,
                          lessons: dict[str, Any] | None = None) -> dict[str, Any]:
    """The scenario named on the command line, with a ``--profile`` file laid over it."""
    data = load_scenario_arg(scenario_arg, lessons)
    if profile_path:
        profile = _parse_json(_read_file(profile_path, "profile"), profile_path)
        data = merge_profile(data, profile, profile_path)
    return data
