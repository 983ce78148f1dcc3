"""The Trace: the one result type of wsgiscope.

A simulated run (:func:`simulator.run`) and a measured run (the lab) both produce a
:class:`Trace`. Everything downstream -- frames, narration, exports, comparison, the CLI,
the browser -- reads only a Trace.

A Trace holds:

* ``events``: an ordered log of :class:`Event` tuples ``(t, kind, who, what, ref)``, with
  ``t`` in milliseconds since the first request was sent, held by column in an
  :class:`EventLog` (iterating or indexing it gives :class:`Event` tuples). The kinds are

  ========== ============================ ================================ =====================
  kind       who                          what                             ref
  ========== ============================ ================================ =====================
  thread     thread key ``"w1/t1"``       state (:data:`THREAD_STATES`)    request id or -1
  gil        process key ``"w1"``         holder thread key, "" when free, -1
                                          "?" when not known (measured)
  backlog    listener key ``"listen"``    accept-queue depth (int)         -1
  req        request id (int)             phase (see :data:`REQ_PHASES`)   detail (str)
  worker     process key                  boot, ready, killed, exit        detail (str)
  core       thread key                   core index (int, from 0)         detail (str)
  ========== ============================ ================================ =====================

  ``core`` events are written only when threads share a core: a thread joined a core that
  runs others (detail: their keys, comma-separated) or the scheduler's load balancing moved
  it there (detail: ``moved from core i``).

  Request phases: ``syn`` (a SYN was sent; detail is the attempt number), ``drop`` (the SYN
  found the accept queue full and was dropped), ``overflow`` (the handshake completed but
  the queue was full when the final ACK came, so the kernel dropped the ACK; the client
  thinks it is connected and its retransmits will try again), ``backlog`` (the connection
  is complete and
  waits in the kernel accept queue), ``accept`` (a server thread took it; detail is the
  thread key), ``pool`` (accepted, waiting for a free worker thread), ``stage`` (detail is a
  lifecycle stage from :data:`STAGES`), ``read`` (the view read a global or ``g``; detail
  says whose value it got), ``store`` (the view wrote a global, ``g`` or a
  ``threading.local``: detail ``global.user``, ``g.user`` or ``local.user``), ``outcome``
  (the request took one of Flask's other paths: a hook's early response, an abort, an
  exception, a route that does not match; detail says which and what teardown receives),
  ``race`` (an unlocked increment was switched out
  between its load and its store, or stored over other threads' updates; detail says
  which), ``done`` (detail is the status).

  While a request is on a thread, its fine state (waiting for the GIL, running on a core,
  blocked on I/O) is the state of that thread: see the ``thread`` events.

* ``requests``: one :class:`RequestRecord` per request, in id order.
* ``summary``: see :func:`summarise`.
* ``processes``: the lanes, one dict per process, ``{"key", "label", "threads": [...]}``.
  Thread keys are lane slots: a thread-per-connection server reuses the lowest free slot.
* ``backlog_limit``: how many connections the accept queue holds (``backlog + 1``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from typing import Any

from .eventlog import KINDS as KINDS
from .eventlog import Event as Event
from .eventlog import EventLog as EventLog

#: Thread states, in the order a legend shows them. ``unknown`` is for measured runs only:
#: a time when the lab could not tell what the thread was doing (never drawn as running).
THREAD_STATES = ("idle", "gil", "cpu", "io", "dead", "unknown")

#: Request phases recorded as ``req`` events.
REQ_PHASES = ("syn", "drop", "overflow", "backlog", "accept", "pool", "stage", "read",
              "store", "outcome", "race", "done")

#: Flask/WSGI lifecycle stages a request walks through, in order.
STAGES = (
    "recv",  # the server reads the request from the socket (blocking: releases the GIL)
    "parse",  # WSGIRequestHandler / gunicorn parser: request line, headers, environ
    "context",  # Flask pushes the app and request contexts (g, request, session)
    "match",  # URL routing: the rule and view arguments
    "before_request",  # before_request functions, app then blueprint
    "view",  # the endpoint's segments
    "after_request",  # make_response, after_request functions in reverse order
    "teardown",  # teardown_request / teardown_appcontext as the context pops
    "write",  # the server writes status, headers and body, closes the connection
)

#: Stages only some requests walk through, after ``view`` (or ``before_request`` when the URL
#: matched no rule): Flask handling an exception -- ``handle_user_exception`` or
#: ``handle_exception``, and the ``errorhandler`` that answers, if any.
ERROR_STAGES = ("error",)

#: The per-request fields of the result format (docs/ARCHITECTURE.md); a RequestRecord has more.
RESULT_FIELDS = (
    "id", "path", "sent_ms", "accepted_ms", "started_ms", "finished_ms", "status",
    "http_status", "worker", "thread", "syn_retries", "queue_ms", "gil_wait_ms", "cpu_ms",
)

#: Request statuses (the result format, docs/ARCHITECTURE.md).
STATUSES = ("ok", "error", "reset", "timeout")


@dataclass(slots=True)  # slots: a big run holds 100,000s of these
class RequestRecord:
    """What happened to one request. Times are ms since the first request was sent;
    a time the request never reached is ``None``."""

    id: int
    path: str
    sent_ms: float
    accepted_ms: float | None = None
    started_ms: float | None = None
    finished_ms: float | None = None
    status: str = "ok"
    http_status: int | None = None
    worker: str | None = None
    thread: str | None = None
    syn_retries: int = 0
    queue_ms: float = 0.0
    gil_wait_ms: float = 0.0
    cpu_ms: float = 0.0
    pool_wait_ms: float = 0.0
    io_ms: float = 0.0
    note: str = ""
    send_ms: float = 0.0  # how long the client took to send its request

    @property
    def latency_ms(self) -> float | None:
        if self.finished_ms is None:
            return None
        return self.finished_ms - self.sent_ms


@dataclass
class Trace:
    """The result of a run, simulated or measured (see the module docstring)."""

    scenario: dict[str, Any]
    source: str  # "simulated" or "measured"
    #: The event log. Given a list of events (or anything iterable), the Trace stores it as
    #: an :class:`EventLog`, whether passed to the constructor or assigned later.
    events: EventLog = field(default_factory=EventLog)
    requests: list[RequestRecord] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)
    backlog_limit: int = 0
    cores: int = 1
    summary: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "events" and not isinstance(value, EventLog):
            value = EventLog(value)
        object.__setattr__(self, name, value)

    @property
    def end_ms(self) -> float:
        """The time of the last event (0.0 for an empty trace)."""
        t = self.events.t
        return t[-1] if t else 0.0

    def request_events(self, req_id: int) -> list[Event]:
        """Every event that concerns one request, in time order."""
        log = self.events
        req, thread = log.code("req"), log.code("thread")
        return [
            log[i]
            for i, (code, who, ref) in enumerate(zip(log.codes, log.who, log.ref, strict=True))
            if (code == req and who == req_id) or (code == thread and ref == req_id)
        ]

    def to_result(self) -> dict[str, Any]:
        """The result format (docs/ARCHITECTURE.md): ``{"requests": [...], "summary": {...}}``.
        :func:`.export.write_json` writes the same as text without building it."""
        return {
            "source": self.source,
            "scenario": self.scenario.get("name", ""),
            "seed": self.seed,
            "requests": [result_row(r) for r in self.requests],
            "summary": self.summary,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (events as lists), for exports and the browser."""
        out = self.to_result()
        out["scenario"] = self.scenario
        out["processes"] = self.processes
        out["backlog_limit"] = self.backlog_limit
        out["cores"] = self.cores
        out["events"] = [[round(t, 4), kind, who, what, ref]
                         for t, kind, who, what, ref in self.events.rows()]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        """The inverse of :meth:`to_dict`."""
        names = RequestRecord.__dataclass_fields__
        return cls(
            scenario=data["scenario"],
            source=data.get("source", "simulated"),
            events=EventLog(data["events"]),
            requests=[
                RequestRecord(**{k: v for k, v in r.items() if k in names})
                for r in data["requests"]
            ],
            processes=data.get("processes", []),
            backlog_limit=data.get("backlog_limit", 0),
            cores=data.get("cores", 1),
            summary=data.get("summary", {}),
            seed=data.get("seed"),
        )


#: Every field of a RequestRecord, in order: the keys of a request in the result format.
RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))
_record_values = attrgetter(*RECORD_FIELDS)


def result_row(r: RequestRecord) -> dict[str, Any]:
    """One request of the result format: every field of the record, floats rounded to the
    microsecond (what ``dataclasses.asdict`` and a rounding gave, without its deep copy)."""
    if type(r) is not RequestRecord:  # a subclass may have more fields
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(r).items()}
    return {k: (round(v, 3) if isinstance(v, float) else v)
            for k, v in zip(RECORD_FIELDS, _record_values(r), strict=True)}


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (like numpy's default) of an ascending list."""
    if not sorted_values:
        return 0.0
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(trace: Trace) -> dict[str, Any]:
    """Compute the summary of a trace from its requests and events.

    ``latency_ms`` is over completed (``ok``) requests; ``makespan_ms`` is the time the
    last request finished; ``gil_wait_pct`` is the share of time requests spent on a thread
    that went to waiting for the GIL; ``cpu_utilisation`` is CPU time over cores x makespan.
    """
    reqs = trace.requests
    ok: list[float] = []
    counts = dict.fromkeys(STATUSES, 0)
    makespan = cpu = gil = on_thread = queue = 0.0
    syn = 0
    for r in reqs:  # one pass: this runs on traces of 100,000s of requests
        counts[r.status] = counts.get(r.status, 0) + 1
        fin = r.finished_ms
        if fin is not None:
            if fin > makespan:
                makespan = fin
            if r.status == "ok":
                ok.append(fin - r.sent_ms)
            if r.accepted_ms is not None:
                on_thread += fin - r.accepted_ms
        cpu += r.cpu_ms
        gil += r.gil_wait_ms
        queue += r.queue_ms
        syn += r.syn_retries
    ok.sort()
    completed = len(ok)
    # remembered by the log as it was written: no pass over the events here
    max_backlog = trace.events.max_backlog()
    return {
        "requests": len(reqs),
        "completed": completed,
        "failed": len(reqs) - completed,
        "errors": counts["error"],
        "timeouts": counts["timeout"],
        "resets": counts["reset"],
        "makespan_ms": round(makespan, 3),
        "throughput_rps": round(completed / (makespan / 1000.0), 3) if makespan > 0 else 0.0,
        "latency_ms": {
            "mean": round(sum(ok) / len(ok), 3) if ok else 0.0,
            "p50": round(percentile(ok, 50), 3),
            "p95": round(percentile(ok, 95), 3),
            "p99": round(percentile(ok, 99), 3),
            "max": round(ok[-1], 3) if ok else 0.0,
        },
        "max_backlog": max_backlog,
        "syn_retries": syn,
        "mean_queue_ms": round(queue / len(reqs), 3) if reqs else 0.0,
        "gil_wait_pct": round(100.0 * gil / on_thread, 2) if on_thread > 0 else 0.0,
        "cpu_utilisation": (
            round(cpu / (trace.cores * makespan), 4) if makespan > 0 and trace.cores else 0.0
        ),
    }
