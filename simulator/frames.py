"""Frames and spans: the state of a run over time, derived from a Trace's event log.

:func:`sample` turns the event log into per-tick snapshots (what the browser plays back);
:func:`spans` turns it into state intervals per request and per thread (what a timeline
draws and what the exports write). Both read only ``trace.events`` (plus the lane and core
counts), so a simulated and a measured Trace give frames the same way. Each is one pass
over the events: O(events + frames).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator
from itertools import compress
from operator import itemgetter
from typing import Any

from .eventlog import EventLog
from .trace import Trace

#: Request phases during which the client is still getting its connection into the queue.
_CONNECTING = ("syn", "drop", "overflow")

#: The states a request can be in, in the order a legend shows them. While a request is on a
#: thread, its state is that thread's state (``gil``, ``cpu``, ``io``, or ``unknown`` in a
#: measured run where the lab could not tell), except during the ``write`` stage.
REQUEST_STATES = ("connecting", "backlog", "pool", "gil", "cpu", "io", "write", "unknown")

# Thread states that describe what the request on the thread is doing.
_ON_THREAD = frozenset(("gil", "cpu", "io", "unknown"))

RequestSpan = tuple[int, float, float, str]
ThreadSpan = tuple[str, float, float, str, int]


def sample(
    trace: Trace, tick_ms: float, start_ms: float = 0.0, end_ms: float | None = None
) -> list[dict[str, Any]]:
    """Per-tick snapshots of a run.

    Frame ``k`` describes the state at the end of tick ``k``, i.e. at
    ``start_ms + (k + 1) * tick_ms``, after every event up to and including that instant.
    The frames cover ``start_ms`` to ``end_ms`` (default: the trace's last event), so the
    last frame shows the final state. Each frame is::

        {"t": ms, "backlog": depth, "threads": {thread_key: [state, req_id]},
         "gil": {process_key: holder_thread_key or ""}, "busy_cores": n,
         "in_flight": n, "completed": n, "failed": n, "connecting": n}

    ``threads`` holds every thread that has appeared so far (``req_id`` is -1 when the
    thread serves no request); ``busy_cores`` is the number of threads running on a core,
    capped at the core count; ``in_flight`` counts requests sent and not finished;
    ``completed`` and ``failed`` count finished requests by outcome (``ok`` or not);
    ``connecting`` counts requests whose SYN has not yet led to a queued connection.
    """
    if not tick_ms > 0:
        raise ValueError(f"tick_ms must be above 0 (got {tick_ms!r})")
    end = trace.end_ms if end_ms is None else end_ms
    count = max(1, math.ceil((end - start_ms) / tick_ms - 1e-9))
    cores = max(1, trace.cores)
    if isinstance(trace.events, EventLog):
        by_column = _sample_columns(trace, trace.events, tick_ms, start_ms, count, cores)
        if by_column is not None:
            return by_column
    # plain (t, kind, who, what, ref) rows, one ahead: no Event is built per event
    rows = trace.events.rows()
    nxt = next(rows, None)

    backlog = 0
    # keyed by the events' ``who`` (str | int), hence Any
    threads: dict[Any, list[Any]] = {}
    gil: dict[Any, Any] = {p["key"]: "" for p in trace.processes}
    on_cpu = 0
    phase: dict[Any, Any] = {}  # requests in flight -> last req phase
    connecting = 0
    completed = 0
    failed = 0

    frames: list[dict[str, Any]] = []
    for k in range(count):
        t_end = start_ms + (k + 1) * tick_ms
        limit = t_end + 1e-9
        # inlined for speed: this loop runs once per event
        while nxt is not None and nxt[0] <= limit:
            _, kind, who, what, ref = nxt
            nxt = next(rows, None)
            if kind == "thread":
                old = threads.get(who)
                if old is not None and old[0] == "cpu":
                    on_cpu -= 1
                if what == "cpu":
                    on_cpu += 1
                threads[who] = [what, ref]
            elif kind == "req":
                before = phase.get(who)
                if what == "done":
                    if before is not None:
                        del phase[who]
                        if before in _CONNECTING:
                            connecting -= 1
                    if ref == "ok":
                        completed += 1
                    else:
                        failed += 1
                    continue
                if what in _CONNECTING:
                    if before not in _CONNECTING:
                        connecting += 1
                elif before in _CONNECTING:
                    connecting -= 1
                phase[who] = what
            elif kind == "backlog":
                backlog = int(what)
            elif kind == "gil":
                gil[who] = what
        frames.append(
            {
                "t": round(t_end, 4),
                "backlog": backlog,
                "threads": {key: [s[0], s[1]] for key, s in threads.items()},
                "gil": dict(gil),
                "busy_cores": min(cores, on_cpu),
                "in_flight": len(phase),
                "completed": completed,
                "failed": failed,
                "connecting": connecting,
            }
        )
    return frames


def _sample_columns(
    trace: Trace, log: EventLog, tick_ms: float, start_ms: float, count: int, cores: int
) -> list[dict[str, Any]] | None:
    """:func:`sample` read from the log's columns, frame by frame: a frame's thread, GIL
    and backlog events are applied in C (the last state of each thread and process wins;
    busy cores are counted from the threads' states at the frame's end), and only its
    ``req`` events one by one. The same frames; None when the events of a frame are not
    the ones the one-by-one pass takes (a log out of time order), left to that pass."""
    t, who, what, ref = log.t, log.who, log.what, log.ref
    n = len(t)
    codes = bytes(log.codes)
    masks = []
    for kind in ("thread", "gil", "backlog", "req"):
        table = bytearray(256)
        table[log.kinds.index(kind)] = 1
        masks.append(codes.translate(table))
    m_thread, m_gil, m_backlog, m_req = masks
    del codes, masks
    state_of = itemgetter(0)

    backlog = 0
    threads: dict[Any, tuple[Any, Any]] = {}
    gil: dict[Any, Any] = {p["key"]: "" for p in trace.processes}
    phase: dict[Any, Any] = {}  # requests in flight -> last req phase
    connecting = 0
    completed = 0
    failed = 0
    frames: list[dict[str, Any]] = []
    a = 0
    for k in range(count):
        t_end = start_ms + (k + 1) * tick_ms
        limit = t_end + 1e-9
        b = bisect_right(t, limit, a)
        # the one-by-one pass takes the events from ``a`` up to the first one after
        # ``limit``: these, if the log is in time order here
        if (b < n and not t[b] > limit) or (b > a and not max(t[a:b]) <= limit):
            return None
        if b > a:
            whos, whats = who[a:b], what[a:b]
            mask = m_thread[a:b]
            if 1 in mask:
                states = zip(compress(whats, mask), compress(ref[a:b], mask), strict=True)
                threads.update(zip(compress(whos, mask), states, strict=True))
            mask = m_gil[a:b]
            if 1 in mask:
                gil.update(zip(compress(whos, mask), compress(whats, mask), strict=True))
            last = m_backlog.rfind(1, a, b)
            if last >= 0:
                backlog = int(what[last])
            mask = m_req[a:b]
            if 1 in mask:
                for r, p, outcome in zip(compress(whos, mask), compress(whats, mask),
                                         compress(ref[a:b], mask), strict=True):
                    before = phase.get(r)
                    if p == "done":
                        if before is not None:
                            del phase[r]
                            if before in _CONNECTING:
                                connecting -= 1
                        if outcome == "ok":
                            completed += 1
                        else:
                            failed += 1
                        continue
                    if p in _CONNECTING:
                        if before not in _CONNECTING:
                            connecting += 1
                    elif before in _CONNECTING:
                        connecting -= 1
                    phase[r] = p
            a = b
        on_cpu = list(map(state_of, threads.values())).count("cpu")
        frames.append(
            {
                "t": round(t_end, 4),
                "backlog": backlog,
                "threads": {key: [s[0], s[1]] for key, s in threads.items()},
                "gil": dict(gil),
                "busy_cores": min(cores, on_cpu),
                "in_flight": len(phase),
                "completed": completed,
                "failed": failed,
                "connecting": connecting,
            }
        )
    return frames


def spans(trace: Trace, threads: bool = True) -> dict[str, list[Any]]:
    """State intervals of every request and every thread.

    Returns ``{"requests": [(req_id, start_ms, end_ms, state)],
    "threads": [(thread_key, start_ms, end_ms, state, req_id)]}``, each list ordered by
    the time the span ended. A request's state is one of :data:`REQUEST_STATES`:
    ``connecting`` from its first SYN until the connection is queued (including the wait
    for a SYN retransmit after a drop), ``backlog`` in the kernel accept queue, ``pool``
    accepted but waiting for a free worker thread, then the state of the thread serving it
    (``gil``, ``cpu``, ``io``), or ``write`` while the server writes the response. A
    request's spans end when it is done. Zero-length spans are left out; spans still open
    at the end of the trace are closed at its last event. ``threads=False`` leaves the
    thread spans out (an empty list): they are most of the work.
    """
    if not threads:
        return {"requests": _request_spans(trace), "threads": []}
    req_spans, thread_spans = _sweep(trace, with_stage=False, with_threads=threads)
    return {"requests": req_spans, "threads": thread_spans}


def thread_spans_with_stage(trace: Trace) -> list[tuple[str, float, float, str, int, str]]:
    """Like ``spans(trace)["threads"]`` with a sixth field, the lifecycle stage of the
    request on the thread ("" when none), and spans split where the stage changes."""
    return _sweep(trace, with_stage=True)[1]


def iter_thread_spans_with_stage(
    trace: Trace, chunk: int = 4096
) -> Iterator[list[tuple[str, float, float, str, int, str]]]:
    """:func:`thread_spans_with_stage` in lists of about ``chunk`` spans, each made as the
    sweep reaches it: a big run's spans are never all in memory at once."""
    req_out: list[Any] = []
    thr_out: list[Any] = []
    for _ in _sweeping(trace, True, True, req_out, thr_out, max(1, chunk)):
        batch = thr_out.copy()
        del thr_out[:], req_out[:]
        yield batch
    if thr_out:
        yield thr_out


def _sweep(
    trace: Trace, with_stage: bool, with_threads: bool = True
) -> tuple[list[Any], list[Any]]:
    req_out: list[Any] = []
    thr_out: list[Any] = []
    for _ in _sweeping(trace, with_stage, with_threads, req_out, thr_out, 0):
        pass
    return req_out, thr_out


def _sweeping(
    trace: Trace, with_stage: bool, with_threads: bool, req_out: list[Any],
    thr_out: list[Any], chunk: int,
) -> Iterator[None]:
    """The sweep behind :func:`spans`: appends request and thread spans to ``req_out`` and
    ``thr_out``; with a ``chunk``, pauses (yields) whenever ``thr_out`` holds that many."""
    # request id -> [state, since]
    req_state: dict[int, list[Any]] = {}
    stage: dict[int, str] = {}
    # thread key -> [state, req_id, since, stage]
    thr: dict[str, list[Any]] = {}
    on_thread: dict[int, str] = {}  # request id -> key of the thread it was last seen on
    # A request just accepted, not yet on a thread of its own nor in a pool, follows the state
    # of the thread that accepted it (e.g. werkzeug's main thread starting a new thread).
    handing: dict[str, int] = {}  # accepting thread key -> request id

    def set_req(r: int, state: str, t: float) -> None:
        cur = req_state.get(r)
        if cur is None:
            req_state[r] = [state, t]
            return
        if cur[0] == state:
            return
        if t > cur[1]:
            req_out.append((r, cur[1], t, cur[0]))
        cur[0] = state
        cur[1] = t

    def from_thread(r: int, key: str | None) -> str | None:
        if stage.get(r) == "write":
            return "write"
        if key is None:
            return None
        th = thr.get(key)
        if th is not None and th[0] in _ON_THREAD:
            return str(th[0])
        return None

    for t, kind, who, what, ref in trace.events.rows():
        if chunk and len(thr_out) >= chunk:
            yield None
        if kind == "thread":
            key = str(who)
            r = int(ref)
            cur = thr.get(key)
            st = stage.get(r, "") if (with_stage and r >= 0) else ""
            if cur is None:
                thr[key] = [what, r, t, st]
            elif cur[0] != what or cur[1] != r or cur[3] != st:
                if with_threads and t > cur[2]:
                    thr_out.append(_thread_span(key, cur, t, with_stage))
                cur[0], cur[1], cur[2], cur[3] = what, r, t, st
            if r >= 0 and r in req_state:
                on_thread[r] = key
                # writing the response, unless it waits for the GIL to finish it
                state = "write" if stage.get(r) == "write" and what != "gil" else what
                if state in _ON_THREAD or state == "write":
                    set_req(r, str(state), t)
                if handing:
                    _forget(handing, r)
            elif r < 0 and key in handing:
                set_req(handing[key], str(what) if what in _ON_THREAD else "pool", t)
        elif kind == "req":
            r = int(who)
            if what in _CONNECTING:
                set_req(r, "connecting", t)
            elif what == "backlog":
                set_req(r, "backlog", t)
            elif what == "accept":
                state = from_thread(r, str(ref)) or "pool"
                set_req(r, state, t)
                if r not in on_thread:
                    handing[str(ref)] = r
            elif what == "pool":
                set_req(r, "pool", t)
                if handing:
                    _forget(handing, r)
            elif what == "stage":
                stage[r] = str(ref)
                if with_stage and r in on_thread:
                    _restage(thr, thr_out, on_thread[r], r, str(ref), t)
                if ref == "write":
                    set_req(r, "write", t)
            elif what == "done":
                cur_r = req_state.pop(r, None)
                if cur_r is not None and t > cur_r[1]:
                    req_out.append((r, cur_r[1], t, cur_r[0]))
                stage.pop(r, None)
                on_thread.pop(r, None)
                if handing:
                    _forget(handing, r)
    end = trace.end_ms
    for r, cur_r in req_state.items():
        if end > cur_r[1]:
            req_out.append((r, cur_r[1], end, cur_r[0]))
    for key, cur in thr.items():
        if with_threads and end > cur[2]:
            thr_out.append(_thread_span(key, cur, end, with_stage))


def _request_spans(trace: Trace) -> list[RequestSpan]:
    """The request spans of :func:`_sweeping` without thread spans or stages: the same
    steps, with its ``set_req`` written out and each thread's state alone kept (what a
    request on it is doing), for the page's spans of a large run."""
    out: list[Any] = []
    add = out.append
    req_state: dict[int, list[Any]] = {}  # request id -> [state, since]
    stage: dict[int, str] = {}
    thr: dict[str, Any] = {}  # thread key -> its state
    on_thread: dict[int, str] = {}
    handing: dict[str, int] = {}
    on = _ON_THREAD
    for t, kind, who, what, ref in trace.events.rows():
        if kind == "req":
            r = who if type(who) is int else int(who)
            if what == "stage":
                stage[r] = ref if type(ref) is str else str(ref)
                if ref != "write":
                    continue
                state = "write"
            elif what in _CONNECTING:
                state = "connecting"
            elif what == "backlog":
                state = "backlog"
            elif what == "accept":
                key = str(ref)
                if stage.get(r) == "write":
                    state = "write"
                else:
                    th = thr.get(key)
                    state = str(th) if th is not None and th in on else "pool"
                if r not in on_thread:
                    handing[key] = r
            elif what == "pool":
                state = "pool"
                if handing:
                    _forget(handing, r)
            elif what == "done":
                cur = req_state.pop(r, None)
                if cur is not None and t > cur[1]:
                    add((r, cur[1], t, cur[0]))
                stage.pop(r, None)
                on_thread.pop(r, None)
                if handing:
                    _forget(handing, r)
                continue
            else:
                continue
        elif kind == "thread":
            key = who if type(who) is str else str(who)
            r = ref if type(ref) is int else int(ref)
            thr[key] = what
            if r >= 0 and r in req_state:
                on_thread[r] = key
                if handing:
                    _forget(handing, r)
                if stage.get(r) == "write" and what != "gil":
                    state = "write"
                elif what in on or what == "write":
                    state = str(what)
                else:
                    continue
            elif r < 0 and key in handing:
                r = handing[key]
                state = str(what) if what in on else "pool"
            else:
                continue
        else:
            continue
        cur = req_state.get(r)
        if cur is None:
            req_state[r] = [state, t]
        elif cur[0] != state:
            if t > cur[1]:
                add((r, cur[1], t, cur[0]))
            cur[0] = state
            cur[1] = t
    end = trace.end_ms
    for r, cur in req_state.items():
        if end > cur[1]:
            add((r, cur[1], end, cur[0]))
    return out


def _forget(handing: dict[str, int], r: int) -> None:
    for key, req in handing.items():
        if req == r:
            del handing[key]
            return


def _thread_span(key: str, cur: list[Any], t: float, with_stage: bool) -> tuple[Any, ...]:
    if with_stage:
        return (key, cur[2], t, cur[0], cur[1], cur[3])
    return (key, cur[2], t, cur[0], cur[1])


def _restage(
    thr: dict[str, list[Any]], out: list[Any], key: str, r: int, new_stage: str, t: float
) -> None:
    """Split the span of the thread serving request ``r`` where its stage changes."""
    cur = thr.get(key)
    if cur is not None and cur[1] == r and cur[3] != new_stage:
        if t > cur[2]:
            out.append(_thread_span(key, cur, t, True))
        cur[2] = t
        cur[3] = new_stage
