"""gunicorn configuration for lab servers: server hooks that record every request.

Loaded with ``gunicorn -c python:wsgiscope.app.lab.gunicorn_hooks``; everything else (worker class,
workers, threads, backlog, timeout ...) comes from the command line the launcher builds.

* ``when_ready`` (arbiter): a ``ready`` record with the port the kernel picked.
* ``post_fork`` (worker): first of all, the worker dies with the arbiter
  (:func:`~wsgiscope.app.lab.launcher.die_with_parent`: a worker busy in a long request
  would otherwise outlive a killed arbiter, and keep the port open); then a ``boot``
  record; wraps the worker's connection hand-off so the accept time of each connection is
  stamped (sync and gevent: ``handle`` right after ``accept()``; gthread: ``enqueue_req``
  right after ``accept()`` in the main thread, and ``handle`` when a pool thread picks the
  connection up).
* ``post_worker_init``: a worker ``ready`` record.
* ``pre_request`` / ``post_request``: the request's parse-done and written times, thread,
  CPU time and status, merged with what the Flask app recorded; one line per request.
* ``worker_abort`` (worker, on the arbiter's timeout SIGABRT): the in-flight requests are
  written as aborted. ``child_exit`` (arbiter): an ``exit`` record.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Any

from wsgiscope.app.lab.launcher import die_with_parent
from wsgiscope.app.lab.recorder import (
    ENVIRON_KEY,
    RecordSink,
    load_config,
    now_ms,
    thread_cpu_ms,
)

_cfg = load_config()
_sink = RecordSink(_cfg["record_dir"])
_accepted: dict[Any, float] = {}
_picked: dict[Any, tuple[float, int]] = {}
_in_flight: dict[int, dict[str, Any]] = {}
#: Finished requests' records, written once their connection is closed (:func:`_flush`).
_pending: deque[dict[str, Any]] = deque()

# Quiet, quick to stop.
loglevel = "warning"
graceful_timeout = 2


def when_ready(server: Any) -> None:
    port = server.LISTENERS[0].getsockname()[1]
    _sink.write({"kind": "ready", "t": now_ms(), "port": port, "server": "gunicorn"})


def post_fork(server: Any, worker: Any) -> None:
    die_with_parent(worker.ppid)
    _sink.write({"kind": "boot", "t": now_ms(), "age": worker.age})
    worker_class = type(worker).__name__
    if worker_class == "ThreadWorker":
        enqueue_req = worker.enqueue_req
        handle = worker.handle

        def lab_enqueue_req(conn: Any) -> Any:
            _accepted.setdefault(conn.client, now_ms())
            return enqueue_req(conn)

        def lab_handle(conn: Any) -> Any:
            _picked.setdefault(conn.client, (now_ms(), threading.get_ident()))
            return handle(conn)

        finish_request = worker.finish_request

        def lab_finish_request(*args: Any) -> Any:
            try:
                return finish_request(*args)  # the main thread closes (or keeps) it
            finally:
                _flush()

        worker.enqueue_req = lab_enqueue_req
        worker.handle = lab_handle
        worker.finish_request = lab_finish_request
    else:
        handle = worker.handle

        def lab_handle_conn(listener: Any, client: Any, addr: Any) -> Any:
            _accepted[addr] = now_ms()
            try:
                return handle(listener, client, addr)  # closes the connection
            finally:
                _flush()

        worker.handle = lab_handle_conn


def post_worker_init(worker: Any) -> None:
    _sink.write({"kind": "worker_ready", "t": now_ms(), "age": worker.age})


def pre_request(worker: Any, req: Any) -> None:
    t = now_ms()
    peer = req.peer_addr
    picked = _picked.pop(peer, None)
    rec = {
        "kind": "request",
        "accept": _accepted.pop(peer, None),
        "handle": picked[0] if picked else None,
        "parsed": t,
        "cpu0": thread_cpu_ms(),
        "tid": threading.get_ident(),
        "ntid": threading.get_native_id(),
        "peer": peer[1] if isinstance(peer, tuple) else 0,
    }
    for name, value in req.headers:
        if name.upper() == "X-LAB-REQ" and value.isdigit():
            rec["req"] = int(value)
    rec["path"] = req.path
    req.lab_record = rec
    _in_flight[id(req)] = rec


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    rec = getattr(req, "lab_record", None)
    if rec is None:
        return
    _in_flight.pop(id(req), None)
    if rec.get("written_out"):
        return
    rec["written"] = now_ms()
    rec["cpu"] = thread_cpu_ms() - rec.pop("cpu0")
    app_rec = environ.get(ENVIRON_KEY, {}) if environ else {}
    for key, value in app_rec.items():
        if key not in ("cpu0", "tid"):
            rec.setdefault(key, value)
    if resp is not None and getattr(resp, "status_code", None):
        rec["status"] = resp.status_code
    rec["written_out"] = True
    _pending.append(rec)


def _flush() -> None:
    """Write the records of requests whose connection is closed now.

    post_request runs before the worker closes the connection, and the client's response
    ends only when it sees the close: a file write there would be one more system call,
    one more GIL hand-over, inside every request the lab times. So it waits until here."""
    while _pending:
        _sink.write(_pending.popleft())


def worker_abort(worker: Any) -> None:
    t = now_ms()
    _flush()
    _sink.write({"kind": "abort", "t": t})
    for rec in list(_in_flight.values()):
        if rec.get("written_out"):
            continue
        rec["aborted"] = t
        rec["written"] = t
        rec.pop("cpu0", None)
        rec["written_out"] = True
        _sink.write(dict(rec))


def child_exit(server: Any, worker: Any) -> None:
    _sink.write({"kind": "exit", "t": now_ms(), "worker_pid": worker.pid, "age": worker.age})


def worker_exit(server: Any, worker: Any) -> None:
    _flush()
    _sink.write({"kind": "worker_exit", "t": now_ms(), "pid": os.getpid()})
