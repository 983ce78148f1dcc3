"""What every narration rule shares: the words, the story being told, and the Rule itself.

A :class:`Story` is one narration in progress: the run's facts, the candidate lines said so
far (each with an importance level), and :class:`World`, the few facts about the run so far
that more than one mechanism reads. A :class:`Rule` is one mechanism's narration: it names
the events it listens to and says lines about them through the story.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..trace import RequestRecord, Trace

#: Lines returned when the caller gives no ``max_lines``.
DEFAULT_MAX_LINES = 80

# Requests told in full (sent, accepted, answered); later ones only when something notable
# happens to them (a dropped SYN, a timeout, a killed worker).
DETAILED_REQUESTS = 12
#: A wait shorter than this is "at once" (accept costs and hand-offs take microseconds).
AT_ONCE_MS = 1.0

# Capacity of a server whose accept does not wait for a free thread.
_UNBOUNDED = 1 << 30

# Importance of a line: lower is kept first when lines are capped.
ALWAYS, LESSON, DETAIL, FINE = 0, 1, 2, 3

#: What a rule is called with for each event it listens to: ``(t, who, what, ref)``.
Handler = Callable[[float, Any, Any, Any], None]


def fmt_t(ms: float) -> str:
    """A point in time as the narration writes it: ``T=1.250 s``."""
    return f"T={ms / 1000.0:.3f} s"


def fmt_dur(ms: float) -> str:
    """A duration: ``4.2 ms`` below a second, ``1.250 s`` from a second up."""
    if abs(ms) < 1000.0:
        return f"{ms:.1f} ms"
    return f"{ms / 1000.0:.3f} s"


def user(req_id: int | str) -> str:
    """How the narration names a request: the client that sent it, counted from 1."""
    return f"user {int(req_id) + 1}"


def describe_server(scenario: dict[str, Any]) -> str:
    """One phrase for the server a scenario runs, e.g. ``gunicorn sync, 2 workers``."""
    server = scenario.get("server", {}) or {}
    kind = server.get("kind", "werkzeug")
    if kind == "werkzeug":
        processes = int(server.get("processes", 1))
        if processes > 1:
            return f"werkzeug dev server, a forked process per request (at most {processes})"
        if server.get("threaded", True):
            return "werkzeug dev server, a new thread per request (threaded=True)"
        return "werkzeug dev server, one thread (threaded=False)"
    wc = server.get("worker_class", "sync")
    workers = int(server.get("workers", 1))
    w = "1 worker" if workers == 1 else f"{workers} workers"
    if wc == "gthread":
        threads = int(server.get("threads", 1))
        return f"gunicorn gthread, {w} x {threads} threads"
    if wc == "gevent":
        return (
            f"gunicorn gevent, {w}, up to {server.get('worker_connections', 1000)} greenlets each"
        )
    return f"gunicorn sync, {w}"


def capacity(scenario: dict[str, Any]) -> tuple[int, str]:
    """How many requests the server serves at once, and why a queued one waits."""
    server = scenario.get("server", {}) or {}
    if server.get("kind", "werkzeug") == "werkzeug":
        processes = int(server.get("processes", 1))
        if processes > 1:
            return processes, (
                f"all {processes} child processes are busy, so the server waits for one to "
                "exit and accepts nothing"
            )
        if server.get("threaded", True):
            return _UNBOUNDED, "the accept loop has not got to it yet"
        return 1, "the only thread is busy"
    workers = int(server.get("workers", 1))
    wc = server.get("worker_class", "sync")
    if wc == "sync":
        if workers == 1:
            return 1, "the only worker is busy"
        return workers, f"all {workers} workers are busy"
    conns = int(server.get("worker_connections", 1000))
    return _UNBOUNDED + workers * conns, f"every worker already holds {conns} connections"


def lane_name(scenario: dict[str, Any], thread_key: str) -> str:
    """How the narration names a thread lane: ``worker w1`` for gunicorn's one-thread
    workers (sync, gevent), ``thread w1/t2`` otherwise."""
    server = scenario.get("server", {}) or {}
    if server.get("kind") == "gunicorn" and server.get("worker_class", "sync") != "gthread":
        return f"worker {thread_key.split('/', 1)[0]}"
    return f"thread {thread_key}"


class World:
    """Facts about the run so far that more than one mechanism reads. Each is kept up to
    date by the one rule named beside it; the others only read it."""

    def __init__(self) -> None:
        # threads.Threads
        self.threads: dict[str, tuple[str, int]] = {}  # thread -> (state, request or -1)
        self.prev: tuple[str, int] | None = None  # what the thread of this event was doing
        self.busy = 0  # threads serving a request
        self.last_full = -1.0  # the last time every thread that can serve was serving
        self.on_cpu = 0  # threads running on a core
        self.on_thread: dict[int, str] = {}  # request -> the thread it last ran on
        # kernel.Kernel
        self.attempt: dict[int, int] = {}  # request -> SYNs sent so far
        self.ack_dropped: set[int] = set()  # requests whose final ACK was dropped
        # accept.Accept
        self.in_backlog: dict[int, float] = {}  # request -> when it entered the accept queue
        self.acceptors: dict[int, str] = {}  # request -> the thread that accepted it
        # gil.Gil
        self.gil_left: dict[str, float] = {}  # thread -> when it last stopped waiting for it
        # lifecycle.Lifecycle
        self.workers_up: set[str] = set()  # gunicorn workers ready to accept
        self.workers_seen = False  # whether the trace logs workers at all


class Story:
    """One narration in progress: the run's facts and the candidate lines said so far."""

    def __init__(self, trace: Trace, cap: int) -> None:
        self.trace = trace
        self.scenario: dict[str, Any] = trace.scenario or {}
        machine = self.scenario.get("machine", {}) or {}
        server = self.scenario.get("server") or {}
        self.switch_ms = float(machine.get("switch_interval_ms", 5.0))
        self.capacity, self.busy_reason = capacity(self.scenario)
        self.gil = machine.get("gil", True) is not False
        self.gunicorn = server.get("kind") == "gunicorn"
        self.gevent = self.gunicorn and server.get("worker_class") == "gevent"
        self.forking = not self.gunicorn and int(server.get("processes", 1)) > 1
        self.records: dict[int, RequestRecord] = {r.id: r for r in trace.requests}
        self.n_requests = len(trace.requests)
        # a run small enough for its cap is told request by request; a larger one only
        # for its first requests
        self.detailed = (
            self.n_requests if self.n_requests <= cap // 3 else max(DETAILED_REQUESTS, cap // 4)
        )
        self.world = World()
        self.lines: list[tuple[int, float, int, str]] = []  # (level, t, seq, text)
        self.skipped = 0  # things worth a line that were only counted
        self.first: set[str] = set()  # lessons told once already

    def say(self, level: int, t: float, text: str) -> None:
        """Add a candidate line at ``t`` with importance ``level``."""
        self.lines.append((level, t, len(self.lines), f"{fmt_t(t)} — {text}"))

    def once(self, what: str) -> bool:
        """True the first time ``what`` is asked about, False after."""
        if what in self.first:
            return False
        self.first.add(what)
        return True

    def detailed_req(self, r: int) -> bool:
        """Whether request ``r`` is one of those told in full."""
        return r < self.detailed

    def tell(self, key: str, t: float, r: int, lesson: str, detail: str | None = None,
             level: int = LESSON) -> None:
        """Say ``lesson`` the first time ``key`` happens (at ``level``, a lesson by
        default), ``detail`` (or the same text) for the first requests, and only count it
        after that."""
        if self.once(key):
            self.say(level, t, lesson)
        elif self.detailed_req(r):
            self.say(DETAIL, t, lesson if detail is None else detail)
        else:
            self.skipped += 1

    def request_path(self, r: int) -> str:
        rec = self.records.get(r)
        return rec.path if rec is not None else "?"


class Rule:
    """One mechanism's narration. A subclass lists the events it listens to in
    :meth:`listens` and overrides whichever of the other hooks it needs; rules hear about
    each event in the order the registry (``rules.RULES``) lists them."""

    def __init__(self, story: Story) -> None:
        self.story = story
        self.world = story.world

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        """``(kind, what, handler)`` for each event this rule reads: ``what`` narrows it to
        the events with that ``what`` (a request's phase, say); None takes every event of
        the kind."""
        return ()

    def start(self) -> None:
        """Before the first event."""

    def checkpoint(self, t: float) -> None:
        """At each progress checkpoint of a run too large to tell request by request."""

    def finish(self) -> None:
        """After the last event."""

    def closing(self) -> str | None:
        """This rule's clause of the closing summary, if it has one."""
        return None
