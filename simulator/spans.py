"""Spans: the state intervals of a run, per request and per thread, derived from a
Trace's event log.

:func:`spans` gives what a timeline draws and what the exports write;
:func:`thread_spans_with_stage` adds each thread span's lifecycle stage. They read only
``trace.events``, so a simulated and a measured Trace give spans the same way, in one
pass over the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
