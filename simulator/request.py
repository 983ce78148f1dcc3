"""A client request as the models see it, and the recorder that logs what happens to it.

Both sit below every model (cores, GIL, threads, servers) and import none of them: a model
takes a :class:`Request` and writes :class:`~.trace.Event` tuples through a
:class:`Recorder`.
"""

from __future__ import annotations

from .core import Env
from .trace import Event, RequestRecord


class Request:
    """One client request, from its first SYN to its last byte."""

    __slots__ = ("id", "path", "sent", "attempt", "status", "http_status", "finished",
                 "accepted", "started", "worker", "thread", "queue_ms", "gil_wait_ms",
                 "cpu_ms", "pool_wait_ms", "pool_from", "io_ms", "note", "server_done",
                 "g", "ack_try", "connected", "send_ms")

    def __init__(self, rid: int, path: str, sent: float, send_ms: float = 0.0) -> None:
        self.id = rid
        self.path = path
        self.sent = sent
        self.send_ms = send_ms
        self.attempt = 0
        self.status = ""  # "" while the client is still waiting
        self.http_status: int | None = None
        self.finished: float | None = None
        self.accepted: float | None = None
        self.started: float | None = None
        self.worker: str | None = None
        self.thread: str | None = None
        self.queue_ms = 0.0
        self.gil_wait_ms = 0.0
        self.cpu_ms = 0.0
        self.pool_wait_ms = 0.0
        self.pool_from = 0.0
        self.io_ms = 0.0
        self.note = ""
        self.server_done = False
        self.g: dict[str, int] = {}
        self.ack_try = 0
        self.connected = 0.0

    def record(self) -> RequestRecord:
        # positional: 100,000s of these at the end of a big run
        return RequestRecord(
            self.id, self.path, self.sent, self.accepted, self.started, self.finished,
            self.status or "timeout", self.http_status, self.worker, self.thread, self.attempt,
            self.queue_ms, self.gil_wait_ms, self.cpu_ms, self.pool_wait_ms, self.io_ms,
            self.note, self.send_ms,
        )


class Recorder:
    """Appends :class:`Event` tuples to the trace's log."""

    __slots__ = ("env", "events")

    def __init__(self, env: Env) -> None:
        self.env = env
        self.events: list[Event] = []

    # tuple.__new__ skips NamedTuple's Python-level constructor: inlined for speed
    def thread(self, key: str, state: str, req: Request | None) -> None:
        self.events.append(_new(Event, (self.env.now, "thread", key, state,
                                        req.id if req is not None else -1)))

    def gil(self, proc: str, holder: str) -> None:
        self.events.append(_new(Event, (self.env.now, "gil", proc, holder, -1)))

    def backlog(self, depth: int) -> None:
        self.events.append(_new(Event, (self.env.now, "backlog", "listen", depth, -1)))

    def req(self, req: Request, phase: str, detail: str = "") -> None:
        self.events.append(_new(Event, (self.env.now, "req", req.id, phase, detail)))

    def stage(self, req: Request, stage: str) -> None:
        self.events.append(_new(Event, (self.env.now, "req", req.id, "stage", stage)))

    def worker(self, key: str, what: str, detail: str) -> None:
        self.events.append(_new(Event, (self.env.now, "worker", key, what, detail)))


_new = tuple.__new__
