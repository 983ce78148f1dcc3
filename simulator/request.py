"""A client request as the models see it, and the recorder that logs what happens to it.

Both sit below every model (cores, GIL, threads, servers) and import none of them: a model
takes a :class:`Request` and writes events (:class:`~.trace.Event`) through a
:class:`Recorder`.
"""

from __future__ import annotations

from struct import pack as _pack
from typing import Any, Final

from .core import COMPILED, Env
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

    The log's ``who``, ``what`` and ``ref`` lists are appended to directly; times and kind
    codes wait in two plain lists and go into the log's arrays a few thousand at a time
    (an ``array`` takes one value per ``append`` through a slow argument parser, more than
    half of what logging an event cost). :attr:`events` moves them first, so whoever reads
    the log sees every event so far.
    """

    __slots__ = ("env", "_log", "_t", "_code", "_who", "_what", "_ref", "_peak", "_now",
                 "_now_obj")

    def __init__(self, env: Env) -> None:
        self.env = env
        self._log = EventLog()
        self._t: list[float] = []
        self._code: list[int] = []
        # the log's columns are never replaced, so they can be kept (typed, for a compiled
        # build's own append)
        log = self._log
        self._who: list[Any] = log.who
        self._what: list[Any] = log.what
        self._ref: list[Any] = log.ref
        #: the deepest backlog among the events waiting (-1: none); the log is told at
        #: :meth:`_flush`, so that summing up a run need not read its events again
        self._peak = -1
        #: the clock's time as a float object, made again only when the time has changed
        #: (:meth:`_time`)
        self._now = _NAN
        self._now_obj: Any = None

    @property
    def events(self) -> EventLog:
        """The run's event log, every event so far in it."""
        if self._t:
            self._flush()
        return self._log

    def _flush(self) -> None:
        """Move the times and codes waiting into the log's arrays."""
        t = self._t
        log = self._log
        if log._peak_n == len(log.codes):  # the log's max_backlog is up to date: keep it so
            peak = self._peak
            if peak >= 0 and (log._peak is None or peak > log._peak):
                log._peak = peak
            log._peak_n += len(t)
        self._peak = -1
        log.t.frombytes(_pack(f"{len(t)}d", *t))
        log.codes.frombytes(bytes(self._code))
        t.clear()
        self._code.clear()

    def _time(self) -> Any:
        """The clock's time as an object. A compiled build keeps ``env.now`` as a machine
        float and would make a new float object for each event; most events come at the
        same time as the one before (83 % in the M/M/8 benchmark), and share its object."""
        now = self.env.now
        if now != self._now:
            self._now = now
            self._now_obj = now
        return self._now_obj

    def thread(self, key: str, state: str, req: Request | None) -> None:
        t = self._t
        t.append(self._time() if _BOX_ONCE else self.env.now)
        self._code.append(_THREAD)
        self._who.append(key)
        self._what.append(state)
        self._ref.append(req.log_id if req is not None else -1)
        if len(t) >= _BATCH:
            self._flush()

    def gil(self, proc: str, holder: str) -> None:
        t = self._t
        t.append(self._time() if _BOX_ONCE else self.env.now)
        self._code.append(_GIL)
        self._who.append(proc)
        self._what.append(holder)
        self._ref.append(-1)
        if len(t) >= _BATCH:
            self._flush()

    def backlog(self, depth: int) -> None:
        t = self._t
        t.append(self._time() if _BOX_ONCE else self.env.now)
        self._code.append(_BACKLOG)
        self._who.append("listen")
        self._what.append(depth)
        if depth > self._peak:
            self._peak = depth
        self._ref.append(-1)
        if len(t) >= _BATCH:
            self._flush()

    def req(self, req: Request, phase: str, detail: str = "") -> None:
        t = self._t
        t.append(self._time() if _BOX_ONCE else self.env.now)
        self._code.append(_REQ)
        self._who.append(req.log_id)
        self._what.append(phase)
        self._ref.append(detail)
        if len(t) >= _BATCH:
            self._flush()

    def stage(self, req: Request, stage: str) -> None:
        t = self._t
        t.append(self._time() if _BOX_ONCE else self.env.now)
        self._code.append(_REQ)
        self._who.append(req.log_id)
        self._what.append("stage")
        self._ref.append(stage)
        if len(t) >= _BATCH:
            self._flush()

    def worker(self, key: str, what: str, detail: str) -> None:
        t = self._t
        t.append(self._time() if _BOX_ONCE else self.env.now)
        self._code.append(_WORKER)
        self._who.append(key)
        self._what.append(what)
        self._ref.append(detail)
        if len(t) >= _BATCH:
            self._flush()


#: Compiled, each event's time is boxed once per distinct time (:meth:`Recorder._time`);
#: pure Python already holds the clock's float object and just appends it.
_BOX_ONCE: Final = COMPILED
_NAN: Final = float("nan")
#: Times and codes wait in lists this long before they go into the log's arrays.
_BATCH: Final = 4096
#: The codes of :data:`~.eventlog.KINDS`, as constants (a compiled build inlines them).
_THREAD: Final = 0
_GIL: Final = 1
_BACKLOG: Final = 2
_REQ: Final = 3
_WORKER: Final = 4
assert KINDS[:6] == ("thread", "gil", "backlog", "req", "worker", "core")
