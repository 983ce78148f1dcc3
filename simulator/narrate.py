"""Narration: a run told in plain words, one timed line per thing worth saying.

:func:`narrate` reads a Trace's event log and says what happened and why, the way a teacher
would tell it to a class: who connected, who had to wait in the kernel's backlog and for
what, which SYN was dropped and when it was retried, who waited for the GIL and who held
it, which worker was killed. The browser shows these lines beside the timeline and the CLI
prints them, so they are the same words everywhere.

A large run is summarised rather than told event by event: the first requests are told in
full, every lesson is told the first time it happens, progress is reported at a few
checkpoints, and the lines are capped with a note of how many were left out.
"""

from __future__ import annotations

import re
from typing import Any

from .trace import RequestRecord, Trace

#: Lines returned when the caller gives no ``max_lines``.
DEFAULT_MAX_LINES = 80

# Requests told in full (sent, accepted, answered); later ones only when something notable
# happens to them (a dropped SYN, a timeout, a killed worker).
_DETAILED_REQUESTS = 12
# A wait shorter than this is "at once" (accept costs and hand-offs take microseconds).
_AT_ONCE_MS = 1.0
# Progress checkpoints in a large run.
_CHECKPOINTS = 8

# Capacity of a server whose accept does not wait for a free thread.
_UNBOUNDED = 1 << 30

# Importance of a line: lower is kept first when lines are capped.
_ALWAYS, _LESSON, _DETAIL, _FINE = 0, 1, 2, 3

_STAGE_WORDS = {
    "recv": "reads the request from the socket (a blocking call: the GIL is let go)",
    "parse": "parses the request line and headers into the WSGI environ",
    "context": "Flask pushes the app and request contexts, so `request` and `g` work",
    "match": "Flask matches the URL to a view function",
    "before_request": "the before_request functions run",
    "view": "the view function runs",
    "after_request": "the response is built and the after_request functions run",
    "teardown": "the context pops and teardown functions run, before the body is sent",
    "write": "the server writes status, headers and body, then closes the connection",
}


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


def _capacity(scenario: dict[str, Any]) -> tuple[int, str]:
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


def _busy(threads: dict[str, tuple[str, int]]) -> int:
    """Threads serving a request right now."""
    return sum(1 for s, q in threads.values() if q >= 0 and s != "idle")


def lane_name(scenario: dict[str, Any], thread_key: str) -> str:
    """How the narration names a thread lane: ``worker w1`` for gunicorn's one-thread
    workers (sync, gevent), ``thread w1/t2`` otherwise."""
    server = scenario.get("server", {}) or {}
    if server.get("kind") == "gunicorn" and server.get("worker_class", "sync") != "gthread":
        return f"worker {thread_key.split('/', 1)[0]}"
    return f"thread {thread_key}"


class _Narrator:
    """One pass over the events, collecting candidate lines with an importance."""

    def __init__(self, trace: Trace, cap: int) -> None:
        self.trace = trace
        self.scenario = trace.scenario or {}
        machine = self.scenario.get("machine", {}) or {}
        self.switch_ms = float(machine.get("switch_interval_ms", 5.0))
        self.capacity, self.busy_reason = _capacity(self.scenario)
        server = self.scenario.get("server") or {}
        self.gil = machine.get("gil", True) is not False
        self.gunicorn = server.get("kind") == "gunicorn"
        self.gevent = self.gunicorn and server.get("worker_class") == "gevent"
        self.forking = not self.gunicorn and int(server.get("processes", 1)) > 1
        self.records: dict[int, RequestRecord] = {r.id: r for r in trace.requests}
        self.n_requests = len(trace.requests)
        # a run small enough for its cap is told request by request; a larger one only
        # for its first requests
        self.detailed = (
            self.n_requests if self.n_requests <= cap // 3 else max(_DETAILED_REQUESTS, cap // 4)
        )
        self.lines: list[tuple[int, float, int, str]] = []  # (level, t, seq, text)
        self.skipped = 0
        self.first: set[str] = set()
        self.ack_dropped: set[int] = set()  # requests whose final ACK was dropped

    # -- helpers --------------------------------------------------------------------------
    def say(self, level: int, t: float, text: str) -> None:
        self.lines.append((level, t, len(self.lines), f"{fmt_t(t)} — {text}"))

    def once(self, what: str) -> bool:
        if what in self.first:
            return False
        self.first.add(what)
        return True

    def detailed_req(self, r: int) -> bool:
        return r < self.detailed

    def tell(self, key: str, t: float, r: int, lesson: str, detail: str | None = None,
             level: int = _LESSON) -> None:
        """Say ``lesson`` the first time ``key`` happens (at ``level``, a lesson by
        default), ``detail`` (or the same text) for the first requests, and only count it
        after that."""
        if self.once(key):
            self.say(level, t, lesson)
        elif self.detailed_req(r):
            self.say(_DETAIL, t, lesson if detail is None else detail)
        else:
            self.skipped += 1

    def request_path(self, r: int) -> str:
        rec = self.records.get(r)
        return rec.path if rec is not None else "?"

    # -- the pass -------------------------------------------------------------------------
    def run(self) -> None:
        trace = self.trace
        events = trace.events
        syn_times: dict[int, list[float]] = {}
        for e in events:
            if e.kind == "req" and e.what == "syn":
                syn_times.setdefault(int(e.who), []).append(e.t)
        acceptors: dict[int, str] = {}  # request -> the thread that accepted it

        threads: dict[str, tuple[str, int]] = {}
        gil: dict[str, str] = {}
        gil_wait: dict[str, list[Any]] = {}  # thread -> [since, req, holder]
        # threads whose wait began before the holder was known: process -> thread keys
        holder_unknown: dict[str, set[str]] = {}
        told_gil: set[int] = set()
        on_thread: dict[int, str] = {}
        depth = 0
        # requests in the accept queue whose line waits until we know how long they waited:
        # request -> (since, attempt, depth, all busy, booting)
        queued: dict[int, tuple[float, int, int, bool, bool]] = {}
        gil_left: dict[str, float] = {}  # thread -> when it last stopped waiting for the GIL
        busy = 0  # threads serving a request
        on_cpu = 0  # threads running on a core
        last_full = -1.0  # the last time every thread that can serve was serving
        in_backlog: dict[int, float] = {}  # request -> when it entered the queue
        attempt: dict[int, int] = {}
        forced: dict[str, int] = {}
        done = 0
        workers_up: set[str] = set()
        workers_seen = False
        end = trace.end_ms
        step = end / _CHECKPOINTS if self.n_requests > self.detailed else 0.0
        next_check = step if step > 0 else float("inf")

        self.intro()
        for t, kind, who, what, ref in events:
            while t > next_check and next_check < end:
                self.progress(next_check, done, len(in_backlog), threads)
                next_check += step
            if kind == "thread":
                key = str(who)
                r = int(ref)
                prev = threads.get(key)
                threads[key] = (str(what), r)
                was_busy = prev is not None and prev[1] >= 0 and prev[0] != "idle"
                now_busy = r >= 0 and what != "idle"
                if was_busy != now_busy:
                    busy += 1 if now_busy else -1
                    if busy >= self.capacity:
                        last_full = t
                if prev is not None and prev[0] == "gil" and what != "gil":
                    gil_left[key] = t
                if (prev is not None and prev[0] == "cpu") != (what == "cpu"):
                    on_cpu += 1 if what == "cpu" else -1
                    if on_cpu > self.trace.cores and self.once("cores"):
                        self.say(
                            _LESSON,
                            t,
                            f"{on_cpu} threads want to run Python code at once but the machine "
                            f"has {self.trace.cores} core{'s' if self.trace.cores != 1 else ''}: "
                            "the operating system shares the cores between them, so each runs "
                            "slower",
                        )
                if r >= 0:
                    on_thread[r] = key
                pending = gil_wait.pop(key, None)
                if pending is not None:
                    since, wr, holder = pending
                    waited = t - since
                    if wr not in told_gil and waited >= min(1.0, self.switch_ms / 2):
                        told_gil.add(wr)
                        first = self.once("gil-wait")
                        if first or self.detailed_req(wr):
                            held = f"thread {holder}" if holder else "another thread"
                            hr = threads.get(holder, ("", -1))[1] if holder else -1
                            serving = f" (serving {user(hr)})" if hr >= 0 and hr != wr else ""
                            if self.gevent:
                                held = f"greenlet {holder}" if holder else "another greenlet"
                                text = (
                                    f"{user(wr)} waits {fmt_dur(waited)} for its turn: "
                                    f"{held}{serving} runs without yielding, and gevent "
                                    "switches only when a greenlet blocks"
                                )
                            else:
                                text = (
                                    f"{user(wr)} needs the GIL to run Python code, but {held}"
                                    f"{serving} holds it; it waits {fmt_dur(waited)}"
                                )
                            self.say(_LESSON if first else _DETAIL, since, text)
                        else:
                            self.skipped += 1
                if what == "gil" and r >= 0:
                    proc = key.split("/", 1)[0]
                    holder = gil.get(proc, "")
                    if holder == key or not holder:
                        # the hand-over is logged next: the holder is the thread that gets it
                        holder_unknown.setdefault(proc, set()).add(key)
                        holder = ""
                    gil_wait[key] = [t, r, holder]
                    if prev is not None and prev[0] == "cpu" and prev[1] == r:
                        forced[proc] = forced.get(proc, 0) + 1
                        if self.once(f"forced:{proc}"):
                            self.say(
                                _LESSON,
                                t,
                                f"the GIL of {proc} is handed over after the "
                                f"{fmt_dur(self.switch_ms)} switch interval: thread {key} "
                                f"({user(r)}) kept it that long while another thread waited, so "
                                "it must let go and queue for it again; from now on they take "
                                "turns, one at a time",
                            )
            elif kind == "backlog":
                depth = int(what)
            elif kind == "gil":
                proc = str(who)
                gil[proc] = str(what)
                waiting = holder_unknown.pop(proc, None)
                if waiting and what:
                    for key in waiting:
                        pending = gil_wait.get(key)
                        if pending is not None and key != what and not pending[2]:
                            pending[2] = str(what)
            elif kind == "req":
                r = int(who)
                if what == "syn":
                    attempt[r] = attempt.get(r, 0) + 1
                elif what == "drop":
                    self.dropped(t, r, attempt.get(r, 1), syn_times.get(r, []), depth)
                elif what == "overflow":
                    self.overflowed(t, r, str(ref), again=r in self.ack_dropped)
                    self.ack_dropped.add(r)
                elif what == "backlog":
                    in_backlog[r] = t
                    if self.detailed_req(r) or "backlog" not in self.first:
                        full = busy >= self.capacity
                        booting = self.gunicorn and workers_seen and not workers_up
                        queued[r] = (t, attempt.get(r, 1), len(in_backlog), full, booting)
                    else:
                        self.skipped += 1
                elif what == "accept":
                    acceptor = acceptors[r] = str(ref)
                    since = in_backlog.pop(r, t)
                    info = queued.pop(r, None)
                    if info is not None:
                        # did the acceptor wait for the GIL, or were all busy, meanwhile?
                        waited_gil = gil_left.get(acceptor, -1.0) >= since
                        if last_full >= since and not info[3]:
                            info = (info[0], info[1], info[2], True, info[4])
                        self.queued(info, r, t, acceptor, waited_gil)
                    self.accepted(t, r, acceptor, t - since)
                elif what == "pool":
                    self.pooled(t, r, acceptors.get(r), threads)
                elif what == "read":
                    self.read(t, r, str(ref))
                elif what == "stage":
                    rec_r = self.records.get(r)
                    if ref == "recv" and rec_r is not None and rec_r.send_ms >= _AT_ONCE_MS:
                        self.slow_client(t, r, rec_r.send_ms, on_thread.get(r) or rec_r.thread)
                    if r == 0 and str(ref) in _STAGE_WORDS:
                        rec0 = self.records.get(r)
                        where = on_thread.get(r) or (rec0.thread if rec0 is not None else None)
                        on = f", on {lane_name(self.scenario, where)}" if where else ""
                        words = _STAGE_WORDS[str(ref)]
                        if not self.gil:
                            words = words.replace(" (a blocking call: the GIL is let go)", "")
                        self.say(_FINE, t, f"{user(r)}{on}: {words}")
                elif what == "done":
                    in_backlog.pop(r, None)
                    acceptors.pop(r, None)
                    info = queued.pop(r, None)
                    if info is not None:
                        self.queued(info, r, None, None, False)
                    done += 1
                    self.finished(t, r, str(ref))
            elif kind == "worker":
                workers_seen = True
                self.worker(t, str(who), str(what), str(ref), workers_up)
        for r, info in queued.items():  # still queued when the trace ends
            self.queued(info, r, None, None, False)
        self.outro(forced)

    # -- lines ----------------------------------------------------------------------------
    def intro(self) -> None:
        sc = self.scenario
        cores = self.trace.cores
        name = sc.get("name") or "This run"
        n = self.n_requests
        what = f"{n} request{'s arrive' if n != 1 else ' arrives'}"
        limit = self.trace.backlog_limit
        machine = sc.get("machine") or {}
        python = "; free-threaded Python (no GIL)" if machine.get("gil", True) is False else ""
        self.say(
            _ALWAYS,
            0.0,
            f"{name}: {describe_server(sc)}, on {cores} core{'s' if cores != 1 else ''}"
            f"{python}; {what}; the kernel's accept queue holds {limit} "
            f"connection{'s' if limit != 1 else ''}",
        )

    def progress(self, t: float, done: int, queued: int, threads: dict[str, Any]) -> None:
        busy = _busy(threads)
        self.say(
            _DETAIL,
            t,
            f"progress: {done} of {self.n_requests} requests done, {queued} waiting in the "
            f"backlog, {busy} thread{'s' if busy != 1 else ''} serving a request",
        )

    def dropped(self, t: float, r: int, n: int, syns: list[float], depth: int) -> None:
        later = [s for s in syns if s > t]
        rec = self.records.get(r)
        if later:
            retry = f"the client retries at {fmt_t(later[0])}"
        elif rec is not None and rec.status == "timeout":
            retry = "the client gives up before its next retry"
        else:
            retry = "the client will not retry again"
        verb = "sends GET " + self.request_path(r) if n <= 1 else f"retries (SYN #{n})"
        text = (
            f"{user(r)} {verb}, but the kernel's accept queue is full "
            f"({depth} of {self.trace.backlog_limit}): the SYN is silently dropped and "
            f"{retry}"
        )
        self.tell("drop", t, r, text + " (a dropped SYN costs seconds, not an error)", text)

    def slow_client(self, t: float, r: int, send_ms: float, lane: str | None) -> None:
        who = lane_name(self.scenario, lane) if lane else "the server"
        if self.gevent:
            what = (f"its greenlet ({who}) waits for the bytes, but it yields, so the worker "
                    "serves other requests meanwhile")
        else:
            what = (f"{who} can do nothing else until the whole request has arrived; a "
                    "buffering proxy such as nginx in front would absorb the slow client")
        text = (f"{user(r)} is a slow client: it takes {fmt_dur(send_ms)} to send its request, "
                f"and {what}")
        self.tell("slow-client", t, r, text, f"{user(r)} is a slow client too ({fmt_dur(send_ms)})")

    def overflowed(self, t: float, r: int, detail: str, again: bool) -> None:
        when = detail.rsplit("next try at ", 1)[-1] if "next try at " in detail else ""
        full = f"({self.trace.backlog_limit} of {self.trace.backlog_limit})"
        if again:
            text = f"{user(r)} retransmits, but the accept queue is still full {full}"
        else:
            text = (
                f"{user(r)}'s handshake completed, but the accept queue was full {full} when "
                f"its final ACK arrived: the kernel dropped the ACK"
            )
        text += f"; it tries again at T={when}" if when else ""
        lesson = (
            text + ". The client believes it is connected and has sent its request; it gets "
            "in only when it retransmits (after about 200 ms) or the server re-sends its SYN-ACK"
        )
        self.tell("overflow", t, r, lesson, text)

    def queued(
        self,
        info: tuple[float, int, int, bool, bool],
        r: int,
        accepted: float | None,
        acceptor: str | None,
        acceptor_waited_gil: bool,
    ) -> None:
        """The line for a connection that reached the accept queue, told at the time it got
        there once we know when (and whether) it was accepted."""
        t, n, depth, full, booting = info
        wait = (accepted - t) if accepted is not None else None
        if r in self.ack_dropped:
            sent = "retransmits and finally gets its connection into the queue"
        elif n <= 1:
            sent = f"sends GET {self.request_path(r)}"
        else:
            sent = f"retransmits its SYN (#{n})"
        if wait is not None and wait < _AT_ONCE_MS:
            if self.detailed_req(r):
                rec = self.records.get(r)
                lane = rec.thread if rec is not None else None
                who = lane_name(self.scenario, acceptor) if acceptor else None
                by = f" and {who} accepts it at once" if who else " and is accepted at once"
                if lane and acceptor and lane != acceptor:
                    by += f", handing it to {'greenlet' if self.gevent else 'thread'} {lane}"
                self.say(_DETAIL, t, f"{user(r)} {sent}{by}")
            else:
                self.skipped += 1
            return
        if booting:
            why = "no worker is up yet (one is booting)"
        elif full:
            why = self.busy_reason
        elif acceptor_waited_gil and self.gevent:
            why = (
                "a greenlet is running Python code without yielding, so the worker's event loop "
                "cannot run its accept"
            )
        elif acceptor_waited_gil:
            why = (
                f"the thread that accepts connections ({acceptor}) must first get the GIL, "
                "which another thread holds"
            )
        elif wait is None:
            why = "the server never gets to it"
        elif self.forking:
            why = "the server is busy forking a child for the connection ahead of it"
        else:
            why = "the server is still taking the connections ahead of it"
        text = (
            f"{user(r)} {sent}; the connection is complete and waits in the kernel backlog "
            f"(depth {depth}) because {why}"
        )
        self.tell("backlog", t, r, text)

    def accepted(self, t: float, r: int, thread: str, waited: float) -> None:
        if not self.detailed_req(r):
            self.skipped += 1
            return
        if waited >= _AT_ONCE_MS:
            who = lane_name(self.scenario, thread)
            self.say(_DETAIL, t, f"{who} accepts {user(r)} after {fmt_dur(waited)} in the backlog")

    def pooled(
        self, t: float, r: int, acceptor: str | None, threads: dict[str, tuple[str, int]]
    ) -> None:
        proc = acceptor.split("/", 1)[0] if acceptor else ""
        idle_elsewhere = sorted(
            {
                k.split("/", 1)[0]
                for k, (s, q) in threads.items()
                if s == "idle"
                and q < 0
                and not k.startswith(proc + "/")
                and not k.endswith("/main")
            }
        )
        text = (
            f"worker {proc or '?'} has accepted {user(r)}, but all its threads are busy, so "
            "the request waits in the worker's own queue"
        )
        if idle_elsewhere:
            text += f" while {', '.join(idle_elsewhere[:3])} has idle threads"
        self.tell("pool", t, r, text)

    def read(self, t: float, r: int, detail: str) -> None:
        """A view read a value it stored earlier (``global.name = ...`` or ``g.name = ...``)."""
        where, _, value = detail.partition(" = ")
        scope, _, name = where.partition(".")
        own = value.startswith("its own")
        other = re.match(r"request (\d+)'s value", value)
        if other:
            value = f"{user(other.group(1))}'s value"
        if scope == "global":
            thing = f"the module global `{name}`"
            why = (
                "every thread of a process shares its module globals, and another request "
                "overwrote it in between"
                if not own
                else "no other request wrote it in between, this time"
            )
        else:
            thing = f"`g.{name}`"
            why = "flask.g belongs to one request, so no other request can touch it"
        text = f"{user(r)} reads {thing} and gets {value}: {why}"
        key = f"read:{scope}:{own}"
        self.tell(key, t, r, text, level=_LESSON if not own or scope != "global" else _DETAIL)

    def finished(self, t: float, r: int, status: str) -> None:
        rec = self.records.get(r)
        took = fmt_dur(rec.latency_ms) if rec is not None and rec.latency_ms is not None else "?"
        if status == "ok":
            code = rec.http_status if rec is not None and rec.http_status else 200
            text = f"{user(r)} gets its response (HTTP {code}), {took} after sending"
            if rec is not None and rec.latency_ms:
                parts = []
                if rec.queue_ms >= max(_AT_ONCE_MS, 0.1 * rec.latency_ms):
                    parts.append(f"{fmt_dur(rec.queue_ms)} waiting to be accepted")
                if rec.pool_wait_ms >= max(_AT_ONCE_MS, 0.1 * rec.latency_ms):
                    parts.append(f"{fmt_dur(rec.pool_wait_ms)} in a worker's queue")
                if rec.gil_wait_ms >= max(_AT_ONCE_MS, 0.1 * rec.latency_ms):
                    parts.append(f"{fmt_dur(rec.gil_wait_ms)} waiting for the GIL")
                if rec.syn_retries:
                    s = "s" if rec.syn_retries != 1 else ""
                    parts.append(f"{rec.syn_retries} SYN retransmit{s}")
                if parts:
                    text += " (" + ", ".join(parts) + ")"
            if self.detailed_req(r):
                self.say(_DETAIL, t, text)
            else:
                self.skipped += 1
            return
        if status == "error":
            code = rec.http_status if rec is not None and rec.http_status else 500
            text = f"{user(r)} gets HTTP {code} after {took}"
            if rec is not None and rec.note:
                text += f" ({rec.note})"
        elif status == "timeout":
            text = f"{user(r)} gives up after {took} without a response (client timeout)"
        elif status == "reset":
            text = f"{user(r)}'s connection is reset after {took}"
            if rec is not None and rec.note:
                text += f" ({rec.note})"
        else:
            text = f"{user(r)} ends with status {status} after {took}"
        self.tell(f"status:{status}", t, r, text)

    def worker(self, t: float, key: str, what: str, detail: str, up: set[str]) -> None:
        extra = f" ({detail})" if detail else ""
        if not self.gunicorn:
            # werkzeug's processes=N: a child per connection, gone when its request is done
            if what == "boot":
                level = _LESSON if self.once("fork") else _FINE
                self.say(level, t, f"the server forks child process {key} to serve a connection")
            elif what in ("exit", "killed"):
                self.say(_FINE, t, f"child process {key} exits{extra}")
            return
        if what == "ready":
            up.add(key)
            if t > 0:
                self.say(_LESSON, t, f"worker {key} is ready and starts accepting{extra}")
            return
        if what == "boot":
            if t > 0:
                self.say(_LESSON, t, f"worker {key} boots{extra}")
            return
        up.discard(key)
        if what == "killed":
            self.say(
                _ALWAYS,
                t,
                f"worker {key} is killed{extra or ': no heartbeat within the timeout'}; "
                "the arbiter will start a replacement",
            )
        elif what == "exit":
            self.say(_LESSON, t, f"worker {key} exits{extra}")
        else:
            self.say(_LESSON, t, f"worker {key}: {what}{extra}")

    def outro(self, forced: dict[str, int]) -> None:
        s = self.trace.summary or {}
        reqs = self.trace.requests
        ok = sum(1 for r in reqs if r.status == "ok")
        finished = [r.finished_ms for r in reqs if r.finished_ms is not None]
        t = max(finished) if finished else self.trace.end_ms
        failed = len(reqs) - ok
        text = f"all done: {ok} of {len(reqs)} requests answered"
        if failed:
            text += f", {failed} failed"
        lat = s.get("latency_ms") or {}
        if ok and lat:
            text += (
                f"; latency mean {fmt_dur(float(lat.get('mean', 0)))}, "
                f"slowest {fmt_dur(float(lat.get('max', 0)))}"
            )
        if s.get("max_backlog"):
            text += f"; the backlog peaked at {s['max_backlog']}"
        switches = sum(forced.values())
        if switches:
            text += f"; the GIL was taken away from a running thread {switches} times"
        self.final = (t, text)


def narrate(trace: Trace, max_lines: int | None = None) -> list[tuple[float, str]]:
    """The run in plain words: ``[(t_ms, line), ...]`` in time order.

    Every line starts with its time (``T=1.000 s — ...``) and says what happened and why.
    At most ``max_lines`` lines are returned (default :data:`DEFAULT_MAX_LINES`): the
    opening line, a killed worker and the closing summary always stay; the first occurrence
    of each lesson (a backlog wait, a dropped SYN, a GIL hand-over, a pool wait) next; then
    the detail of individual requests. When lines are left out, a line before the summary
    says how many.
    """
    cap = DEFAULT_MAX_LINES if max_lines is None else max(2, int(max_lines))
    n = _Narrator(trace, cap)
    n.run()
    ranked = sorted(n.lines)  # by level, then time, then order of discovery
    budget = cap - 1  # the closing summary always stays
    if len(ranked) > budget or n.skipped:
        budget -= 1  # room for the "left out" note
    kept = ranked[:budget]
    left_out = len(ranked) - len(kept) + n.skipped
    out = [(t, text) for _, t, _, text in sorted(kept, key=lambda x: (x[1], x[2]))]
    final_t, final_text = n.final
    if out and out[-1][0] > final_t:
        final_t = out[-1][0]
    if left_out:
        out.append((final_t, f"{fmt_t(final_t)} — …and {left_out:,} more events not told here"))
    out.append((final_t, f"{fmt_t(final_t)} — {final_text}"))
    return out
