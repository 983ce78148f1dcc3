"""A client request as the models see it, and the recorder that logs what happens to it.

Both sit below every model (cores, GIL, threads, servers) and import none of them: a model
takes a :class:`Request` and writes events (:class:`~.trace.Event`) through a
:class:`Recorder`.
"""

from __future__ import annotations

from typing import Any

from .core import Env
from .eventlog import KINDS, EventLog
from .trace import RequestRecord

#: One zero for every record's sum that stayed zero (a compiled build keeps the sums as
#: machine floats and would box a new 0.0 into each record).
_ZERO: Any = 0.0


class Request:
    """One client request, from its first SYN to its last byte."""

    __slots__ = ("id", "path", "sent", "attempt", "status", "http_status", "finished",
                 "accepted", "started", "worker", "thread", "queue_ms", "gil_wait_ms",
                 "cpu_ms", "pool_wait_ms", "pool_from", "io_ms", "note", "server_done",
                 "g", "ack_try", "connected", "send_ms", "log_id")

    def __init__(self, rid: int, path: str, sent: float, send_ms: float = 0.0) -> None:
        self.id = rid
        #: ``id`` as the event log holds it: one object for all the request's events (a
        #: compiled build keeps ``id`` as a machine int and would box a new one per event)
        self.log_id: Any = rid
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
        # positional: 100,000s of these at the end of a big run. The sums start at +0.0 and
        # only grow by +=, so one that is zero is +0.0 and may be the shared one.
        zero = _ZERO
        return RequestRecord(
            self.log_id, self.path, self.sent, self.accepted, self.started, self.finished,
            self.status or "timeout", self.http_status, self.worker, self.thread, self.attempt,
            self.queue_ms, self.gil_wait_ms or zero, self.cpu_ms or zero,
            self.pool_wait_ms or zero, self.io_ms or zero, self.note, self.send_ms,
        )


class Recorder:
    """Writes events into the run's :class:`~.trace.EventLog`, a column at a time.

    Each method appends one event; ``events.append(Event(...))`` works too (for a kind
    without a method here), but costs more.
    """

    __slots__ = ("env", "events", "_t", "_code", "_who", "_what", "_ref")

    def __init__(self, env: Env) -> None:
        self.env = env
        self.events = EventLog()
        # the log's columns are never replaced, so they (and the arrays' appends) can be
        # kept: inlined for speed (the lists typed, for a compiled build's own append)
        log = self.events
        self._t = log.t.append
        self._code = log.codes.append
        self._who: list[Any] = log.who
        self._what: list[Any] = log.what
        self._ref: list[Any] = log.ref

    def thread(self, key: str, state: str, req: Request | None) -> None:
        self._t(self.env.now)
        self._code(_THREAD)
        self._who.append(key)
        self._what.append(state)
        self._ref.append(req.log_id if req is not None else -1)

    def gil(self, proc: str, holder: str) -> None:
        self._t(self.env.now)
        self._code(_GIL)
        self._who.append(proc)
        self._what.append(holder)
        self._ref.append(-1)

    def backlog(self, depth: int) -> None:
        self._t(self.env.now)
        self._code(_BACKLOG)
        self._who.append("listen")
        self._what.append(depth)
        self._ref.append(-1)

    def req(self, req: Request, phase: str, detail: str = "") -> None:
        self._t(self.env.now)
        self._code(_REQ)
        self._who.append(req.log_id)
        self._what.append(phase)
        self._ref.append(detail)

    def stage(self, req: Request, stage: str) -> None:
        self._t(self.env.now)
        self._code(_REQ)
        self._who.append(req.log_id)
        self._what.append("stage")
        self._ref.append(stage)

    def worker(self, key: str, what: str, detail: str) -> None:
        self._t(self.env.now)
        self._code(_WORKER)
        self._who.append(key)
        self._what.append(what)
        self._ref.append(detail)


_THREAD, _GIL, _BACKLOG, _REQ, _WORKER = (KINDS.index(k) for k in
                                          ("thread", "gil", "backlog", "req", "worker"))
