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
  starting in the forked child. ``fork_child_ms``: the CPU time (the handler thread's own
  clock) of such a child's request less that of the same request on ``threaded=True``:
  the copy-on-write faults of a fresh child.
* ``first_request_ms``: a fresh server's first request's CPU less a later one's (the
  median of werkzeug ``threaded=True``'s and a fresh gunicorn sync worker's); the first
  three requests of each server are left out of every other figure.
* ``recv_ms``, ``parse_ms``, ``context_ms``, ``match_ms``, ``before_request_ms``,
  ``after_request_ms``, ``teardown_ms``: the lifecycle stages recorded by the instrumented
  app on werkzeug (request line read; headers parsed and environ built; contexts pushed;
  URL matched; before_request; after_request; teardown).
* ``write_ms``: gunicorn sync, from the app returning to the response written.
  ``werkzeug_drain_ms``: what werkzeug's write stage takes beyond that (it waits up to 10 ms
  for leftover request data before closing).
* ``wakeup_ms``: gunicorn sync, one idle worker asleep in ``select()`` on the listener: from
  the client's ``connect()`` returning to the worker having accepted, less ``accept_ms``.
* ``reap_ms``, and the worker boot time (``measured.boot_ms``, the scenario's
  ``server.boot_ms``): a real gunicorn sync worker with ``--max-requests 1`` and a burst of
  :data:`RECYCLES` + 1 requests, so each response ends its worker and the next request waits
  in the backlog for the replacement. Server hooks stamp the response written, the exit
  reaped (``child_exit``, in the arbiter), the fork (``post_fork``), the app loaded
  (``post_worker_init``) and the next connection accepted. ``reap_ms`` is written to
  reaped; ``boot_ms`` is forked to accepting; ``measured.recycle_ms`` the whole gap.
* ``gthread_submit_ms``, ``gthread_handle_ms``, ``gthread_defer_ms``,
  ``gthread_finish_ms``: gunicorn's own gthread code, timed in this process on loopback
  connections: ``TConn`` plus ``ThreadPoolExecutor.submit`` and ``add_done_callback`` (what
  ``enqueue_req`` does after ``accept()``); in the pool thread, ``wait_for_data`` and
  ``init`` on a connection whose request has arrived; the done-callback's
  ``PollableMethodQueue.defer``; and the main thread's ``run_callbacks`` running
  ``finish_request`` (the connection is closed gracefully once the client has closed).
* ``thread_boot_ms``: in this process, a new thread's own CPU clock read first thing in its
  ``run`` (threading's bootstrap). ``close_ms``: in this process, werkzeug's steps from a
  response's last write to the connection closed (selector, files, shutdown, close).
* ``error_ms``: a Flask app in this process (its test client): a request whose view raises,
  less a plain one (``handle_user_exception``, ``handle_exception``, the traceback logged).
* ``instruction_ms``: ``for _ in range(n): counter += 1`` on a global, over its iterations
  and the instructions ``dis`` lists per iteration (the fastest of five runs).
* ``machine``: cores this process may use, ``sys.getswitchinterval()``,
  ``net.core.somaxconn``, and the SYN retransmit schedule of this kernel; ``rtt_ms``, the
  median ``connect()`` on loopback (one SYN, SYN-ACK round trip); ``context_switch_ms``,
  half a pipe round trip between two processes pinned to one core, less the system calls.
  The GIL hand-off (how long a thread returning from a 1 ms sleep waits for the GIL beside a
  CPU-bound thread) is measured and reported in ``measured.gil_handoff_ms``.

The load average before and after is recorded (``measured.loadavg``): on a busy machine
every figure is larger than on a quiet one.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .calibrate_steps import (
    accept_cost_ms,
    close_ms,
    context_switch_ms,
    error_ms,
    gil_handoff_ms,
    gthread_costs,
    instruction_ms,
    rtt_ms,
    thread_boot_ms,
)
from .distribution import loadavg
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
    recs, _all, _driver = _run(_scenario(server, name))
    return recs


def _first_extra_ms(recs: list[dict[str, Any]], steady: list[dict[str, Any]]) -> float:
    """How much more CPU a fresh process's first request took than its later ones."""
    return float(recs[0]["cpu"]) - _median([r["cpu"] for r in steady if "cpu" in r])


def _run(
    scenario: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Measure a scenario; return its request records (by request id), every server
    record, and the driver's per-request results by id."""
    from .measure import measure

    with tempfile.TemporaryDirectory(prefix="wsgiscope-calibrate-") as keep:
        measure(scenario, keep_dir=keep)
        every = list(read_records(Path(keep) / "records"))
        driver: dict[int, dict[str, Any]] = {}
        with open(Path(keep) / "driver.jsonl", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if "id" in rec:
                    driver[int(rec["id"])] = rec
    recs = [r for r in every if r.get("kind") == "request"]
    recs.sort(key=lambda r: r.get("req") or 0)
    return recs, every, driver


def _median(values: list[float]) -> float:
    clean = [v for v in values if v is not None and v >= 0]
    return round(statistics.median(clean), 4) if clean else 0.0


def _span(recs: list[dict[str, Any]], start: str, end: str) -> float:
    return _median([r[end] - r[start] for r in recs if r.get(start) and r.get(end)])


#: Worker replacements timed by :func:`recycle_costs`.
RECYCLES = 6


def wakeup_cost_ms(sync: list[dict[str, Any]], driver: dict[int, dict[str, Any]],
                   accept_ms: float) -> float:
    """Median wake-up of an idle sync worker (see the module docstring)."""
    gaps = [
        r["accept"] - driver[r["req"]]["connected"]
        for r in sync
        if r.get("accept") and driver.get(r["req"], {}).get("connected")
    ]
    return max(0.0, round(_median(gaps) - accept_ms, 4))


def recycle_costs() -> dict[str, float]:
    """Worker replacement with ``--max-requests 1`` (see the module docstring)."""
    scenario = {
        "name": "calibration: gunicorn sync --max-requests 1",
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 1, "max_requests": 1},
        "endpoints": {"/hello": []},
        "workload": [{"at_ms": 0, "count": RECYCLES + 1, "path": "/hello"}],
        "client": {"timeout_s": 30},
    }
    recs, every, _driver = _run(scenario)
    served = sorted((r for r in recs if r.get("written")), key=lambda r: r["written"])
    reaped = sorted(r["t"] for r in every if r.get("kind") == "exit")
    forked = sorted(r["t"] for r in every if r.get("kind") == "boot")[1:]  # not the first
    loaded = sorted(r["t"] for r in every if r.get("kind") == "worker_ready")[1:]
    reap, fork, load, accept, boot, whole = [], [], [], [], [], []
    for prev, nxt in zip(served, served[1:], strict=False):
        end, got = prev["written"], nxt.get("accept") or nxt.get("handle")
        r = next((t for t in reaped if t >= end), None)
        f = next((t for t in forked if r is not None and t >= r), None)
        ld = next((t for t in loaded if f is not None and t >= f), None)
        if None in (r, f, ld, got):
            continue
        assert r is not None and f is not None and ld is not None
        reap.append(r - end)
        fork.append(f - r)
        load.append(ld - f)
        accept.append(got - ld)
        boot.append(got - f)
        whole.append(got - end)
    return {
        "reap_ms": _median(reap),
        "arbiter_fork_ms": _median(fork),
        "app_load_ms": _median(load),
        "loaded_to_accept_ms": _median(accept),
        "boot_ms": _median(boot),
        "boot_ms_min": round(min(boot), 3) if boot else 0.0,
        "recycle_ms": _median(whole),
        "recycles_timed": float(len(whole)),
    }


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
    loadavg_before = loadavg()
    report(0.0, "werkzeug, threaded")
    threaded_all = _records({"kind": "werkzeug", "threaded": True}, "werkzeug threaded")
    # The first requests pay one-off costs (imports, caches): first_request_ms, and left
    # out of every other figure.
    threaded = threaded_all[3:]
    report(0.3, "werkzeug, processes=2")
    forking = _records(
        {"kind": "werkzeug", "threaded": False, "processes": 2}, "werkzeug processes=2"
    )[3:]
    report(0.45, "gunicorn sync")
    sync_all, _every, sync_driver = _run(
        _scenario({"kind": "gunicorn", "worker_class": "sync", "workers": 1}, "gunicorn sync")
    )
    sync = sync_all[3:]
    report(0.6, "gunicorn sync --max-requests 1")
    recycle = recycle_costs()
    report(0.8, "accept(), gthread steps, GIL hand-off")
    accept_ms = accept_cost_ms()
    costs = {
        "accept_ms": accept_ms,
        "wakeup_ms": wakeup_cost_ms(sync, sync_driver, accept_ms),
        "reap_ms": recycle["reap_ms"],
        **gthread_costs(),
        "error_ms": error_ms(),
        "thread_boot_ms": thread_boot_ms(),
        "close_ms": close_ms(),
        "instruction_ms": instruction_ms(),
        "thread_start_ms": _span(threaded, "accept", "handle"),
        "fork_ms": _span(forking, "accept", "handle"),
        # a forked child's request costs more CPU than a thread's: copy-on-write faults
        "fork_child_ms": max(0.0, round(_median([r["cpu"] for r in forking if "cpu" in r])
                                        - _median([r["cpu"] for r in threaded if "cpu" in r]), 3)),
        "first_request_ms": max(0.0, round(_median([_first_extra_ms(threaded_all, threaded),
                                                    _first_extra_ms(sync_all, sync)]), 3)),
        "recv_ms": _span(threaded, "handle", "parse_start"),
        "parse_ms": _span(threaded, "parse_start", "app_start"),
        "context_ms": _span(threaded, "app_start", "match_start"),
        "match_ms": _span(threaded, "match_start", "before_start"),
        "before_request_ms": _span(threaded, "before_start", "view_start"),
        "after_request_ms": _span(threaded, "view_end", "after_end"),
        "teardown_ms": _span(threaded, "after_end", "app_end"),
        "write_ms": _span(sync, "app_end", "written"),
    }
    # Only what this simulator knows (a profile is laid over a scenario's costs).
    from wsgiscope.simulator.scenario import COSTS

    costs = {k: v for k, v in costs.items() if k in COSTS}
    # werkzeug's write stage also waits for leftover input before it closes
    costs["werkzeug_drain_ms"] = max(
        0.0, round(_span(threaded, "app_end", "written") - costs["write_ms"], 3)
    )
    handoff = gil_handoff_ms()
    machine = machine_facts()
    machine["rtt_ms"] = rtt_ms()
    machine["context_switch_ms"] = context_switch_ms()
    profile = {
        "costs": costs,
        "machine": machine,
        "measured": {
            "boot_ms": recycle["boot_ms"],
            "recycle": recycle,
            "loadavg": [loadavg_before, loadavg()],
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
