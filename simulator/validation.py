"""Checks for scenario data that hold for any input: the building blocks of
:func:`~wsgiscope.simulator.scenario.load_scenario`.

Every checker takes ``(field_path, value)`` and returns the clean value or raises
:class:`ScenarioError` with a one-line message, ``"<field path>: <what is wrong and what
is allowed>"``: numbers finite and in range, one type per field, paths plain URL paths
(:data:`PATH_RULE`). Values are shown in messages by :func:`show`, which never recurses and
never prints anything huge. :func:`check_depth` bounds nesting without recursing, and
:func:`parse_scenario_text` turns text from a user (a file, a form, a socket) into data
safely: bounded size, no ``NaN`` or ``Infinity``, bounded nesting.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: A scenario's ``seed`` is a whole number from 0 to ``SEED_MAX`` (2**32 - 1): every seed
#: fits an unsigned 32-bit field and a JavaScript number exactly.
SEED_MAX = 2**32 - 1

#: Deepest nesting of objects and lists a scenario may have (a valid one needs 6).
MAX_DEPTH = 16
#: Most values (objects, lists, numbers, strings) a scenario may hold in all.
MAX_NODES = 1_000_000
#: Default cap on the size of scenario text, in bytes (UTF-8).
MAX_TEXT_BYTES = 1_000_000

#: The characters of an endpoint path after its leading ``/``, as a regular expression
#: class: letters, digits and ``. _ ~ / -`` (RFC 3986 unreserved characters and ``/``).
PATH_CHARS = "A-Za-z0-9._~/-"
PATH_MAX = 100
_PATH_RE = re.compile(rf"/[{PATH_CHARS}]{{0,{PATH_MAX - 1}}}")
PATH_RULE = (
    f"a plain URL path: start with '/', then at most {PATH_MAX - 1} of the characters "
    "A-Z a-z 0-9 . _ ~ / - (no '.' or '..' segment, no '//')"
)


class ScenarioError(ValueError):
    """A scenario field is missing, unknown, of the wrong type or out of range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def show(value: Any) -> str:
    """A short, one-line, safe description of any value for an error message (never
    recursive, never huge: a 5,000-digit integer or a nested list is summarised)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        if -(10**15) < value < 10**15:
            return repr(value)
        return f"a number of about {max(1, int(value.bit_length() * 0.30103))} digits"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "an infinite or oversized number"
        return f"{value:g}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object with {len(value)} field{'' if len(value) == 1 else 's'}"
    return f"a {type(value).__name__}"


def field_key(key: Any) -> str:
    """An object key as it appears in a field path: as written when plain, quoted otherwise."""
    if isinstance(key, str) and 0 < len(key) <= 60 and key.isprintable() and key.strip() == key:
        return key
    return show(key)


def bound(x: float) -> str:
    """A bound as people write it: 4294967295, 0.001, 1e+09 only when not whole."""
    if x == int(x) and abs(x) < 1e16:
        return str(int(x))
    return f"{x:g}"


def check_seed(value: Any, field: str = "seed") -> int:
    """A seed from anywhere (scenario, command line, socket message): a whole number from
    0 to :data:`SEED_MAX`, else :class:`ScenarioError` naming ``field``."""
    return int(number(0, SEED_MAX, True)(field, value))


def number(lo: float, hi: float, integer: bool = False, why: str = "") -> Any:
    """A checker for a finite number from ``lo`` to ``hi`` (a whole one if ``integer``);
    ``why`` is added to the out-of-range message."""

    def check(path: str, value: Any) -> float | int:
        kind = "a whole number" if integer else "a number"
        span = f"between {bound(lo)} and {bound(hi)}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(path, f"must be {kind} {span} (got {show(value)})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ScenarioError(path, f"must be a finite number {span} (got {show(value)})")
        if integer and value != int(value):
            raise ScenarioError(path, f"must be {kind} {span} (got {show(value)})")
        if not lo <= value <= hi:
            tail = f": {why}" if why else ""
            raise ScenarioError(path, f"must be {span} (got {show(value)}){tail}")
        return int(value) if integer else float(value)

    return check


def boolean(path: str, value: Any) -> bool:
    """``true`` or ``false``, nothing else (not 0, 1 or "yes")."""
    if not isinstance(value, bool):
        raise ScenarioError(path, f"must be true or false (got {show(value)})")
    return value


def choice(*options: str) -> Any:
    """A checker for one of ``options`` (strings)."""

    def check(path: str, value: Any) -> str:
        if not isinstance(value, str) or value not in options:
            allowed = ", ".join(repr(o) for o in options)
            raise ScenarioError(path, f"must be one of {allowed} (got {show(value)})")
        return value

    return check


def short_text(max_len: int) -> Any:
    """A checker for a string of at most ``max_len`` characters."""

    def check(path: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_len:
            raise ScenarioError(
                path, f"must be text of at most {max_len} characters (got {show(value)})"
            )
        return value

    return check


def url_path(field: str, value: Any) -> str:
    """An endpoint path: see :data:`PATH_RULE`."""
    if not isinstance(value, str):
        raise ScenarioError(field, f"must be {PATH_RULE} (got {show(value)})")
    segments = value.split("/")[1:]
    if (
        _PATH_RE.fullmatch(value) is None
        or "//" in value
        or any(seg in (".", "..") for seg in segments)
    ):
        raise ScenarioError(field, f"must be {PATH_RULE} (got {show(value)})")
    return value


#: A scenario's top-level fields.
TOP = ("name", "description", "server", "machine", "costs", "endpoints", "workload", "client",
       "seed")


def check_top(data: dict[str, Any]) -> None:
    """Raise :class:`ScenarioError` for a top-level key that is not a scenario field."""
    for key in data:
        if key not in TOP:
            raise ScenarioError(field_key(key), f"is not a known field (allowed: {', '.join(TOP)})")


def check_depth(data: Any, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Raise :class:`ScenarioError` if ``data`` nests objects and lists deeper than
    ``max_depth`` or holds more than ``max_nodes`` values. Iterative: it never recurses, and
    it stops at the first level too deep, so it is safe on any input, cycles included."""
    if not isinstance(data, dict | list | tuple):
        return
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    seen = 0
    while stack:
        value, depth, where = stack.pop()
        seen += 1
        if seen > max_nodes:
            raise ScenarioError("scenario", f"holds more than {max_nodes:,} values")
        if depth >= max_depth:
            raise ScenarioError(
                where or "scenario",
                f"nests objects and lists more than {max_depth} levels deep",
            )
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in pairs:
            if isinstance(child, dict | list | tuple):
                if isinstance(value, dict):
                    child_where = f"{where}.{field_key(key)}" if where else field_key(key)
                else:
                    child_where = f"{where or 'scenario'}[{key}]"
                stack.append((child, depth + 1, child_where))
            else:
                seen += 1
        if seen > max_nodes:
            raise ScenarioError("scenario", f"holds more than {max_nodes:,} values")


def _reject_constant(name: str) -> Any:
    raise ScenarioError(
        "scenario", f"{name} is not a number JSON allows: every number must be finite"
    )


def _parse_int(text: str) -> int | float:
    # Longer than any bound in a scenario: let the field's check say "out of range"
    # instead of int() refusing a 5,000-digit literal (sys.get_int_max_str_digits).
    return int(text) if len(text) <= 40 else float(text)


def parse_scenario_text(text: str | bytes, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """Parse scenario JSON text from a user safely; return the data for :func:`load_scenario`.

    At most ``max_bytes`` bytes of UTF-8; ``NaN``, ``Infinity`` and ``-Infinity`` are
    refused; nesting is bounded (:func:`check_depth`). Every problem -- too big, not UTF-8,
    not JSON, too deep -- is a one-line :class:`ScenarioError` with field ``"scenario"``
    (or the path of a value nested too deep), never another exception.
    """
    size = len(text)
    if size <= max_bytes and isinstance(text, str):
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ScenarioError(
            "scenario", f"is {size:,} bytes; a scenario may be at most {max_bytes:,} bytes"
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ScenarioError("scenario", f"is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except RecursionError:
        raise ScenarioError(
            "scenario", f"nests objects and lists more than {MAX_DEPTH} levels deep"
        ) from None
    except ValueError as exc:
        if isinstance(exc, ScenarioError):
            raise
        detail = " ".join(str(exc).split())[:200]
        raise ScenarioError("scenario", f"is not valid JSON ({detail})") from None
    check_depth(data)
    return data
