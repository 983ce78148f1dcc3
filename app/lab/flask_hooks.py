"""The lab app's hooks, error paths and counters: the scenario's Flask segments done with
real Flask.

* ``short_circuit``: a real ``before_request`` function that returns a response (after
  running the segments before it), so Flask skips the view.
* ``abort``: the view calls ``flask.abort``. ``raise``: the view raises :class:`LabError`
  (an ``errorhandler`` answers with its status) or :class:`LabUnhandled` (nothing does;
  ``errorhandler(500)`` when an endpoint raises ``500``).
* ``route``: ``missing`` registers no rule for the path; ``other_method`` registers it for
  POST only, and the driver sends GET.
* ``set_local`` / ``get_local``: a real ``threading.local()``.
* ``increment``: a real loop on a real module global, ``counter += 1`` (or ``counter =
  counter + one()``, or inside ``with lock:``), compiled once from the fixed source below
  into a namespace of its own per name. Nothing from the scenario is compiled or run: the
  name only picks the namespace.

Every hook appends ``[stage, time]`` to the request's record (``hooks``) as it runs, so the
measured order is the order Flask really ran them in; teardown notes the exception it
received. :func:`counters` turns the records into the run's increments and lost updates.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, Response, abort, request

from .recorder import now_ms

#: The increment loops, as a student would write them. Compiled once per counter name.
_LOOPS = """
counter = 0
lock = threading.Lock()


def one():
    return 1


def plain(n):
    global counter
    for _ in range(n):
        counter += 1


def call(n):
    global counter
    for _ in range(n):
        counter = counter + one()


def locked(n):
    global counter
    for _ in range(n):
        with lock:
            counter += 1
"""
_CODE = compile(_LOOPS, "<wsgiscope lab counters>", "exec")
_SPACES: dict[str, dict[str, Any]] = {}
_SPACES_LOCK = threading.Lock()
_LOCAL: Any = None


class LabError(Exception):
    """An exception the app has an ``errorhandler`` for: it answers ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(f"lab error {status}")
        self.status = status


class LabUnhandled(RuntimeError):
    """An exception no handler of its own catches: Flask answers 500."""


def mark(stage: str) -> None:
    """Note that ``stage`` starts now, in the current request's record."""
    rec = request.environ.get("wsgiscope.lab")
    if rec is not None:
        rec.setdefault("hooks", []).append([stage, now_ms()])


class ErrorStage(Flask):
    """Notes the ``error`` stage when Flask starts handling an exception (once a request:
    an unhandled one passes through both methods)."""

    def _error_stage(self) -> None:
        rec = request.environ.get("wsgiscope.lab")
        if rec is not None and not rec.get("error_marked"):
            rec["error_marked"] = True
            mark("error")

    def handle_user_exception(self, e: Exception) -> Any:
        self._error_stage()
        return super().handle_user_exception(e)

    def handle_exception(self, e: Exception) -> Response:
        self._error_stage()
        return super().handle_exception(e)


def plan_of(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """What an endpoint's segments ask of the app: its route, its short circuit (and the
    segments before it), its view's segments."""
    last = segments[-1] if segments else {}
    if "route" in last:
        return {"route": last["route"], "before": [], "view": []}
    if "short_circuit" in last:
        return {"route": "", "before": segments[:-1], "view": [],
                "short_circuit": int(last["short_circuit"])}
    return {"route": "", "before": [], "view": segments}


def handles_500(scenario: dict[str, Any]) -> bool:
    return any(seg.get("raise") == 500 for segs in scenario.get("endpoints", {}).values()
               for seg in segs)


def install(app: Flask, scenario: dict[str, Any], run_segments: Any) -> None:
    """Register the hooks and handlers; ``run_segments(segments)`` runs plain segments
    (cpu, io, globals) the way the view does. Call after the lab's own timing hooks and
    before the routes."""
    plans = {f"ep{i}": plan_of(segs)
             for i, segs in enumerate(scenario.get("endpoints", {}).values())}

    @app.before_request
    def _short_circuit() -> Any:
        mark("before_request")
        plan = plans.get(request.endpoint or "")
        if plan is None or "short_circuit" not in plan:
            return None
        run_segments(plan["before"])
        return Response("refused by before_request\n", status=plan["short_circuit"],
                        mimetype="text/plain")

    @app.errorhandler(LabError)
    def _lab_error(e: LabError) -> Any:
        return Response(f"handled: {e.status}\n", status=e.status, mimetype="text/plain")

    if handles_500(scenario):
        @app.errorhandler(500)
        def _server_error(e: Exception) -> Any:
            return Response("our own 500 page\n", status=500, mimetype="text/plain")

    @app.teardown_request
    def _teardown(exc: BaseException | None) -> None:
        mark("teardown")
        rec = request.environ.get("wsgiscope.lab")
        if rec is not None and exc is not None:
            rec["teardown_exc"] = type(exc).__name__

    @app.after_request
    def _after(resp: Response) -> Response:  # registered last: runs first
        mark("after_request")
        return resp


def add_routes(app: Flask, scenario: dict[str, Any], make_view: Any) -> None:
    """The scenario's routes: a path that no route serves gets none, ``other_method`` a
    POST-only rule."""
    for i, (path, segments) in enumerate(scenario.get("endpoints", {}).items()):
        plan = plan_of(segments)
        if plan["route"] == "missing":
            continue
        methods = ["POST"] if plan["route"] == "other_method" else None
        app.add_url_rule(path, endpoint=f"ep{i}", view_func=make_view(path, plan["view"]),
                         methods=methods)


def _thread_local() -> Any:
    """The app's ``threading.local()``, made at first use: in a gevent worker that is after
    gunicorn's monkey-patching, so it is gevent's greenlet-local."""
    global _LOCAL
    with _SPACES_LOCK:
        if _LOCAL is None:
            _LOCAL = threading.local()
        return _LOCAL


def run_special(seg: dict[str, Any]) -> str | None:
    """Run a segment the plain loop does not know; return its kind (None if not one).
    ``abort`` and ``raise`` do not return."""
    rec = request.environ.get("wsgiscope.lab")
    if "set_local" in seg:
        setattr(_thread_local(), seg["set_local"], rec.get("req") if rec else None)
        return "set_local"
    if "get_local" in seg:
        seen = getattr(_thread_local(), seg["get_local"], None)
        if rec is not None:
            rec.setdefault("seen", []).append(["local", seg["get_local"], seen])
        return "get_local"
    if "increment" in seg:
        increment(seg["increment"], int(seg.get("times", 1)), bool(seg.get("call")),
                  bool(seg.get("lock")))
        return "increment"
    if "abort" in seg:
        abort(int(seg["abort"]))
    if "raise" in seg:
        if seg["raise"] == "unhandled" or seg["raise"] == 500:
            raise LabUnhandled("the view failed")
        raise LabError(int(seg["raise"]))
    return None


def _space(name: str) -> dict[str, Any]:
    with _SPACES_LOCK:
        space = _SPACES.get(name)
        if space is None:
            space = {"threading": threading}
            exec(_CODE, space)  # the fixed source above, never the scenario's
            _SPACES[name] = space
        return space


def increment(name: str, times: int, call: bool, lock: bool) -> None:
    """Run the loop and note in the record what the counter held after it."""
    space = _space(name)
    loop = space["locked" if lock else "call" if call else "plain"]
    loop(times)
    value, t = space["counter"], now_ms()
    rec = request.environ.get("wsgiscope.lab")
    if rec is not None:
        rec.setdefault("counts", []).append([name, times, value, t])


def counters(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Increments made, the counters' final values (per process, summed) and the updates
    lost, by counter name, from the request records of a run. A process's final value is
    what its last loop to end read after it."""
    last: dict[tuple[Any, str], tuple[float, int]] = {}
    out: dict[str, dict[str, int]] = {}
    for rec in records:
        for name, times, value, t in rec.get("counts") or []:
            row = out.setdefault(name, {"increments": 0, "counted": 0, "lost": 0})
            row["increments"] += int(times)
            key = (rec.get("pid"), name)
            if key not in last or t > last[key][0]:
                last[key] = (t, int(value))
    for (_pid, name), (_t, value) in last.items():
        out[name]["counted"] += value
    for row in out.values():
        row["lost"] = row["increments"] - row["counted"]
    return out
