"""Measure this machine's per-request overheads and write a profile for the simulator.

``calibrate()`` returns ``{"costs": {...}, "machine": {...}, "measured": {...}}``. ``costs``
and ``machine`` use the scenario's field names, so ``wsgiscope simulate --profile`` (and
``compare --profile``) lay them over a scenario's own; ``measured`` holds the raw figures
and the conditions (ignored when merging).

How each figure is obtained (medians over many requests, each request alone on an idle
server so nothing waits for anything else):

* ``accept_ms``: ``socket.accept()`` of an already-queued loopback connection, timed in
  this process.
* ``thread_start_ms``: werkzeug ``threaded=True``: from ``accept()`` returning in the main
  thread to the handler starting in its new thread.
* ``fork_ms``: werkzeug ``processes=2``: from ``accept()`` in the parent to the handler
  starting in the forked child.
* ``recv_ms``, ``parse_ms``, ``context_ms``, ``match_ms``, ``before_request_ms``,
  ``after_request_ms``, ``teardown_ms``: the lifecycle stages recorded by the instrumented
  app on werkzeug (request line read; headers parsed and environ built; contexts pushed;
  URL matched; before_request; after_request; teardown).
* ``write_ms``: gunicorn sync, from the app returning to the response written.
  ``werkzeug_drain_ms``: what werkzeug's write stage takes beyond that (it waits up to 10 ms
  for leftover request data before closing).
* ``machine``: cores this process may use, ``sys.getswitchinterval()``,
  ``net.core.somaxconn``, and the SYN retransmit schedule of this kernel. The GIL hand-off
  (how long a thread returning from a 1 ms sleep waits for the GIL beside a CPU-bound
  thread) is measured and reported in ``measured.gil_handoff_ms``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .recorder import read_records

REQUESTS = 40
SPACING_MS = 15.0

Progress = Callable[[float, str], None]


def _scenario(server: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "name": f"calibration: {name}",
        "server": server,
        "endpoints": {"/hello": []},
        "workload": [{"at_ms": 0, "count": REQUESTS, "path": "/hello", "spacing_ms": SPACING_MS}],
    }


def _records(server: dict[str, Any], name: str) -> list[dict[str, Any]]:
    from .measure import measure

    with tempfile.TemporaryDirectory(prefix="wsgiscope-calibrate-") as keep:
        measure(_scenario(server, name), keep_dir=keep)
        recs = [r for r in read_records(Path(keep) / "records") if r.get("kind") == "request"]
    # The first requests pay one-off costs (imports, caches): leave them out.
    recs.sort(key=lambda r: r.get("req") or 0)
    return recs[3:]


def _median(values: list[float]) -> float:
    clean = [v for v in values if v is not None and v >= 0]
    return round(statistics.median(clean), 4) if clean else 0.0


def _span(recs: list[dict[str, Any]], start: str, end: str) -> float:
    return _median([r[end] - r[start] for r in recs if r.get(start) and r.get(end)])


def accept_cost_ms(n: int = 200) -> float:
    """Median time of ``accept()`` on a loopback listener with connections waiting."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    clients: list[socket.socket] = []
    times: list[float] = []
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(n + 8)
        addr = lsock.getsockname()
        for _ in range(n):
            c = socket.create_connection(addr, timeout=2.0)
            clients.append(c)
        for _ in range(n):
            t = time.perf_counter()
            conn, _peer = lsock.accept()
            times.append((time.perf_counter() - t) * 1000.0)
            conn.close()
    finally:
        for c in clients:
            c.close()
        lsock.close()
    return _median(times)


def gil_handoff_ms(samples: int = 60) -> float:
    """Median extra wait, beyond the sleep itself, of a thread waking from a 1 ms sleep
    while another thread of the process spins on pure-Python bytecode."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            for i in range(200):
                x += i

    hog = threading.Thread(target=spin, daemon=True)
    hog.start()
    extra: list[float] = []
    try:
        time.sleep(0.02)
        for _ in range(samples):
            t = time.perf_counter()
            time.sleep(0.001)
            extra.append((time.perf_counter() - t) * 1000.0 - 1.0)
    finally:
        stop.set()
        hog.join()
    return _median(extra)


def machine_facts() -> dict[str, Any]:
    """This machine's scenario ``machine`` fields that can be read rather than measured."""
    facts: dict[str, Any] = {
        "cores": len(os.sched_getaffinity(0)),
        "switch_interval_ms": round(sys.getswitchinterval() * 1000.0, 4),
    }
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    facts["gil"] = bool(gil_enabled()) if gil_enabled else True
    with contextlib.suppress(OSError, ValueError):
        facts["somaxconn"] = int(Path("/proc/sys/net/core/somaxconn").read_text().strip())
    linear = Path("/proc/sys/net/ipv4/tcp_syn_linear_timeouts")
    try:
        facts["syn_schedule"] = "linear" if int(linear.read_text().strip()) > 0 else "exponential"
    except FileNotFoundError:
        facts["syn_schedule"] = "exponential"  # the knob only exists since Linux 6.5
    except (OSError, ValueError):
        pass
    return facts


def calibrate(progress: Progress | None = None) -> dict[str, Any]:
    """Measure the profile (see the module docstring). Takes a few seconds."""
    report = progress or (lambda _f, _m: None)
    report(0.0, "werkzeug, threaded")
    threaded = _records({"kind": "werkzeug", "threaded": True}, "werkzeug threaded")
    report(0.3, "werkzeug, processes=2")
    forking = _records(
        {"kind": "werkzeug", "threaded": False, "processes": 2}, "werkzeug processes=2"
    )
    report(0.55, "gunicorn sync")
    sync = _records({"kind": "gunicorn", "worker_class": "sync", "workers": 1}, "gunicorn sync")
    report(0.8, "accept() and GIL hand-off")
    costs = {
        "accept_ms": accept_cost_ms(),
        "thread_start_ms": _span(threaded, "accept", "handle"),
        "fork_ms": _span(forking, "accept", "handle"),
        "recv_ms": _span(threaded, "handle", "parse_start"),
        "parse_ms": _span(threaded, "parse_start", "app_start"),
        "context_ms": _span(threaded, "app_start", "match_start"),
        "match_ms": _span(threaded, "match_start", "before_start"),
        "before_request_ms": _span(threaded, "before_start", "view_start"),
        "after_request_ms": _span(threaded, "view_end", "after_end"),
        "teardown_ms": _span(threaded, "after_end", "app_end"),
        "write_ms": _span(sync, "app_end", "written"),
    }
    # werkzeug's write stage also waits for leftover input before it closes
    costs["werkzeug_drain_ms"] = max(
        0.0, round(_span(threaded, "app_end", "written") - costs["write_ms"], 3)
    )
    handoff = gil_handoff_ms()
    profile = {
        "costs": costs,
        "machine": machine_facts(),
        "measured": {
            "gil_handoff_ms": handoff,
            "werkzeug_write_ms": _span(threaded, "app_end", "written"),
            "gunicorn_sync_recv_parse_ms": _span(sync, "accept", "app_start"),
            "requests_per_server": REQUESTS,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "kernel": platform.release(),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    report(1.0, "done")
    return profile
