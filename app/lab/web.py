"""The lab over HTTP: a Flask blueprint ``bp`` the web app registers.

* ``POST /lab/run`` -- form or JSON field ``scenario`` (the scenario as JSON text; a JSON
  body may also give the object itself). Starts a measured run and its simulation in the
  background and answers ``202 {"run_id": ...}``. Refused, before anything starts, with
  ``403`` when ``app.config["LAB_ENABLED"]`` is false, ``422 {"field", "error"}`` for a
  bad scenario or one outside the lab's bounds (:func:`check_cost`: at most
  :data:`MAX_WORKERS` worker processes, :data:`MAX_THREADS` threads in all, a request's
  work at most :data:`MAX_REQUEST_S` s, :data:`MAX_CPU_S` s of CPU work in all, 2,000
  requests sent over at most 120 s), and ``409`` while another run of this instance is in
  progress. (The app's guards, :mod:`wsgiscope.app.security`, also ask every lab request
  for the instance's token.)
* ``GET /lab/status/<run_id>`` -- ``{"state": "running"|"done"|"failed", "progress": 0..1,
  "message"}``.
* ``GET /lab/result/<run_id>`` -- ``{"trace": measured Trace.to_dict(), "comparison":
  compare(simulated, measured)}`` once done (``409`` while running, ``500`` with the
  error if it failed).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from wsgiscope import simulator
from wsgiscope.simulator.budget import check as check_budget
from wsgiscope.simulator.validation import parse_scenario_text

from .measure import MAX_REQUESTS, MAX_SPAN_S, lab_plan

bp = Blueprint("lab", __name__, url_prefix="/lab")

#: Finished runs kept per app instance (their results stay fetchable).
KEEP_RUNS = 8

#: What one lab run may start and ask of this machine (the page's lab; ``wsgiscope
#: measure`` on the command line is the user's own call): worker processes ...
MAX_WORKERS = 8
#: ... threads in all (gunicorn ``workers x threads``) ...
MAX_THREADS = 64
#: ... work per request (its endpoint's segments; a distribution counts by its mean) ...
MAX_REQUEST_S = 30.0
#: ... and CPU work of all requests together.
MAX_CPU_S = 60.0
#: The event budget of the simulation that plans a lab run.
PLAN_EVENTS = 1_000_000

DISABLED_MESSAGE = (
    "The lab is off on this server: it starts real servers on the machine serving this "
    "page, so it is only on when wsgiscope serves on a loopback address (127.0.0.1, "
    "localhost) or was started with --allow-lab."
)


class _Run:
    def __init__(self, run_id: str, name: str) -> None:
        self.id = run_id
        self.name = name
        self.state = "running"
        self.progress = 0.0
        self.message = "starting"
        self.result: dict[str, Any] | None = None
        self.error = ""

    def status(self) -> dict[str, Any]:
        message = self.error if self.state == "failed" else self.message
        return {
            "run_id": self.id,
            "state": self.state,
            "progress": round(self.progress, 3),
            "message": message,
            "scenario": self.name,
        }


class _Lab:
    """Per-app state: the runs, and which one is in progress (one at a time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: str | None = None
        self.runs: OrderedDict[str, _Run] = OrderedDict()


def _lab(app: Flask) -> _Lab:
    state = app.extensions.get("wsgiscope_lab")
    if state is None:
        state = app.extensions.setdefault("wsgiscope_lab", _Lab())
    return state  # type: ignore[no-any-return]


def _error(status: int, message: str, field: str | None = None) -> ResponseReturnValue:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return jsonify(body), status


def _scenario_from_request() -> Any:
    """The scenario data sent with the request, or raise ``ScenarioError``."""
    value: Any = None
    limit = int(current_app.config.get("MAX_UPLOAD_BYTES", 1_000_000))
    if request.is_json:
        body = parse_scenario_text(request.get_data(cache=False), limit)
        if isinstance(body, dict):
            value = body.get("scenario")
    else:
        value = request.form.get("scenario")
    if value is None or value == "":
        raise simulator.ScenarioError(
            "scenario", "is missing: send the scenario as JSON text in the field 'scenario'"
        )
    if isinstance(value, str):
        value = parse_scenario_text(value, limit)
    return value


def _work_ms(segments: list[dict[str, Any]], kind: str | None = None) -> float:
    """A request's work in ms (``kind``: only ``cpu_ms`` or ``io_ms``); a distribution
    counts by its mean (``exp``) or its upper end (``uniform``)."""
    total = 0.0
    for seg in segments:
        for k, v in seg.items():
            if k not in ("cpu_ms", "io_ms") or kind not in (None, k):
                continue
            if isinstance(v, dict):
                total += float(v["exp"]) if "exp" in v else float(max(v["uniform"]))
            else:
                total += float(v)
    return total


def check_cost(data: Any) -> simulator.Scenario:
    """Validate a scenario and refuse one above the lab's bounds, naming the field."""
    sc = simulator.load_scenario(data)
    s = sc.server
    if s["kind"] == "werkzeug":
        workers, threads, field = s["processes"], 1, "server.processes"
    else:
        workers, field = s["workers"], "server.workers"
        threads = s["threads"] if s["worker_class"] == "gthread" else 1
    if workers > MAX_WORKERS:
        raise simulator.ScenarioError(
            field, f"a lab run starts at most {MAX_WORKERS} worker processes on this machine "
            f"(got {workers})")
    if workers * threads > MAX_THREADS:
        raise simulator.ScenarioError(
            "server.threads", f"a lab run has at most {MAX_THREADS} threads in all (got "
            f"{workers} workers x {threads} threads = {workers * threads})")
    for path, segments in sc.endpoints.items():
        if _work_ms(segments) > MAX_REQUEST_S * 1000:
            raise simulator.ScenarioError(
                f"endpoints.{path}", f"a lab request may take at most {MAX_REQUEST_S:g} s of "
                f"work (this one takes {_work_ms(segments) / 1000:,.3g} s)")
    cpu_ms = 0.0
    for item in sc.workload:
        weights = item["paths"]
        n = item["count"] if "count" in item else (
            (item.get("poisson") or item["constant"])["rate_per_s"]
            * (item.get("poisson") or item["constant"])["duration_s"])
        cpu_ms += n * sum(_work_ms(sc.endpoints[p], "cpu_ms") * w for p, w in weights.items()
                          ) / sum(weights.values())
    if cpu_ms > MAX_CPU_S * 1000:
        raise simulator.ScenarioError(
            "workload", f"asks for {cpu_ms / 1000:,.3g} s of CPU work; a lab run allows at "
            f"most {MAX_CPU_S:g} s of CPU work")
    check_budget(sc, PLAN_EVENTS)
    return sc


@bp.post("/run")
def run() -> ResponseReturnValue:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config.get("LAB_ENABLED", False):
        return _error(403, DISABLED_MESSAGE)
    try:
        plan = lab_plan(check_cost(_scenario_from_request()))
    except simulator.ScenarioError as exc:
        return _error(422, str(exc), exc.field or "scenario")
    lab = _lab(app)
    with lab.lock:
        if lab.active is not None:
            return _error(
                409,
                "a lab run is already in progress on this server; wait for it "
                "to finish (GET /lab/status/" + lab.active + ")",
            )
        run_id = uuid.uuid4().hex[:12]
        entry = _Run(run_id, plan["scenario"].get("name", ""))
        lab.runs[run_id] = entry
        while len(lab.runs) > KEEP_RUNS:
            lab.runs.popitem(last=False)
        lab.active = run_id
    worker = threading.Thread(
        target=_execute, args=(lab, entry, plan), name=f"lab-{run_id}", daemon=True
    )
    worker.start()
    return jsonify(
        {"run_id": run_id, "limits": {"requests": MAX_REQUESTS, "span_s": MAX_SPAN_S}}
    ), 202


def _execute(lab: _Lab, entry: _Run, plan: dict[str, Any]) -> None:
    from .compare import run_compare

    def progress(fraction: float, message: str) -> None:
        entry.progress = min(max(fraction, 0.0), 1.0) * 0.97
        entry.message = message

    try:
        _simulated, measured, comparison = run_compare(plan["scenario"], plan["seed"], progress)
        entry.result = {"trace": measured.to_dict(), "comparison": comparison}
        entry.progress = 1.0
        entry.message = "done"
        entry.state = "done"
    except Exception as exc:  # reported to the page; the lab has cleaned up by now
        entry.error = f"the lab run failed: {exc}"
        entry.state = "failed"
    finally:
        with lab.lock:
            if lab.active == entry.id:
                lab.active = None


def _get(run_id: str) -> _Run | None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _lab(app).runs.get(run_id)


@bp.get("/status/<run_id>")
def status(run_id: str) -> ResponseReturnValue:
    entry = _get(run_id)
    if entry is None:
        return _error(404, f"no lab run {run_id!r} on this server")
    return jsonify(entry.status())


@bp.get("/result/<run_id>")
def result(run_id: str) -> ResponseReturnValue:
    entry = _get(run_id)
    if entry is None:
        return _error(404, f"no lab run {run_id!r} on this server")
    if entry.state == "running":
        return _error(409, "the run is still in progress")
    if entry.state == "failed":
        return _error(500, entry.error)
    return jsonify(entry.result)
