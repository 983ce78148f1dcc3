"""Pages and htmx fragments.

The scenario panel is a plain HTML form. Every route that takes one validates it with
:func:`simulator.load_scenario`; a bad field comes back as the form fragment with that
field marked and the engine's message beside it (HTTP 422), so htmx swaps only the form
and nothing else on the page is lost. A good scenario comes back as the ``run`` fragment,
whose data attributes the page's script hands to the WebSocket.
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from wsgiscope import simulator
from wsgiscope.simulator import export
from wsgiscope.simulator.trace import STAGES, Trace

bp = Blueprint("views", __name__)

#: The preset a teacher sees first.
DEFAULT_PRESET = "dev-single-thread"

# (name, label, kind, choices, hint). Names are the scenario's dotted field paths, so an
# engine error's ``field`` names the input to mark.
WERKZEUG_FIELDS = [
    ("server.threaded", "Threaded (a thread per connection)", "bool", None,
     "app.run(threaded=...)"),
    ("server.processes", "Processes", "int", None, "fork per connection, at most N"),
    ("server.backlog", "Listen backlog", "int", None, "werkzeug uses 128"),
]
GUNICORN_FIELDS = [
    ("server.worker_class", "Worker class", "select",
     [("sync", "sync"), ("gthread", "gthread"), ("gevent", "gevent")], "--worker-class"),
    ("server.workers", "Workers", "int", None, "-w"),
    ("server.threads", "Threads per worker", "int", None, "--threads"),
    ("server.worker_connections", "Worker connections", "int", None, "--worker-connections"),
    ("server.backlog", "Listen backlog", "int", None, "--backlog"),
    ("server.timeout_s", "Worker timeout (s)", "num", None, "--timeout, 0 = off"),
    ("server.keepalive_s", "Keep-alive (s)", "num", None, "--keep-alive"),
    ("server.max_requests", "Max requests", "int", None, "--max-requests, 0 = off"),
    ("server.boot_ms", "Worker boot (ms)", "num", None, "a new worker's start-up"),
]
MACHINE_FIELDS = [
    ("machine.cores", "CPU cores", "int", None, ""),
    ("machine.switch_interval_ms", "GIL switch interval (ms)", "num", None,
     "sys.getswitchinterval()"),
    ("machine.gil", "GIL", "bool", None, "off = free-threaded Python"),
]
ADVANCED_FIELDS = [
    ("machine.somaxconn", "net.core.somaxconn", "int", None, "caps every backlog"),
    ("machine.syn_schedule", "SYN retry schedule", "select",
     [("linear", "linear (Linux 6.5+)"), ("exponential", "exponential (older)")], ""),
    ("machine.synack_retries", "SYN-ACK retries", "int", None, "net.ipv4.tcp_synack_retries"),
    ("machine.rtt_ms", "Handshake round trip (ms)", "num", None, "loopback"),
    ("machine.timer_tick_ms", "Kernel timer tick (ms)", "num", None, "4 at HZ=250"),
    ("machine.rto_min_ms", "First data retransmit (ms)", "num", None, "TCP_RTO_MIN"),
    ("machine.context_switch_ms", "Context switch (ms)", "num", None, "per time slice"),
    ("machine.nogil_slowdown", "Free-threaded slowdown", "num", None, "CPU work x this"),
    ("client.timeout_s", "Client timeout (s)", "num", None, ""),
    ("client.syn_retries", "Client SYN retries", "int", None, "net.ipv4.tcp_syn_retries"),
    ("client.launch_gap_ms", "Client launch gap (ms)", "num", None, "between 'simultaneous' "
     "connects"),
    ("seed", "Random seed", "int", None, ""),
]
JSON_FIELDS = ("endpoints", "workload", "costs")
ALL_FIELDS = {f[0]: f for f in WERKZEUG_FIELDS + GUNICORN_FIELDS + MACHINE_FIELDS
              + ADVANCED_FIELDS}

STAGE_NOTES = {
    "connect": "The client's SYN reaches the listening socket; the kernel finishes the TCP "
               "handshake on its own, no Python involved.",
    "backlog": "The finished connection waits in the kernel's accept queue until a server "
               "thread calls accept().",
    "pool": "Accepted, but every worker thread is busy: the connection waits in the thread "
            "pool's queue.",
    "recv": "The server reads the request bytes. This blocks, so the GIL is free meanwhile.",
    "parse": "The server parses the request line and headers and builds the WSGI environ.",
    "context": "Flask pushes the app context and the request context: request, g and "
               "session now work.",
    "match": "The URL map picks the view and its arguments. A routing error is only noted "
             "here and raised later.",
    "before_request": "before_request functions run, the app's first, then the blueprint's. "
                      "One that returns a response skips the view.",
    "view": "The view runs the endpoint's segments: CPU work needs the GIL and a core, an "
            "I/O wait lets the GIL go.",
    "after_request": "The return value becomes a response; after_request functions run in "
                     "reverse order of registration.",
    "teardown": "The contexts pop: teardown_request and teardown_appcontext run, before the "
                "body is sent.",
    "write": "The server writes status, headers and body, then closes the connection.",
}


# --- scenario <-> form ---------------------------------------------------------------------


def _presets() -> dict[str, Any]:
    return dict(simulator.presets.PRESETS)


def _default_scenario() -> dict[str, Any]:
    presets = _presets()
    if DEFAULT_PRESET in presets:
        return dict(presets[DEFAULT_PRESET].scenario)
    if presets:
        return dict(next(iter(presets.values())).scenario)
    return {
        "name": "Ten users, one thread",
        "server": {"kind": "werkzeug", "threaded": False},
        "endpoints": {"/sleep": [{"io_ms": 1000}]},
        "workload": [{"at_ms": 0, "count": 10, "path": "/sleep"}],
    }


def _number(raw: str, integer: bool) -> Any:
    text = raw.strip()
    try:
        return int(text) if integer else float(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return text  # the engine names the field and the allowed range
        return int(value) if value.is_integer() else value


def scenario_from_form(form: Any) -> dict[str, Any]:
    """The scenario the form describes (not yet validated: the engine does that)."""
    kind = form.get("server.kind", "werkzeug")
    fields = WERKZEUG_FIELDS if kind == "werkzeug" else GUNICORN_FIELDS
    data: dict[str, Any] = {"server": {"kind": kind}}
    if form.get("name", "").strip():
        data["name"] = form["name"].strip()
    for name, _label, ftype, _choices, _hint in fields + MACHINE_FIELDS + ADVANCED_FIELDS:
        raw = form.get(name)
        if raw is None or raw.strip() == "":
            continue
        if ftype == "bool":
            value: Any = {"true": True, "false": False}.get(raw, raw)
        elif ftype in ("int", "num"):
            value = _number(raw, ftype == "int")
        else:
            value = raw
        head, _, tail = name.partition(".")
        if tail:
            data.setdefault(head, {})[tail] = value
        else:
            data[head] = value
    for name in JSON_FIELDS:
        raw = form.get(name, "").strip()
        if not raw:
            continue
        try:
            data[name] = json.loads(raw)
        except ValueError as exc:
            raise simulator.ScenarioError(name, f"is not valid JSON ({exc})") from None
    return data


def _ints(value: Any) -> Any:
    """Whole floats as ints, so the form shows 1000 rather than 1000.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _compact_json(value: Any) -> str:
    """JSON a person can edit: one entry per line for endpoint maps and workload lists."""
    value = _ints(value)
    if isinstance(value, dict) and value:
        inner = ",\n".join(
            f"  {json.dumps(k)}: {json.dumps(v, separators=(', ', ': '))}" for k, v in value.items()
        )
        return "{\n" + inner + "\n}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(
            "  " + json.dumps(v, separators=(", ", ": ")) for v in value) + "\n]"
    return json.dumps(value)


def form_values(scenario: dict[str, Any]) -> dict[str, str]:
    """Form input values for a scenario dict (normalised or as the user wrote it)."""
    values: dict[str, str] = {"name": str(scenario.get("name", ""))}
    server = scenario.get("server", {}) or {}
    values["server.kind"] = str(server.get("kind", "werkzeug"))
    for name in ALL_FIELDS:
        head, _, tail = name.partition(".")
        src = scenario.get(head) if tail else scenario
        key = tail or head
        if isinstance(src, dict) and key in src:
            v = src[key]
            if isinstance(v, bool):
                values[name] = "true" if v else "false"
            elif isinstance(v, float) and v.is_integer():
                values[name] = str(int(v))
            else:
                values[name] = str(v)
    for name in JSON_FIELDS:
        if name in scenario:
            values[name] = _compact_json(scenario[name])
    return values


def form_field_for(error_field: str) -> str:
    """The form input an engine error's dotted field belongs to ("" = the whole form)."""
    if error_field in ALL_FIELDS or error_field == "name":
        return error_field
    head = re.split(r"[.\[]", error_field, maxsplit=1)[0]
    if head in JSON_FIELDS:
        return head
    if error_field.startswith("server."):
        return "server.kind"
    return ""


# --- share links ---------------------------------------------------------------------------


def encode_share(scenario: dict[str, Any]) -> str:
    raw = json.dumps(scenario, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode_share(text: str) -> dict[str, Any]:
    """The scenario a share link carries; a ScenarioError if it is damaged."""
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        d = zlib.decompressobj()
        raw = d.decompress(packed, current_app.config["MAX_UPLOAD_BYTES"])
        if d.unconsumed_tail:
            raise ValueError("too large")
        data = json.loads(raw)
    except (ValueError, zlib.error) as exc:
        raise simulator.ScenarioError(
            "", f"the share link is damaged and cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise simulator.ScenarioError("", "the share link does not hold a scenario")
    return data


def _seed_arg(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise simulator.ScenarioError("seed", f"must be a whole number of 0 or more (got {raw!r})")
    return int(raw)


def _load(data: Any) -> simulator.Scenario:
    from .stream import load_for_web

    return load_for_web(data, current_app.config["MAX_REQUESTS"])


def _scenario_from_query() -> tuple[dict[str, Any], int | None]:
    data = decode_share(request.args.get("s", ""))
    seed = _seed_arg(request.args.get("seed"))
    clean = _load(data).to_dict()
    if seed is not None:
        clean["seed"] = seed
    return clean, clean["seed"]


def share_url(scenario: dict[str, Any]) -> str:
    return url_for("views.index", s=encode_share(scenario), seed=scenario.get("seed"),
                   _external=True)


# --- rendering helpers ---------------------------------------------------------------------


def _lab_available() -> bool:
    return any(rule.rule == "/lab/run" for rule in current_app.url_map.iter_rules())


def _preset_list() -> list[dict[str, str]]:
    return [{"name": k, "title": p.title, "lesson": p.lesson} for k, p in _presets().items()]


def _form(values: dict[str, str], error: tuple[str, str] | None = None,
          preset: str = "") -> str:
    return render_template(
        "_fragments/_form.html",
        v=values,
        error_field=error[0] if error else None,
        error_message=error[1] if error else "",
        werkzeug_fields=WERKZEUG_FIELDS,
        gunicorn_fields=GUNICORN_FIELDS,
        machine_fields=MACHINE_FIELDS,
        advanced_fields=ADVANCED_FIELDS,
        preset=preset,
        lab_available=_lab_available(),
        lab_enabled=bool(current_app.config.get("LAB_ENABLED")),
    )


def _run(scenario: dict[str, Any], play: bool, oob: bool = False) -> str:
    return render_template(
        "_fragments/_run.html",
        scenario=scenario,
        scenario_json=json.dumps(scenario, separators=(",", ":")),
        share=share_url(scenario),
        s=encode_share(scenario),
        play=play,
        oob=oob,
    )


def _invalid(values: dict[str, str], exc: Exception) -> Response:
    field = getattr(exc, "field", "")
    message = getattr(exc, "message", None) or str(exc)
    target = form_field_for(field)
    shown = message if not field or target == field else f"{field}: {message}"
    resp = Response(_form(values, (target, shown)), status=422)
    resp.headers["HX-Retarget"] = "#scenario-form"
    resp.headers["HX-Reswap"] = "outerHTML"
    return resp


# --- routes --------------------------------------------------------------------------------


@bp.get("/")
def index() -> Any:
    """The page. ``?s=<share>&seed=N`` reopens a shared run; ``?preset=name`` loads one."""
    status = 200
    error = None
    preset = request.args.get("preset", "")
    scenario: dict[str, Any] | None = None
    try:
        if request.args.get("s"):
            scenario, _seed = _scenario_from_query()
            preset = ""
        elif preset:
            try:
                p = simulator.presets.get(preset)
            except KeyError:
                raise simulator.ScenarioError(
                    "", f"there is no preset {preset!r} (known: {', '.join(_presets())})"
                ) from None
            scenario = simulator.load_scenario(p.scenario).to_dict()
    except simulator.ScenarioError as exc:
        status = 422
        error = (form_field_for(exc.field), str(exc))
        scenario = None
    if scenario is None:
        if not preset or error:
            preset = DEFAULT_PRESET if DEFAULT_PRESET in _presets() else ""
        scenario = simulator.load_scenario(_default_scenario()).to_dict()
    values = form_values(scenario)
    lesson = ""
    for p in _preset_list():
        if p["name"] == preset:
            lesson = p["lesson"]
    html = render_template(
        "index.html",
        presets=_preset_list(),
        preset=preset,
        lesson=lesson,
        form_html=_form(values, error, preset),
        run_html=_run(scenario, play=False),
        autostart=error is None,
    )
    return html, status


@bp.get("/fragments/preset")
def preset_fragment() -> Any:
    """The form filled with a preset, plus (out of band) its run and lesson."""
    name = request.args.get("preset", "")
    try:
        p = simulator.presets.get(name)
    except KeyError:
        return _invalid(form_values(_default_scenario()), simulator.ScenarioError(
            "", f"there is no preset {name!r} (known: {', '.join(_presets())})"))
    scenario = simulator.load_scenario(p.scenario).to_dict()
    lesson = render_template("_fragments/_lesson.html", lesson=p.lesson, oob=True)
    return _form(form_values(scenario), preset=name) + _run(scenario, False, oob=True) + lesson


@bp.post("/simulate")
def simulate() -> Any:
    """Validate the form; 200 with the run fragment, or 422 with the form marked."""
    values = {k: v for k, v in request.form.items()}
    try:
        data = scenario_from_form(request.form)
        scenario = _load(data).to_dict()
    except simulator.ScenarioError as exc:
        return _invalid(values, exc)
    return _form(form_values(scenario)) + _run(scenario, play=True, oob=True)


@bp.post("/scenario/import")
def import_scenario() -> Any:
    """Load a scenario JSON file (or pasted text) into the form."""
    values = {k: v for k, v in request.form.items()}
    upload = request.files.get("file")
    text = upload.read().decode("utf-8", "replace") if upload else request.form.get("text", "")
    try:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise simulator.ScenarioError("", f"the file is not valid JSON ({exc})") from None
        scenario = _load(data).to_dict()
    except simulator.ScenarioError as exc:
        return _invalid(values or form_values(_default_scenario()), exc)
    return _form(form_values(scenario)) + _run(scenario, play=False, oob=True)


def _export_trace() -> tuple[dict[str, Any], Trace]:
    try:
        scenario, seed = _scenario_from_query()
    except simulator.ScenarioError as exc:
        abort(Response(f"{exc}\n", status=422, mimetype="text/plain"))
    return scenario, simulator.run(scenario, seed=seed)


def _download(body: str, filename: str, mimetype: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


@bp.get("/export/scenario.json")
def export_scenario() -> Response:
    try:
        scenario, _ = _scenario_from_query()
    except simulator.ScenarioError as exc:
        return Response(f"{exc}\n", status=422, mimetype="text/plain")
    return _download(json.dumps(scenario, indent=2) + "\n", "scenario.json", "application/json")


# The exports are the CLI's (``wsgiscope simulate --format trace|csv|table``), byte for byte.


@bp.get("/export/trace.json")
def export_chrome_trace() -> Response:
    """The run as Chrome trace-event JSON: open it in Perfetto or chrome://tracing."""
    _, trace = _export_trace()
    return _download(json.dumps(export.to_chrome_trace(trace)) + "\n", "wsgiscope-trace.json",
                     "application/json")


@bp.get("/export/requests.csv")
def export_csv() -> Response:
    _, trace = _export_trace()
    return _download(export.to_csv(trace), "wsgiscope-requests.csv", "text/csv")


@bp.get("/export/table.txt")
def export_table() -> Response:
    """The narration, the request table and the summary, as the CLI's ``table`` prints."""
    _, trace = _export_trace()
    return _download(export.to_table(trace), "wsgiscope-table.txt", "text/plain")


@bp.post("/api/timeline")
def timeline_api() -> Any:
    """Encode a Trace (``Trace.to_dict()`` JSON, e.g. a lab measurement) for the page."""
    from .stream import prepare

    data = request.get_json(silent=True)
    if isinstance(data, dict) and isinstance(data.get("trace"), dict):
        data = data["trace"]
    try:
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object: a trace")
        trace = Trace.from_dict(data)
        prepared = prepare(trace, current_app.config["MAX_FRAMES"], key="measured")
    except (KeyError, TypeError, ValueError) as exc:
        return jsonify({"field": "trace", "error": f"not a wsgiscope trace ({exc})"}), 422
    return jsonify(prepared.whole())


# --- the request inspector (reads only a Trace) --------------------------------------------


def inspect_request(trace: Trace, rid: int) -> dict[str, Any]:
    """One request's life as waterfall rows: [{label, note, start, end, parts, marker}]."""
    rec = trace.requests[rid]
    events = trace.request_events(rid)
    marks = [(e.t, str(e.what), e.ref) for e in events if e.kind == "req"]
    states = [(e.t, str(e.what)) for e in events if e.kind == "thread"]
    end = rec.finished_ms if rec.finished_ms is not None else trace.end_ms
    start = rec.sent_ms
    rows: list[dict[str, Any]] = []

    def first(*phases: str) -> float | None:
        for t, what, _ in marks:
            if what in phases:
                return t
        return None

    syn = first("syn")
    queued = first("backlog")
    accepted = first("accept")
    pooled = first("pool")
    stage_marks = [(t, str(ref)) for t, what, ref in marks if what == "stage"]
    first_stage = stage_marks[0][0] if stage_marks else None
    drops = sum(1 for _, what, _ in marks if what == "drop")
    acks = sum(1 for _, what, _ in marks if what == "overflow")
    if syn is not None:
        stop = queued if queued is not None else (accepted if accepted is not None else end)
        note = STAGE_NOTES["connect"]
        if drops:
            note += (f" The accept queue was full: {drops} SYN(s) were dropped and sent "
                     "again later.")
        if acks:
            note += (f" The handshake completed, but the queue was full when the final ACK "
                     f"came: dropped {acks} time(s); the client's retransmits got it in.")
        rows.append({"label": "connect", "start": syn, "end": stop, "state": "connecting",
                     "note": note})
    if queued is not None:
        rows.append({"label": "kernel backlog", "start": queued,
                     "end": accepted if accepted is not None else end, "state": "backlog",
                     "note": STAGE_NOTES["backlog"]})
    if accepted is not None:
        where = next((str(ref) for t, what, ref in marks if what == "accept"), "")
        rows.append({"label": "accept", "start": accepted, "end": accepted, "state": "",
                     "note": f"Accepted by {where}." if where else "Accepted."})
    if pooled is not None:
        rows.append({"label": "wait for a thread", "start": pooled,
                     "end": first_stage if first_stage is not None else end, "state": "pool",
                     "note": STAGE_NOTES["pool"]})
    for i, (t, stage) in enumerate(stage_marks):
        stop = stage_marks[i + 1][0] if i + 1 < len(stage_marks) else end
        parts = []
        for j, (st, state) in enumerate(states):
            nxt = states[j + 1][0] if j + 1 < len(states) else end
            a, b = max(st, t), min(nxt, stop)
            if b > a and state in ("gil", "cpu", "io"):
                parts.append({"start": a, "end": b, "state": state})
        gil_wait = sum(p["end"] - p["start"] for p in parts if p["state"] == "gil")
        note = STAGE_NOTES.get(stage, "")
        if gil_wait >= 0.05:
            note += f" Waited {gil_wait:.2f} ms for the GIL here."
        rows.append({"label": stage, "start": t, "end": stop, "state": "", "parts": parts,
                     "note": note})
    span = max(end - start, 1e-6)
    for row in rows:
        row["left"] = 100.0 * (row["start"] - start) / span
        row["width"] = max(100.0 * (row["end"] - row["start"]) / span, 0.0)
        row["dur"] = row["end"] - row["start"]
        for p in row.get("parts", []):
            p["left"] = 100.0 * (p["start"] - row["start"]) / max(row["end"] - row["start"], 1e-9)
            p["width"] = 100.0 * (p["end"] - p["start"]) / max(row["end"] - row["start"], 1e-9)
    return {"record": rec, "rows": rows, "start": start, "end": end,
            "latency": rec.latency_ms, "stages": STAGES}


def render_inspector(trace: Trace, rid: int) -> str:
    return render_template("_fragments/_inspector.html", **inspect_request(trace, rid))
