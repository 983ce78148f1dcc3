"""The scenario panel: a plain HTML form whose inputs are the scenario's dotted field paths.

:func:`scenario_from_form` turns a submitted form into scenario data (the engine validates
it); :func:`form_values` fills the form from a scenario; :func:`form_field_for` names the
input an engine error belongs to, so the page can mark it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import current_app
from wsgiscope import simulator
from wsgiscope.simulator.budget import check as check_budget
from wsgiscope.simulator.validation import parse_scenario_text

from ..lessons import current as current_lessons
from ..runs import load_for_web

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
    ("machine.python", "CPython", "select",
     [(v, v) for v in ("3.9", "3.10", "3.11", "3.12", "3.13")],
     "where threads may switch (lost updates)"),
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


def all_presets() -> dict[str, Any]:
    """The bundled lessons and the teacher's (the app's ``LESSONS`` folders)."""
    return current_lessons()


def default_scenario() -> dict[str, Any]:
    presets = all_presets()
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
            data[name] = parse_scenario_text(raw)  # bounded, finite, shallow
        except simulator.ScenarioError as exc:
            raise simulator.ScenarioError(name, exc.message) from None
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


def load_for_page(data: Any) -> simulator.Scenario:
    """Validate a scenario the page sent, within this server's ``MAX_REQUESTS`` and event
    budget (``SIM_MAX_EVENTS``: a run too costly is refused here, naming the field)."""
    scenario = load_for_web(data, current_app.config["MAX_REQUESTS"])
    check_budget(scenario, current_app.config.get("SIM_MAX_EVENTS"))
    return scenario
