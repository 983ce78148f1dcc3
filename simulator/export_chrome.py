"""The Chrome Trace Event export of a Trace, for Perfetto (ui.perfetto.dev) or
``chrome://tracing``: a track per thread, the GIL holder per process and the backlog as a
counter. It reads only the Trace.

Times are written in whole nanoseconds (as microseconds with three decimals). A slice's
start and end are each rounded and its duration is their difference, so a slice that ends
where the next one on its track starts ends exactly there: Perfetto, which reads ``ts`` and
``dur`` separately, sees every track nest (rounding start and duration on their own made
about one slice in a hundred overlap its neighbour by a nanosecond).

:func:`iter_chrome_trace` writes the JSON a piece at a time, the spans made as the sweep
over the events reaches them, so a run of 200,000 requests never holds them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import compress
from json.encoder import encode_basestring_ascii
from typing import Any

from .frames import iter_thread_spans_with_stage
from .trace import Trace

_KERNEL_PID = 0

#: Spans or counters per piece of text :func:`iter_chrome_trace` yields.
CHUNK = 4096

# One Trace Event each, laid out exactly as json.dumps writes the same dict; the parts that
# depend only on the thread, state and stage are filled in once (see _Text.span).
_X_REQ = ('{"name": "user %%d%s (%s)", "cat": %s, "ph": "X", "ts": %%r, "dur": %%r, '
          '"pid": %d, "tid": %d, "args": {"request": %%d, "path": %%s, "stage": %s, '
          '"state": %s}}')
_X_OTHER = ('{"name": %s, "cat": %s, "ph": "X", "ts": %%r, "dur": %%r, "pid": %d, "tid": %d, '
            '"args": {"state": %s}}')
_X_GIL = ('{"name": "held by %s", "cat": "gil", "ph": "X", "ts": %%r, "dur": %%r, "pid": %d, '
          '"tid": 0, "args": {"holder": %s}}')
_C_BACKLOG = '{"name": "backlog", "ph": "C", "ts": %r, "pid": 0, "args": {"depth": %d}}'
_C_FLIGHT = '{"name": "in flight", "ph": "C", "ts": %r, "pid": 0, "args": {"requests": %d}}'


def to_chrome_trace(trace: Trace) -> dict[str, Any]:
    """The run as Chrome Trace Event JSON (``{"traceEvents": [...]}``), for Perfetto.

    One process track per server process and one thread track per thread lane, with a
    complete (``X``) event per span of a thread's state, named after the request and its
    lifecycle stage (idle spans are left out). Each process also has a ``GIL`` track
    showing which thread holds it. A ``kernel`` process carries the accept-queue depth and
    the requests in flight as counters (``C``). Times are microseconds, to the nanosecond.
    """
    data: dict[str, Any] = json.loads("".join(iter_chrome_trace(trace)))
    return data


def iter_chrome_trace(trace: Trace, chunk: int = CHUNK) -> Iterator[str]:
    """``json.dumps(to_chrome_trace(trace)) + "\\n"``, in pieces of about ``chunk`` events."""
    lanes = _Lanes(trace)
    yield '{"traceEvents": [' + ", ".join(lanes.meta())
    text = _Text(lanes)
    span = text.span
    forms: dict[tuple[str, str, str, bool], str] = {}
    paths = {r.id: text.s(r.path) for r in trace.requests}
    no_path = text.s("")
    for spans in iter_thread_spans_with_stage(trace, chunk):
        out: list[str] = []
        for key, start, end, state, req, stage in spans:
            if state == "idle":
                continue
            a, b = int(start * 1e6 + 0.5), int(end * 1e6 + 0.5)  # whole ns: ends rounded
            if b <= a:
                continue
            on_req = req >= 0
            form = forms.get((key, state, stage, on_req))
            if form is None:
                form = forms[(key, state, stage, on_req)] = span(key, state, stage, on_req)
            if on_req:
                out.append(form % (req + 1, a / 1e3, (b - a) / 1e3, req,
                                   paths.get(req, no_path)))
            else:
                out.append(form % (a / 1e3, (b - a) / 1e3))
        if out:
            yield ", " + ", ".join(out)
    for piece in _gil_and_counters(trace, text, chunk):
        yield ", " + piece
    other = {"scenario": str(trace.scenario.get("name", "")), "source": trace.source,
             "seed": trace.seed}
    yield '], "displayTimeUnit": "ms", "otherData": ' + json.dumps(other) + "}\n"


def _gil_and_counters(trace: Trace, text: _Text, chunk: int) -> Iterator[str]:
    """The GIL holder spans and the kernel's counters, in the order of the events."""
    out: list[str] = []
    held: dict[str, tuple[float, str]] = {}  # process key -> since, holder
    forms: dict[tuple[str, str], str] = {}
    last_depth: int | None = None
    in_flight = 0
    started: set[Any] = set()
    log = trace.events
    kinds = {log.code("gil"), log.code("backlog"), log.code("req")}
    wanted = bytes(code in kinds for code in range(256))
    # only the kinds wanted reach the loop (filtered in C)
    for t, kind, who, what, _ in compress(log.rows(), map(wanted.__getitem__, log.codes)):
        if kind == "gil":
            pkey = str(who)
            prev = held.pop(pkey, None)
            if prev is not None and t > prev[0]:
                a, b = int(prev[0] * 1e6 + 0.5), int(t * 1e6 + 0.5)
                if b > a:
                    form = forms.get((pkey, prev[1]))
                    if form is None:
                        form = forms[(pkey, prev[1])] = text.gil_span(pkey, prev[1])
                    out.append(form % (a / 1e3, (b - a) / 1e3))
            if what:
                held[pkey] = (t, str(what))
        elif kind == "backlog":
            depth = int(what)
            if depth == last_depth:
                continue
            last_depth = depth
            out.append(_C_BACKLOG % (int(t * 1e6 + 0.5) / 1e3, depth))
        else:  # req
            if what == "syn" and who not in started:
                started.add(who)
                in_flight += 1
            elif what == "done":
                in_flight -= 1
            else:
                continue
            out.append(_C_FLIGHT % (int(t * 1e6 + 0.5) / 1e3, in_flight))
        if len(out) >= chunk:
            yield ", ".join(out)
            out.clear()
    end = trace.end_ms
    for pkey, (since, holder) in held.items():
        a, b = int(since * 1e6 + 0.5), int(end * 1e6 + 0.5)
        if end > since and b > a:
            out.append(text.gil_span(pkey, holder) % (a / 1e3, (b - a) / 1e3))
    if out:
        yield ", ".join(out)


class _Text:
    """JSON strings, each encoded once, and the templates of the events."""

    def __init__(self, lanes: _Lanes) -> None:
        self.lanes = lanes
        self._done: dict[Any, str] = {}

    def s(self, value: Any) -> str:
        """``value`` as JSON (a string quoted and escaped as ``json.dumps`` does)."""
        try:
            return self._done[value]
        except KeyError:
            text = encode_basestring_ascii(value) if type(value) is str else json.dumps(value)
            self._done[value] = text
            return text
        except TypeError:  # unhashable
            return json.dumps(value)

    def _t(self, value: Any) -> str:
        """:meth:`s`, made safe to put in a %-format."""
        return self.s(value).replace("%", "%%")

    def _inner(self, value: Any) -> str:
        """The JSON of ``str(value)`` without its quotes (to go inside a longer string),
        made safe to put in a %-format."""
        return self._t(str(value))[1:-1]

    def span(self, key: str, state: str, stage: str, on_req: bool) -> str:
        """The %-format of a thread's span; a request's takes (user, ts, dur, request id,
        path as JSON), another's (ts, dur)."""
        pid, tid = self.lanes.tid_of(key)
        if on_req:
            return _X_REQ % (" " + self._inner(stage) if stage else "", self._inner(state),
                             self._t(state), pid, tid, self._t(stage), self._t(state))
        name = "accept loop" if state in ("gil", "cpu") else state
        return _X_OTHER % (self._t(name), self._t(state), pid, tid, self._t(state))

    def gil_span(self, proc: str, holder: str) -> str:
        """The %-format of a GIL holder's span: it takes (ts, dur)."""
        return _X_GIL % (self._inner(holder), self.lanes.pid_of(proc), self._t(holder))


class _Lanes:
    """Process and thread track ids, all known before the first span is written."""

    def __init__(self, trace: Trace) -> None:
        self.pids: dict[str, int] = {}
        self.tids: dict[str, tuple[int, int]] = {}
        self.names: dict[int, str] = {_KERNEL_PID: "kernel (listen socket)"}
        self._count: dict[int, int] = {}
        for proc in trace.processes:
            pid = self.pid_of(str(proc["key"]))
            self.names[pid] = str(proc.get("label") or proc["key"])
            for key in proc.get("threads", []):
                self.tid_of(str(key))
        log = trace.events
        thread, gil = log.code("thread"), log.code("gil")
        for code, who, what in zip(log.codes, log.who, log.what, strict=True):
            if code == thread:
                if what != "idle" and who not in self.tids:
                    self.tid_of(str(who))
            elif code == gil and what and who not in self.pids:
                self.pid_of(str(who))

    def pid_of(self, proc: str) -> int:
        pid = self.pids.get(proc)
        if pid is None:
            pid = self.pids[proc] = len(self.pids) + 1
            self.names.setdefault(pid, proc)
        return pid

    def tid_of(self, key: str) -> tuple[int, int]:
        ids = self.tids.get(key)
        if ids is None:
            pid = self.pid_of(key.split("/", 1)[0])
            self._count[pid] = tid = self._count.get(pid, 0) + 1
            ids = self.tids[key] = (pid, tid)
        return ids

    def meta(self) -> list[str]:
        """The metadata events: process and thread names and their order."""
        events: list[dict[str, Any]] = []
        for pid, name in sorted(self.names.items()):
            events.append({"name": "process_name", "ph": "M", "pid": pid,
                           "args": {"name": name}})
            events.append({"name": "process_sort_index", "ph": "M", "pid": pid,
                           "args": {"sort_index": pid}})
        for pid in sorted(set(self.pids.values())):
            events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": 0,
                           "args": {"name": "GIL"}})
        for key, (pid, tid) in self.tids.items():
            events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"name": key}})
            events.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"sort_index": tid}})
        return [json.dumps(e) for e in events]
