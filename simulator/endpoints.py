"""The segments an endpoint is made of, and their checks.

An endpoint is a list of segments a request to it runs, in order. They describe what a
Flask app does; none of them is code, and nothing a user writes is ever run.

================================== ===========================================================
segment                            what the app does
================================== ===========================================================
``{"cpu_ms": v}``                  Python bytecode: needs the GIL and a core
``{"io_ms": v}``                   a blocking call (sleep, database, HTTP): lets the GIL go
``{"set_global": name}``           writes a module global (shared by every thread)
``{"get_global": name}``           reads it back
``{"set_g": name}`` / ``get_g``    the same with ``flask.g`` (one request's own)
``{"set_local": name}`` / ...       the same with a ``threading.local()`` (one thread's own:
                                   a pool thread keeps it from one request to the next;
                                   under gevent, one greenlet's)
``{"increment": name, ...}``       ``for _ in range(times): name += 1`` on a module global;
                                   ``"call": true`` is ``name = name + f()`` (a call between
                                   the load and the store), ``"lock": true`` wraps it in
                                   ``with lock:``; ``times`` defaults to 1
``{"short_circuit": status}``      a ``before_request`` function returns a response (401 when
                                   a login is refused, 302 to a login page, 200 from a
                                   cache): the view is skipped, ``after_request`` still runs;
                                   segments before it run inside that ``before_request``
``{"abort": status}``              the view calls ``abort(status)`` (an HTTP error werkzeug
                                   knows, :data:`HTTP_ERRORS`)
``{"raise": "unhandled"}``         the view raises an exception nothing handles: Flask's
                                   ``handle_exception`` answers 500 and teardown receives it
``{"raise": 500}``                 the same, caught by an ``errorhandler(500)``
``{"raise": status}``              an exception class with its own ``errorhandler``, which
                                   answers ``status`` (400-599, not 500)
``{"route": "missing"}``           no URL rule matches the path: 404
``{"route": "other_method"}``      the rule exists for another method only: 405
================================== ===========================================================

``short_circuit``, ``abort`` and ``raise`` end what runs: nothing may follow them. A
``route`` segment is its endpoint's only segment (there is no view to run). An
``errorhandler(500)`` belongs to the whole app, so one endpoint raising ``500`` and another
raising ``"unhandled"`` cannot be in the same scenario. Which hooks run for each, and in
which order, is :mod:`.dispatch`.
"""

from __future__ import annotations

from typing import Any

from .validation import ScenarioError, boolean, field_key, number, short_text, show

SEGMENT_MAX_MS = 600_000.0
STORE_OPS = ("set_global", "get_global", "set_g", "get_g", "set_local", "get_local")
#: Segments after which nothing else runs.
ENDINGS = ("short_circuit", "abort", "raise")
SEGMENT_KINDS = ("cpu_ms", "io_ms", *STORE_OPS, "increment", *ENDINGS, "route")
ROUTES = ("missing", "other_method")
#: The status codes ``abort()`` accepts: werkzeug 3.1's ``default_exceptions``.
HTTP_ERRORS = (
    400, 401, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421,
    422, 423, 424, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
)  # fmt: skip
#: ``for _ in range(times)`` at most this many times per segment.
MAX_INCREMENTS = 10_000_000

_SHAPE = ('must be one segment, e.g. {"cpu_ms": 5}, {"io_ms": 20}, {"increment": "counter"}, '
          '{"short_circuit": 401}, {"abort": 404}, {"raise": "unhandled"}, {"route": "missing"}')


def duration(path: str, value: Any) -> Any:
    """A duration in ms: a number, ``{"exp": mean}`` or ``{"uniform": [lo, hi]}``."""
    check = number(0, SEGMENT_MAX_MS)
    if isinstance(value, dict):
        if len(value) != 1:
            raise ScenarioError(path, 'must be a number, {"exp": mean} or {"uniform": [lo, hi]}')
        ((dist, arg),) = value.items()
        if dist == "exp":
            return {"exp": check(f"{path}.exp", arg)}
        if dist == "uniform":
            if not isinstance(arg, list) or len(arg) != 2:
                raise ScenarioError(f"{path}.uniform", f"must be a list [lo, hi] (got {show(arg)})")
            lo = check(f"{path}.uniform[0]", arg[0])
            hi = check(f"{path}.uniform[1]", arg[1])
            if hi < lo:
                raise ScenarioError(f"{path}.uniform", f"needs lo <= hi (got [{lo:g}, {hi:g}])")
            return {"uniform": [lo, hi]}
        raise ScenarioError(
            path, f'unknown distribution {show(dist)} (allowed: "exp", "uniform")'
        )
    return check(path, value)


def segment(path: str, seg: Any) -> dict[str, Any]:
    """One clean segment, or :class:`ScenarioError` naming ``path`` (``endpoints./x[0]``)."""
    if not isinstance(seg, dict) or not seg:
        raise ScenarioError(path, f"{_SHAPE} (got {show(seg)})")
    kind = next(iter(seg))
    if kind == "increment":
        return _increment(path, seg)
    if len(seg) != 1:
        raise ScenarioError(path, f"{_SHAPE} (got {show(seg)})")
    value = seg[kind]
    where = f"{path}.{field_key(kind)}"
    if kind in ("cpu_ms", "io_ms"):
        return {kind: duration(where, value)}
    if kind in STORE_OPS:
        return {kind: short_text(64)(where, value)}
    if kind == "short_circuit":
        return {kind: number(200, 599, True, "the status of the response the hook returns")(
            where, value)}
    if kind == "abort":
        if isinstance(value, bool) or value not in HTTP_ERRORS:
            raise ScenarioError(where, f"must be an HTTP error status abort() knows (400-505, "
                                f"e.g. 401, 403, 404, 409, 500) (got {show(value)})")
        return {kind: int(value)}
    if kind == "raise":
        if value == "unhandled":
            return {kind: value}
        if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
            raise ScenarioError(where, 'must be "unhandled" (no handler: 500), 500 (caught by '
                                "errorhandler(500)) or the 400-599 status an errorhandler "
                                f"answers with (got {show(value)})")
        return {kind: int(value)}
    if kind == "route":
        if value not in ROUTES:
            raise ScenarioError(where, f'must be "missing" (404) or "other_method" (405) '
                                f"(got {show(value)})")
        return {kind: value}
    raise ScenarioError(where, "is not a segment kind (allowed: " + ", ".join(SEGMENT_KINDS) + ")")


def _increment(path: str, seg: dict[str, Any]) -> dict[str, Any]:
    for key in seg:
        if key not in ("increment", "times", "call", "lock"):
            raise ScenarioError(f"{path}.{field_key(key)}",
                                "is not a field of an increment (allowed: increment, times, "
                                "call, lock)")
    name = short_text(64)(f"{path}.increment", seg["increment"])
    if not name:
        raise ScenarioError(f"{path}.increment", "must name the global (e.g. \"counter\")")
    return {
        "increment": name,
        "times": number(1, MAX_INCREMENTS, True)(f"{path}.times", seg.get("times", 1)),
        "call": boolean(f"{path}.call", seg.get("call", False)),
        "lock": boolean(f"{path}.lock", seg.get("lock", False)),
    }


def segments(where: str, raw: Any) -> list[dict[str, Any]]:
    """An endpoint's segments, checked one by one and as a sequence."""
    if not isinstance(raw, list) or len(raw) > 100:
        raise ScenarioError(where, f"must be a list of at most 100 segments (got {show(raw)})")
    clean = [segment(f"{where}[{i}]", seg) for i, seg in enumerate(raw)]
    for i, seg in enumerate(clean):
        kind = next(iter(seg))
        if kind == "route" and len(clean) > 1:
            raise ScenarioError(f"{where}[{i}].route", "must be the endpoint's only segment: a "
                                "path no route serves has no view to run")
        if kind in ENDINGS and i + 1 < len(clean):
            after = "the view is skipped" if kind == "short_circuit" else "the view has raised"
            raise ScenarioError(f"{where}[{i + 1}]", f"cannot follow {kind}: {after}, so "
                                "nothing after it runs")
    return clean


def check_app(endpoints: dict[str, list[dict[str, Any]]], machine: dict[str, Any]) -> None:
    """Checks across endpoints and sections: what one app and one machine allow."""
    caught: str | None = None
    unhandled: str | None = None
    for path, segs in endpoints.items():
        for i, seg in enumerate(segs):
            where = f"endpoints.{field_key(path)}[{i}]"
            if seg.get("raise") == 500:
                caught = caught or where
            elif seg.get("raise") == "unhandled":
                unhandled = unhandled or where
            if "increment" in seg and not machine["gil"]:
                raise ScenarioError(f"{where}.increment", "the lost-update model needs a GIL "
                                    "(machine.gil true): free-threaded runs are not modelled")
    if caught and unhandled:
        raise ScenarioError(f"{unhandled}.raise", f'"unhandled" cannot be used beside {caught} '
                            "raising 500: errorhandler(500) belongs to the whole app, so it "
                            "would catch this exception too")


def app_handles_500(endpoints: dict[str, list[dict[str, Any]]]) -> bool:
    """Whether the app registers an ``errorhandler(500)`` (an endpoint raises ``500``)."""
    return any(seg.get("raise") == 500 for segs in endpoints.values() for seg in segs)
