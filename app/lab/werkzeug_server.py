"""Run the lab app on werkzeug's development server, instrumented.

Started by the launcher as ``python -m wsgiscope.app.lab.werkzeug_server`` with
``$WSGISCOPE_LAB_CONFIG`` naming the run's config file. It calls
:func:`werkzeug.serving.run_simple` with the scenario's ``threaded`` and ``processes``
exactly as ``app.run`` would, on 127.0.0.1 port 0 (the kernel picks a free port), and
reports the port in a ``ready`` record.

Instrumentation: the server's ``get_request`` is wrapped to stamp the accept time of each
connection (keyed by the client's address; a forked child inherits the stamp), and a
:class:`~werkzeug.serving.WSGIRequestHandler` subclass stamps when the handler starts
(in the new thread or child process), when the request line has been read, when the
environ is built and when the response has been written, then writes the request's
record.

With ``processes=N`` every forked child dies with the server (``PR_SET_PDEATHSIG``, set
right after the fork), so a killed server leaves no child serving, or holding the port.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from werkzeug import serving

from .demo_app import ENVIRON_KEY, create_app
from .launcher import die_with_parent
from .recorder import RecordSink, load_config, now_ms, thread_cpu_ms

_ACCEPTED: dict[Any, float] = {}
#: Finished requests' records by connection, written once it is shut down and closed.
_DONE: dict[int, dict[str, Any]] = {}


class LabRequestHandler(serving.WSGIRequestHandler):
    sink: RecordSink

    def setup(self) -> None:
        self._lab: dict[str, Any] = {
            "accept": _ACCEPTED.pop(self.client_address, None),
            "handle": now_ms(),
            "cpu0": thread_cpu_ms(),
            "tid": threading.get_ident(),
            "ntid": threading.get_native_id(),
            "peer": self.client_address[1] if isinstance(self.client_address, tuple) else 0,
        }
        super().setup()

    def parse_request(self) -> bool:
        self._lab["parse_start"] = now_ms()
        return super().parse_request()

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        self._lab["parsed"] = now_ms()
        environ[ENVIRON_KEY] = self._lab
        return environ

    def handle(self) -> None:
        try:
            super().handle()
        finally:
            rec = self._lab
            rec["written"] = now_ms()
            rec["cpu"] = thread_cpu_ms() - rec.pop("cpu0")
            rec["kind"] = "request"
            if "parse_start" in rec:
                # Written after the connection is shut down (see main's shutdown_request):
                # the client's response ends at that shutdown, and a file write before it
                # would be one more GIL hand-over inside every request the lab times.
                _DONE[id(self.request)] = rec

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the lab keeps its own records; werkzeug's access log would only cost time


def main() -> None:
    # werkzeug forks a child per connection (processes > 1): each dies with this server.
    os.register_at_fork(after_in_child=functools.partial(die_with_parent, os.getpid()))
    cfg = load_config()
    sink = RecordSink(cfg["record_dir"])
    server_cfg = cfg["scenario"]["server"]
    backlog = int(server_cfg.get("backlog", serving.LISTEN_QUEUE))

    base = serving.BaseWSGIServer
    base.request_queue_size = backlog  # what listen() is called with (LISTEN_QUEUE = 128)

    original_get_request = base.get_request

    def get_request(self: serving.BaseWSGIServer) -> Any:
        conn, addr = original_get_request(self)
        _ACCEPTED[addr] = now_ms()
        return conn, addr

    base.get_request = get_request  # type: ignore[method-assign]

    original_shutdown_request = base.shutdown_request

    def shutdown_request(self: serving.BaseWSGIServer, request: Any) -> None:
        try:
            original_shutdown_request(self, request)
        finally:
            rec = _DONE.pop(id(request), None)
            if rec is not None:
                sink.write(rec)

    base.shutdown_request = shutdown_request  # type: ignore[method-assign]

    original_serve_forever = base.serve_forever

    def serve_forever(self: serving.BaseWSGIServer, poll_interval: float = 0.5) -> None:
        sink.write({"kind": "ready", "t": now_ms(), "port": self.port, "server": "werkzeug"})
        original_serve_forever(self, poll_interval)

    base.serve_forever = serve_forever  # type: ignore[method-assign]

    LabRequestHandler.sink = sink
    app = create_app(cfg["scenario"], cfg.get("seed"))
    sink.write({"kind": "boot", "t": now_ms(), "ppid": os.getppid()})
    serving.run_simple(
        "127.0.0.1",
        0,
        app,
        threaded=bool(server_cfg.get("threaded", True)),
        processes=int(server_cfg.get("processes", 1)),
        request_handler=LabRequestHandler,
        use_reloader=False,
        use_debugger=False,
    )


if __name__ == "__main__":
    main()
