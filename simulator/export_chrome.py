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
from typing import Any, Final

from .trace import Trace

_KERNEL_PID = 0

#: Spans or counters per piece of text :func:`iter_chrome_trace` yields.
CHUNK = 4096

#: ``_FRAC[k]`` is how ``repr`` writes the three decimals ``k / 1000``: ``repr(ns / 1e3)`` is
#: ``f"{ns // 1000}.{_FRAC[ns % 1000]}"`` for ``0 <= ns < _US_LIMIT`` (a decimal of at most 15
#: significant digits is the shortest text of the float nearest to it).
_FRAC: Final[tuple[str, ...]] = tuple(f"{k:03d}".rstrip("0") or "0" for k in range(1000))
_US_LIMIT: Final = 10**15

#: How many distinct durations a pass keeps the text of (a simulated run's stages repeat the
#: same few costs).
_DURATIONS_KEPT = 1 << 12

#: The request events after which the sweep of :mod:`.frames` knows a request's state.
_KNOWN_FROM = frozenset(("syn", "drop", "overflow", "backlog", "accept", "pool"))


def _us(ns: int) -> str:
    """A time in whole nanoseconds as microseconds in JSON: ``repr(ns / 1e3)``."""
    if 0 <= ns < _US_LIMIT:
        return f"{ns // 1000}.{_FRAC[ns % 1000]}"
    return repr(ns / 1e3)


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
    for piece in _thread_spans(trace, text, max(1, chunk)):
        yield ", " + piece
    for piece in _gil_and_counters(trace, text, max(1, chunk)):
        yield ", " + piece
    other = {"scenario": str(trace.scenario.get("name", "")), "source": trace.source,
             "seed": trace.seed}
    yield '], "displayTimeUnit": "ms", "otherData": ' + json.dumps(other) + "}\n"


def _thread_spans(trace: Trace, text: _Text, chunk: int) -> Iterator[str]:
    """The spans of :func:`.frames.thread_spans_with_stage`, idle and zero-length ones left
    out, as Trace Events in its order, each written as the sweep closes it.

    The sweep is that of :mod:`.frames` reduced to what a thread's span needs: the request
    spans, the hand-over of an accepted request and the events of other kinds are not read
    (a test checks both give the same spans). A thread's span ends when the thread changes
    state, request or stage. A request's ``stage`` event changes the stage of the thread it
    was last seen on, if it was seen there while the sweep knew its state (after a ``syn``,
    ``drop``, ``overflow``, ``backlog``, ``accept``, ``pool`` or ``write`` stage, until its
    ``done``)."""
    log = trace.events
    thread_code = log.code("thread")
    wanted = bytes(code in (thread_code, log.code("req")) for code in range(256))
    mask = log.codes.tobytes().translate(wanted)  # filtered in C: only these reach the loop
    rows = zip(*(compress(col, mask) for col in (log.t, log.codes, log.who, log.what, log.ref)),
               strict=True)
    known: set[int] = set()
    stage: dict[int, str] = {}  # request id -> its lifecycle stage
    on_thread: dict[int, str] = {}  # request id -> key of the thread it was last seen on
    # thread key -> [state, request id, since (whole ns), stage]
    thr: dict[str, list[Any]] = {}
    parts = text.span_parts
    forms: dict[tuple[Any, ...], tuple[str, str, str]] = {}
    paths = {r.id: text.s(r.path) for r in trace.requests}
    no_path = text.s("")
    durations: dict[int, str] = {}
    frac: tuple[str, ...] = _FRAC
    limit: int = _US_LIMIT
    out: list[str] = []
    add = out.append
    # typed for a compiled build: native arithmetic on the times
    t: float
    code: int
    a: int
    b: int

    def span(key: str, cur: list[Any], b: int) -> None:
        """The span of ``cur``, ending at ``b`` ns, if it is one to write (not idle, not
        empty); the loop below writes the same inline."""
        state, r, a = cur[0], cur[1], cur[2]
        if state == "idle" or b <= a:
            return
        form_key = (key, state, cur[3], r >= 0)
        form = forms.get(form_key)
        if form is None:
            form = forms[form_key] = parts(*form_key)
        if r >= 0:
            add(f'{{"name": "user {r + 1}{form[0]}{_us(a)}, "dur": {_us(b - a)}{form[1]}{r}'
                f', "path": {paths.get(r, no_path)}{form[2]}')
        else:
            add(f'{form[0]}{_us(a)}, "dur": {_us(b - a)}{form[1]}')

    # A span is written when its end, rounded to the ns, is past its start (rounded the
    # same way): the sweep's "t > since" then holds too.
    for t, code, who, what, ref in rows:
        if code == thread_code:  # who: the thread's key; ref: the request id
            who = str(who)
            ref = int(ref)
            cur = thr.get(who)
            st = stage.get(ref, "") if ref >= 0 else ""
            if cur is None:
                thr[who] = [what, ref, int(t * 1e6 + 0.5), st]
            elif cur[0] != what or cur[1] != ref or cur[3] != st:
                b = int(t * 1e6 + 0.5)
                a = int(cur[2])
                state = cur[0]
                if b > a and state != "idle":
                    r = cur[1]
                    form_key = (who, state, cur[3], r >= 0)
                    form = forms.get(form_key)
                    if form is None:
                        form = forms[form_key] = parts(*form_key)
                    ts = f"{a // 1000}.{frac[a % 1000]}" if a >= 0 and b < limit else _us(a)
                    dur = durations.get(b - a)
                    if dur is None:
                        dur = _us(b - a)
                        if len(durations) < _DURATIONS_KEPT:
                            durations[b - a] = dur
                    if r >= 0:
                        add(f'{{"name": "user {r + 1}{form[0]}{ts}, "dur": {dur}{form[1]}'
                            f'{r}, "path": {paths.get(r, no_path)}{form[2]}')
                    else:
                        add(f'{form[0]}{ts}, "dur": {dur}{form[1]}')
                    if len(out) >= chunk:
                        yield ", ".join(out)
                        out.clear()
                cur[0], cur[1], cur[2], cur[3] = what, ref, b, st
            if ref >= 0 and ref in known:
                on_thread[ref] = who
            continue
        who = int(who)  # a request event: who is the request id
        if what == "stage":  # ref: the stage
            new = stage[who] = str(ref)
            key = on_thread.get(who)
            if key is not None:
                cur = thr[key]
                if cur[1] == who and cur[3] != new:  # the span up to the new stage
                    b = int(t * 1e6 + 0.5)
                    a = int(cur[2])
                    state = cur[0]
                    if b > a and state != "idle":
                        form_key = (key, state, cur[3], True)
                        form = forms.get(form_key)
                        if form is None:
                            form = forms[form_key] = parts(*form_key)
                        ts = f"{a // 1000}.{frac[a % 1000]}" if a >= 0 and b < limit else _us(a)
                        dur = durations.get(b - a)
                        if dur is None:
                            dur = _us(b - a)
                            if len(durations) < _DURATIONS_KEPT:
                                durations[b - a] = dur
                        add(f'{{"name": "user {who + 1}{form[0]}{ts}, "dur": {dur}{form[1]}'
                            f'{who}, "path": {paths.get(who, no_path)}{form[2]}')
                        if len(out) >= chunk:
                            yield ", ".join(out)
                            out.clear()
                    cur[2] = b
                    cur[3] = new
            if ref == "write":
                known.add(who)
        elif what in _KNOWN_FROM:
            known.add(who)
        elif what == "done":
            known.discard(who)
            stage.pop(who, None)
            on_thread.pop(who, None)
    end = int(trace.end_ms * 1e6 + 0.5)
    for key, cur in thr.items():
        span(key, cur, end)
    if out:
        yield ", ".join(out)


def _gil_and_counters(trace: Trace, text: _Text, chunk: int) -> Iterator[str]:
    """The GIL holder spans and the kernel's counters, in the order of the events."""
    out: list[str] = []
    add = out.append
    held: dict[str, tuple[int, tuple[str, str]]] = {}  # process -> since (ns), holder's parts
    forms: dict[tuple[str, str], tuple[str, str]] = {}
    durations: dict[int, str] = {}
    frac = _FRAC
    limit = _US_LIMIT
    last_depth: int | None = None
    in_flight = 0
    started: set[Any] = set()
    log = trace.events
    gil_code, backlog_code = log.code("gil"), log.code("backlog")
    kinds = {gil_code, backlog_code, log.code("req")}
    mask = log.codes.tobytes().translate(bytes(code in kinds for code in range(256)))
    # only the kinds wanted reach the loop (filtered in C)
    rows = zip(compress(log.t, mask), compress(log.codes, mask), compress(log.who, mask),
               compress(log.what, mask), strict=True)
    for t, code, who, what in rows:
        if code == gil_code:
            pkey = str(who)
            b = int(t * 1e6 + 0.5)  # whole ns: a span's ends are rounded
            prev = held.pop(pkey, None)
            if prev is not None:
                a, parts = prev
                if b > a:  # then t is past the time it was taken, too
                    ts = f"{a // 1000}.{frac[a % 1000]}" if a >= 0 and b < limit else _us(a)
                    dur = durations.get(b - a)
                    if dur is None:
                        dur = _us(b - a)
                        if len(durations) < _DURATIONS_KEPT:
                            durations[b - a] = dur
                    add(f'{parts[0]}{ts}, "dur": {dur}{parts[1]}')
            if what:
                holder = str(what)
                form = forms.get((pkey, holder))
                if form is None:
                    form = forms[(pkey, holder)] = text.gil_parts(pkey, holder)
                held[pkey] = (b, form)
        elif code == backlog_code:
            depth = int(what)
            if depth == last_depth:
                continue
            last_depth = depth
            b = int(t * 1e6 + 0.5)
            ts = f"{b // 1000}.{frac[b % 1000]}" if 0 <= b < limit else _us(b)
            add(f'{{"name": "backlog", "ph": "C", "ts": {ts}, "pid": 0, '
                f'"args": {{"depth": {depth}}}}}')
        else:  # req
            if what == "syn" and who not in started:
                started.add(who)
                in_flight += 1
            elif what == "done":
                in_flight -= 1
            else:
                continue
            b = int(t * 1e6 + 0.5)
            ts = f"{b // 1000}.{frac[b % 1000]}" if 0 <= b < limit else _us(b)
            add(f'{{"name": "in flight", "ph": "C", "ts": {ts}, "pid": 0, '
                f'"args": {{"requests": {in_flight}}}}}')
        if len(out) >= chunk:
            yield ", ".join(out)
            out.clear()
    end = int(trace.end_ms * 1e6 + 0.5)
    for a, form in held.values():
        if end > a:
            add(f'{form[0]}{_us(a)}, "dur": {_us(end - a)}{form[1]}')
    if out:
        yield ", ".join(out)


class _Text:
    """JSON strings, each encoded once, and the fixed parts of the events."""

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

    def _inner(self, value: Any) -> str:
        """The JSON of ``str(value)`` without its quotes (to go inside a longer string)."""
        return self.s(str(value))[1:-1]

    def span_parts(self, key: str, state: Any, stage: str, on_req: bool) -> tuple[str, str, str]:
        """The fixed parts of a thread's span, laid out as ``json.dumps`` writes the event. A
        request's span is ``'{"name": "user ' + str(id + 1) + p[0] + ts + ', "dur": ' + dur
        + p[1] + str(id) + ', "path": ' + path + p[2]``, another's ``p[0] + ts + ', "dur": '
        + dur + p[1]``."""
        pid, tid = self.lanes.tid_of(key)
        st = self.s(state)
        if on_req:
            named = (" " + self._inner(stage) if stage else "") + f" ({self._inner(state)})"
            return (f'{named}", "cat": {st}, "ph": "X", "ts": ',
                    f', "pid": {pid}, "tid": {tid}, "args": {{"request": ',
                    f', "stage": {self.s(stage)}, "state": {st}}}}}')
        name = "accept loop" if state in ("gil", "cpu") else state
        return (f'{{"name": {self.s(name)}, "cat": {st}, "ph": "X", "ts": ',
                f', "pid": {pid}, "tid": {tid}, "args": {{"state": {st}}}}}', "")

    def gil_parts(self, proc: str, holder: str) -> tuple[str, str]:
        """The fixed parts of a GIL holder's span: ``p[0] + ts + ', "dur": ' + dur + p[1]``."""
        return (f'{{"name": "held by {self._inner(holder)}", "cat": "gil", "ph": "X", "ts": ',
                f', "pid": {self.lanes.pid_of(proc)}, "tid": 0, '
                f'"args": {{"holder": {self.s(holder)}}}}}')


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
