"""Scenario parsing and validation.

A scenario is plain JSON data: server, machine, per-stage costs, endpoints, workload,
client. :func:`load_scenario` checks every field and fills in documented defaults; any
problem raises :class:`ScenarioError` naming the field and what is allowed.

Every default below is the real tool's default (werkzeug 3.1, gunicorn, Linux, CPython)
unless the comment says otherwise.

Validation is total: whatever JSON value (or Python data) comes in, :func:`load_scenario`
either returns a :class:`Scenario` or raises :class:`ScenarioError` whose message is one
line, ``"<field path>: <what is wrong and what is allowed>"``. Numbers must be finite and
in range, every field has one type, paths are plain URL paths (:data:`PATH_RULE`), and
nesting is bounded (:data:`MAX_DEPTH`). Text from a user (a file, a form, a socket) should
go through :func:`parse_scenario_text`, which also bounds the size and rejects the
non-JSON literals ``NaN`` and ``Infinity``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .endpoints import SEGMENT_MAX_MS as SEGMENT_MAX_MS
from .endpoints import STORE_OPS as STORE_OPS
from .endpoints import check_app, duration, segments
from .validation import MAX_DEPTH as MAX_DEPTH
from .validation import MAX_TEXT_BYTES as MAX_TEXT_BYTES
from .validation import PATH_RULE as PATH_RULE
from .validation import SEED_MAX as SEED_MAX
from .validation import TOP as TOP
from .validation import ScenarioError as ScenarioError
from .validation import boolean, choice, field_key, number, short_text, show, url_path
from .validation import check_depth as check_depth
from .validation import check_seed as check_seed
from .validation import check_top as check_top
from .validation import parse_scenario_text as parse_scenario_text

#: Bounds that keep a run finite.
MAX_REQUESTS = 200_000
MAX_WORKERS = 256
MAX_THREADS = 1024
MAX_ENDPOINTS = 100
MAX_WORKLOAD_ITEMS = 1000

# --- field specifications ------------------------------------------------------------------
# Each spec: (default, checker). Checkers take (field_path, value) and return the clean value.


WERKZEUG: dict[str, tuple[Any, Any]] = {
    # Flask's app.run() passes threaded=True by default since Flask 1.0.
    "threaded": (True, boolean),
    "processes": (1, number(1, MAX_WORKERS, True)),
    # werkzeug.serving.LISTEN_QUEUE
    "backlog": (128, number(0, 65535, True)),
}

GUNICORN: dict[str, tuple[Any, Any]] = {
    "worker_class": ("sync", choice("sync", "gthread", "gevent")),
    "workers": (1, number(1, MAX_WORKERS, True, "gunicorn needs at least one worker")),
    "threads": (1, number(1, MAX_THREADS, True)),
    "worker_connections": (1000, number(1, 100_000, True)),
    "backlog": (2048, number(0, 65535, True)),
    "timeout_s": (30.0, number(0, 3600)),  # 0 disables the worker timeout
    "keepalive_s": (2.0, number(0, 3600)),
    "max_requests": (0, number(0, 10_000_000, True)),  # 0 disables recycling
    # Not a gunicorn setting: from the arbiter's fork to the new worker accepting (it
    # imports the app); costs.reap_ms and costs.fork_ms come before it.
    "boot_ms": (130.0, number(0, 60_000)),
}

MACHINE: dict[str, tuple[Any, Any]] = {
    "cores": (2, number(1, 256, True)),
    "switch_interval_ms": (5.0, number(0.001, 1000)),  # sys.getswitchinterval()
    "gil": (True, boolean),
    "somaxconn": (4096, number(1, 65535, True)),  # net.core.somaxconn since Linux 5.4
    # "linear": Linux >= 6.5 (tcp_syn_linear_timeouts = 4); "exponential": older kernels.
    "syn_schedule": ("linear", choice("linear", "exponential")),
    # Loopback round trip: SYN -> SYN-ACK -> ACK. The accept queue is checked twice: when
    # the SYN arrives (full: dropped) and when the final ACK arrives (full: ACK dropped).
    "rtt_ms": (0.025, number(0, 1000)),
    # Kernel timers (retransmits) fire on jiffies: 4 ms at Debian's HZ=250; 0 = exact.
    "timer_tick_ms": (4.0, number(0, 100)),
    "rto_min_ms": (200.0, number(1, 10_000)),  # TCP_RTO_MIN: first data retransmit
    "synack_retries": (5, number(0, 20, True)),  # net.ipv4.tcp_synack_retries
    # Direct plus cache cost of switching a core between threads of different processes.
    "context_switch_ms": (0.004, number(0, 10)),
    # CPU-bound slowdown of free-threaded CPython (gil: false) against the default build.
    "nogil_slowdown": (1.1, number(1, 5)),
    # Where the interpreter may switch threads (simulator/races.py): before 3.10 at almost
    # any instruction, since 3.10 only at calls and loop back edges.
    "python": ("3.11", choice("3.9", "3.10", "3.11", "3.12", "3.13")),
}

#: Per-request overheads of the server and Flask, in ms. CPU costs need the GIL and a core;
#: ``recv_ms`` and ``write_ms`` are blocking socket calls that release the GIL.
#: The defaults are measured, not guessed: ``wsgiscope calibrate`` (app/lab/calibrate.py
#: says how it times each one) run four times on a quiet 2-core machine, the median of the
#: four (2026-11-21: Linux 6.18, CPython 3.11.7, Flask 3.1.3, werkzeug 3.1.8, gunicorn
#: 27.0.1); so are ``machine.rtt_ms`` and ``machine.context_switch_ms``. ``reap_ms``
#: and ``first_request_ms`` come from three later runs, once the lab's gunicorn stopped
#: importing Flask in its arbiter (servers/arbiter.py says how). Run
#: ``wsgiscope calibrate`` to get this machine's figures as a scenario's ``costs``.
COSTS: dict[str, tuple[Any, Any]] = {
    "accept_ms": (0.013, number(0, 10_000)),
    # A thread asleep in select/epoll on the listener: from a connection's arrival to the
    # thread running (a seeded jitter around it; more when every core is busy).
    "wakeup_ms": (0.24, number(0, 10_000)),
    "thread_start_ms": (0.23, number(0, 10_000)),
    # A new thread's bootstrap (threading's _bootstrap_inner) before it runs its target: the
    # new thread takes the GIL first (werkzeug threaded=True starts one per connection).
    # (calibrate: the new thread's CPU clock at the start of its run(), 0.07-0.11 ms)
    "thread_boot_ms": (0.09, number(0, 10_000)),
    "fork_ms": (3.7, number(0, 10_000)),
    # A forked child's extra CPU on its request, over what a thread spends: copy-on-write
    # faults on every page its Python code touches for the first time (refcounts write to
    # shared objects). calibrate: a werkzeug processes=4 child's request against a
    # threaded=True request's, thread CPU time, 3.5-4.2 ms more.
    "fork_child_ms": (3.8, number(0, 10_000)),
    # gunicorn: from a worker's exit to the arbiter reaping it (the exiting interpreter's
    # teardown, then SIGCHLD wakes the arbiter); servers/gunicorn.py says how it was measured.
    "reap_ms": (77.0, number(0, 60_000)),
    # A fresh process's first request (a gunicorn worker's, werkzeug's server's) costs this
    # much more CPU than the ones after it: modules imported on first use, werkzeug's URL map
    # compiled at its first match, the adaptive interpreter's first runs of each function,
    # copy-on-write faults in a forked worker. calibrate: a fresh gunicorn sync worker's
    # and werkzeug's first request's CPU less a later one's. (A werkzeug processes=N child
    # is always fresh: fork_child_ms, measured the same way, already holds it.)
    "first_request_ms": (1.4, number(0, 10_000)),
    "recv_ms": (0.11, number(0, 10_000)),
    "parse_ms": (0.28, number(0, 10_000)),
    "context_ms": (0.14, number(0, 10_000)),
    "match_ms": (0.073, number(0, 10_000)),
    "before_request_ms": (0.031, number(0, 10_000)),
    "after_request_ms": (0.062, number(0, 10_000)),
    "teardown_ms": (0.11, number(0, 10_000)),
    # Flask handling an exception: handle_user_exception / handle_exception, an
    # errorhandler, logging an unhandled one's traceback.
    "error_ms": (0.59, number(0, 10_000)),
    # One bytecode instruction of an `increment` loop (about 7 ns in CPython 3.11).
    "instruction_ms": (0.0000069, number(0, 10)),
    "write_ms": (0.23, number(0, 10_000)),
    # After the last write, Python code runs before the connection is shut down (werkzeug:
    # the drain's selector.close(), finish(), shutdown_request; gunicorn: resp.close(),
    # post_request, util.close): it needs the GIL, so with a CPU-bound thread in the same
    # process the client's response ends only once this thread gets the GIL back.
    # (calibrate, on a loopback connection: 0.03-0.04 ms)
    "close_ms": (0.034, number(0, 10_000)),
    # werkzeug only: after the response, serving.py waits up to 10 ms (select timeout 0.01)
    # for leftover request data before it closes the connection.
    "werkzeug_drain_ms": (10.0, number(0, 10_000)),
    # gunicorn gthread only: the main thread wraps an accepted connection and submits it to
    # the pool; the pool thread's done-callback queues finish_request for the main thread;
    # the main thread runs it (shuts the connection, waits for the client's close, closes:
    # this cost before the wait and again after it).
    "gthread_submit_ms": (0.045, number(0, 10_000)),
    "gthread_handle_ms": (0.059, number(0, 10_000)),
    "gthread_defer_ms": (0.0062, number(0, 10_000)),
    "gthread_finish_ms": (0.055, number(0, 10_000)),
}

CLIENT: dict[str, tuple[Any, Any]] = {
    "timeout_s": (60.0, number(0.001, 3600)),
    "syn_retries": (6, number(0, 20, True)),  # net.ipv4.tcp_syn_retries
    # A load tool opens "simultaneous" connections one after another; this is the gap.
    "launch_gap_ms": (0.05, number(0, 1000)),
}

def _section(path: str, raw: Any, spec: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError(path, f"must be an object (got {show(raw)})")
    for key in raw:
        if key not in spec:
            allowed = ", ".join(spec)
            raise ScenarioError(
                f"{path}.{field_key(key)}", f"is not a known field (allowed: {allowed})"
            )
    out = {}
    for key, (default, check) in spec.items():
        out[key] = check(f"{path}.{key}", raw[key]) if key in raw else default
    return out


def _server(raw: Any) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError("server", f"must be an object (got {show(raw)})")
    kind = choice("werkzeug", "gunicorn")("server.kind", raw.get("kind", "werkzeug"))
    rest = {k: v for k, v in raw.items() if k != "kind"}
    spec = WERKZEUG if kind == "werkzeug" else GUNICORN
    out = {"kind": kind, **_section("server", rest, spec)}
    if kind == "werkzeug" and out["threaded"] and out["processes"] > 1:
        raise ScenarioError(
            "server.processes",
            "cannot be above 1 when threaded is true (werkzeug refuses both at once)",
        )
    if kind == "gunicorn" and out["worker_class"] == "sync" and out["threads"] > 1:
        # gunicorn: "--threads > 1 with the sync worker means gthread".
        out["worker_class"] = "gthread"
    return out


def _endpoints(raw: Any) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(raw, dict) or not raw:
        raise ScenarioError("endpoints", 'must map at least one path to its segments, e.g. '
                            '{"/sleep": [{"io_ms": 1000}]}')
    if len(raw) > MAX_ENDPOINTS:
        raise ScenarioError(
            "endpoints", f"has {len(raw):,} paths; a scenario may have at most {MAX_ENDPOINTS}"
        )
    out: dict[str, list[dict[str, Any]]] = {}
    for path, segs in raw.items():
        where = f"endpoints.{field_key(path)}"
        url_path(where, path)
        out[path] = segments(where, segs)
    return out


def _paths(where: str, item: dict[str, Any], endpoints: dict[str, Any]) -> dict[str, float]:
    if "path" in item and "paths" in item:
        raise ScenarioError(where, 'give either "path" or "paths", not both')
    if "path" in item:
        field = f"{where}.path"
        mix = {url_path(field, item["path"]): 1.0}
    elif "paths" in item:
        mix = item["paths"]
        field = f"{where}.paths"
        if not isinstance(mix, dict) or not mix:
            raise ScenarioError(
                field,
                f'must map paths to weights, e.g. {{"/a": 0.9, "/b": 0.1}} (got {show(mix)})',
            )
    else:
        raise ScenarioError(where, 'needs "path" (one endpoint) or "paths" (a weighted mix)')
    clean = {}
    for path, weight in mix.items():
        url_path(f"{field}.{field_key(path)}", path)
        if path not in endpoints:
            known = ", ".join(endpoints)
            raise ScenarioError(field, f"{show(path)} has no endpoint (known: {known})")
        clean[path] = number(0, 1e9)(f"{field}.{path}", weight)
    if sum(clean.values()) <= 0:
        raise ScenarioError(field, "weights must not all be zero")
    return clean


def _workload(raw: Any, endpoints: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    if not isinstance(raw, list) or not raw:
        raise ScenarioError("workload", "must be a non-empty list of bursts or arrival streams")
    if len(raw) > MAX_WORKLOAD_ITEMS:
        raise ScenarioError(
            "workload",
            f"has {len(raw):,} items; a scenario may have at most {MAX_WORKLOAD_ITEMS:,}",
        )
    out = []
    expected = 0.0
    for i, item in enumerate(raw):
        where = f"workload[{i}]"
        if not isinstance(item, dict):
            raise ScenarioError(where, f"must be an object (got {show(item)})")
        kinds = [k for k in ("poisson", "constant") if k in item]
        if len(kinds) > 1:
            raise ScenarioError(where, 'give one of "poisson" or "constant", not both')
        if kinds:
            kind = kinds[0]
            allowed = {kind, "path", "paths", "start_ms", "send_ms"}
            stream = _section(f"{where}.{kind}", item[kind], {
                "rate_per_s": (None, number(0.001, 100_000)),
                "duration_s": (None, number(0.001, 86_400)),
            })
            for key in ("rate_per_s", "duration_s"):
                if stream[key] is None:
                    raise ScenarioError(f"{where}.{kind}.{key}", "is required")
            clean = {
                kind: stream,
                "paths": _paths(where, item, endpoints),
                "start_ms": number(0, 86_400_000)(f"{where}.start_ms", item.get("start_ms", 0)),
                "send_ms": duration(f"{where}.send_ms", item.get("send_ms", 0)),
            }
            expected += stream["rate_per_s"] * stream["duration_s"]
        else:
            allowed = {"at_ms", "count", "path", "paths", "spacing_ms", "send_ms"}
            clean = {
                "at_ms": number(0, 86_400_000)(f"{where}.at_ms", item.get("at_ms", 0)),
                "count": number(1, MAX_REQUESTS, True)(f"{where}.count", item.get("count", 1)),
                "spacing_ms": number(0, 86_400_000)(
                    f"{where}.spacing_ms", item.get("spacing_ms", 0)
                ),
                "paths": _paths(where, item, endpoints),
                # How long each client takes to send its request once connected: a slow
                # client (or a Slowloris) holds whatever reads from it.
                "send_ms": duration(f"{where}.send_ms", item.get("send_ms", 0)),
            }
            expected += clean["count"]
        for key in item:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise ScenarioError(
                    f"{where}.{field_key(key)}", f"is not a known field (allowed: {known})"
                )
        out.append(clean)
    if expected > MAX_REQUESTS:
        raise ScenarioError(
            "workload",
            f"asks for about {expected:,.0f} requests; at most {MAX_REQUESTS:,} are allowed",
        )
    return out, int(expected)




@dataclass(frozen=True)
class Scenario:
    """A validated scenario with every default filled in."""

    name: str
    description: str
    server: dict[str, Any]
    machine: dict[str, Any]
    costs: dict[str, Any]
    endpoints: dict[str, list[dict[str, Any]]]
    workload: list[dict[str, Any]]
    client: dict[str, Any]
    seed: int
    expected_requests: int

    def to_dict(self) -> dict[str, Any]:
        """The normalised scenario as JSON-ready data (loads back to an equal Scenario)."""
        return copy.deepcopy({
            "name": self.name,
            "description": self.description,
            "server": self.server,
            "machine": self.machine,
            "costs": self.costs,
            "endpoints": self.endpoints,
            "workload": self.workload,
            "client": self.client,
            "seed": self.seed,
        })


def load_scenario(data: Any) -> Scenario:
    """Validate scenario data (parsed JSON) and fill in defaults.

    Raises :class:`ScenarioError` naming the first offending field.
    """
    if isinstance(data, Scenario):
        return data
    if not isinstance(data, dict):
        raise ScenarioError("scenario", f"must be a JSON object (got {show(data)})")
    check_top(data)
    check_depth(data)
    endpoints = _endpoints(data.get("endpoints"))
    workload, expected = _workload(data.get("workload"), endpoints)
    machine = _section("machine", data.get("machine"), MACHINE)
    check_app(endpoints, machine)
    return Scenario(
        name=short_text(200)("name", data.get("name", "untitled scenario")),
        description=short_text(2000)("description", data.get("description", "")),
        server=_server(data.get("server")),
        machine=machine,
        costs=_section("costs", data.get("costs"), COSTS),
        endpoints=endpoints,
        workload=workload,
        client=_section("client", data.get("client"), CLIENT),
        seed=check_seed(data.get("seed", 1)),
        expected_requests=expected,
    )
