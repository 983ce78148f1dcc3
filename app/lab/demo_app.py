"""The lab's instrumented Flask app: the scenario's endpoints, done for real.

Each endpoint runs its segments in order:

* ``cpu_ms``: pure-Python arithmetic until the *thread's own* CPU time has advanced by that
  much (``time.thread_time``), so time spent waiting for the GIL or a core is not counted
  as work -- exactly what the simulator means by a CPU segment.
* ``io_ms``: ``time.sleep``, a blocking call that releases the GIL (and yields to other
  greenlets under gevent, which patches it).
* ``set_global`` / ``get_global``: write / read a module-level dict shared by every thread
  of the process; ``set_g`` / ``get_g``: the same with :data:`flask.g`, which is
  per-request. What a ``get`` saw is recorded, so a leak between requests shows up.
* Flask's own paths and the increment loops (``short_circuit``, ``abort``, ``raise``,
  ``route``, ``increment``): real hooks, handlers and loops, in :mod:`.flask_hooks`.

The driver names each request (``X-Lab-Req``) and may pin its segment values
(``X-Lab-Seg``, JSON list of concrete segments) so random durations match the simulation;
without that header values are drawn from the scenario's distributions.

Flask hooks record the lifecycle stages into the per-request record kept in the WSGI
environ (``wsgiscope.lab``); the server side (werkzeug handler or gunicorn hooks) adds the
accept, parse and write times and writes the record through :class:`RecordSink`.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from typing import Any

from flask import Flask, Response, g, request
from flask.ctx import RequestContext

from . import flask_hooks
from .recorder import ENVIRON_KEY as ENVIRON_KEY
from .recorder import now_ms, thread_cpu_ms

#: State shared by every request of a process: the thing ``set_global`` teaches about.
GLOBALS: dict[str, Any] = {}


def burn_cpu(ms: float) -> None:
    """Spin pure-Python bytecode until this thread has used ``ms`` of CPU time.

    Like real CPU-bound Python code it makes no system call while it runs: the thread's CPU
    clock is a system call (no vDSO), and asking it every few microseconds changed how the
    GIL is handed over (beside three such threads, an I/O thread's wait for the GIL had a
    tail twice as long as beside pure loops). A thread's CPU time cannot grow faster than
    the monotonic clock, which is read without a system call: so spin until as much
    monotonic time as CPU time is left has passed, then ask the CPU clock once; that is one
    system call per stretch the thread was off its core or off the GIL, plus one.
    """
    end = thread_cpu_ms() + ms
    x = 0
    while True:
        left = end - thread_cpu_ms()
        if left <= 0:
            return
        until = now_ms() + left
        while now_ms() < until:
            for i in range(64):
                x += i * i


def draw(value: Any, rng: random.Random) -> float:
    """A concrete duration from a scenario value (number, {"exp": m}, {"uniform": [a, b]})."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict) and "exp" in value:
        mean = float(value["exp"])
        return rng.expovariate(1.0 / mean) if mean > 0 else 0.0
    if isinstance(value, dict) and "uniform" in value:
        lo, hi = value["uniform"]
        return rng.uniform(float(lo), float(hi))
    raise ValueError(f"unsupported segment value {value!r}")


def concrete_segments(segments: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The endpoint's segments with every random duration drawn."""
    out: list[dict[str, Any]] = []
    for seg in segments:
        if "cpu_ms" in seg:
            out.append({"cpu_ms": draw(seg["cpu_ms"], rng)})
        elif "io_ms" in seg:
            out.append({"io_ms": draw(seg["io_ms"], rng)})
        else:
            out.append(dict(seg))
    return out


class _LabRequestContext(RequestContext):
    def match_request(self) -> None:
        rec = self.request.environ.get(ENVIRON_KEY)
        if rec is not None:
            rec["match_start"] = now_ms()
        super().match_request()


class LabFlask(flask_hooks.ErrorStage):
    """Flask with the URL-matching step and exception handling timed (the rest uses
    ordinary hooks)."""

    def request_context(self, environ: dict[str, Any]) -> RequestContext:
        return _LabRequestContext(self, environ)


class _Middleware:
    """Times the WSGI call as a whole and tags the record with thread and CPU time."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        rec = environ.setdefault(ENVIRON_KEY, {})
        rec["app_start"] = now_ms()
        rec.setdefault("cpu0", thread_cpu_ms())
        rec.setdefault("tid", threading.get_ident())
        rec.setdefault("ntid", threading.get_native_id())  # the thread's id in /proc
        req = environ.get("HTTP_X_LAB_REQ")
        rec["req"] = int(req) if req and req.isdigit() else None
        rec["path"] = environ.get("PATH_INFO", "")
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            rec["app_end"] = now_ms()


def create_app(scenario: dict[str, Any], seed: int | None = None) -> Flask:
    """A Flask app serving the scenario's endpoints, instrumented for the lab."""
    app = LabFlask("wsgiscope_lab")
    rng = random.Random(f"{seed}-{os.getpid()}")

    def _rec() -> dict[str, Any]:
        rec: dict[str, Any] = request.environ.setdefault(ENVIRON_KEY, {})
        return rec

    @app.before_request
    def _before() -> None:  # registered first: runs first
        _rec()["before_start"] = now_ms()

    @app.after_request
    def _after(resp: Response) -> Response:  # registered first: runs last
        rec = _rec()
        rec["after_end"] = now_ms()
        rec["status"] = resp.status_code
        return resp

    @app.teardown_appcontext
    def _teardown(exc: BaseException | None) -> None:
        rec = request.environ.get(ENVIRON_KEY) if request else None
        if rec is not None:
            rec["teardown_end"] = now_ms()
            if exc is not None:
                rec["exception"] = type(exc).__name__

    def run_segments(segs: list[dict[str, Any]]) -> None:
        rec = _rec()
        req_id = rec.get("req")
        done: list[list[Any]] = rec.setdefault("segs", [])
        seen: list[list[Any]] = rec.setdefault("seen", [])
        for seg in segs:
            t0, c0 = now_ms(), thread_cpu_ms()
            if "cpu_ms" in seg:
                kind = "cpu"
                burn_cpu(float(seg["cpu_ms"]))
            elif "io_ms" in seg:
                kind = "io"
                # A real blocking call: releases the GIL (a greenlet switch under gevent).
                time.sleep(float(seg["io_ms"]) / 1000.0)
            elif "set_global" in seg:
                kind = "set_global"
                GLOBALS[seg["set_global"]] = req_id
            elif "get_global" in seg:
                kind = "get_global"
                seen.append(["global", seg["get_global"], GLOBALS.get(seg["get_global"])])
            elif "set_g" in seg:
                kind = "set_g"
                setattr(g, seg["set_g"], req_id)
            elif "get_g" in seg:
                kind = "get_g"
                seen.append(["g", seg["get_g"], getattr(g, seg["get_g"], None)])
            else:
                found = flask_hooks.run_special(seg)  # abort and raise do not return
                if found is None:
                    continue
                kind = found
            done.append([kind, t0, now_ms(), thread_cpu_ms() - c0])

    flask_hooks.install(app, scenario, run_segments)

    def make_view(path: str, segments: list[dict[str, Any]]) -> Any:
        def view() -> Response:
            rec = _rec()
            rec["view_start"] = now_ms()
            flask_hooks.mark("view")
            pinned = request.headers.get("X-Lab-Seg")
            segs = json.loads(pinned) if pinned else concrete_segments(segments, rng)
            try:
                run_segments(segs)
            finally:
                rec["view_end"] = now_ms()
            return Response(f"{path} done\n", mimetype="text/plain")

        view.__name__ = "ep_" + "".join(c if c.isalnum() else "_" for c in path)
        return view

    flask_hooks.add_routes(app, scenario, make_view)

    app.wsgi_app = _Middleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


def from_env() -> Flask:
    """Factory for servers started by the launcher (reads ``$WSGISCOPE_LAB_CONFIG``)."""
    from .recorder import load_config

    cfg = load_config()
    return create_app(cfg["scenario"], cfg.get("seed"))
