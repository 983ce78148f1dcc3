"""Frames: the state of a run over time, derived from a Trace's event log.

:func:`sample` turns the event log into per-tick snapshots (what the browser plays back);
:func:`~.spans.spans` (in :mod:`.spans`, re-exported here) turns it into state intervals
per request and per thread (what a timeline draws and what the exports write). Both read
only ``trace.events`` (plus the lane and core counts), so a simulated and a measured Trace
give frames the same way. Each is one pass over the events: O(events + frames).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from itertools import compress
from operator import itemgetter
from typing import Any

from .eventlog import EventLog
from .spans import (
    _CONNECTING,
    REQUEST_STATES,
    RequestSpan,
    ThreadSpan,
    iter_thread_spans_with_stage,
    spans,
    thread_spans_with_stage,
)
from .trace import Trace

__all__ = ["REQUEST_STATES", "RequestSpan", "ThreadSpan", "iter_thread_spans_with_stage",
           "sample", "spans", "thread_spans_with_stage"]


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
    tally = _Tally()
    step = tally.step

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
                step(who, what, ref)
            elif kind == "backlog":
                backlog = int(what)
            elif kind == "gil":
                gil[who] = what
        frames.append(tally.frame(t_end, backlog, threads, gil, min(cores, on_cpu)))
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
    tally = _Tally()
    step = tally.step
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
                    step(r, p, outcome)
            a = b
        on_cpu = list(map(state_of, threads.values())).count("cpu")
        frames.append(tally.frame(t_end, backlog, threads, gil, min(cores, on_cpu)))
    return frames


class _Tally:
    """The requests in flight and how many have ended, as a run's ``req`` events say: what
    both passes of :func:`sample` keep besides the threads, the GIL and the backlog."""

    __slots__ = ("phase", "connecting", "completed", "failed")

    def __init__(self) -> None:
        self.phase: dict[Any, Any] = {}  # requests in flight -> last req phase
        self.connecting = 0
        self.completed = 0
        self.failed = 0

    def step(self, r: Any, p: Any, outcome: Any) -> None:
        """Request ``r`` reached phase ``p`` (``outcome``: the event's ref)."""
        phase = self.phase
        before = phase.get(r)
        if p == "done":
            if before is not None:
                del phase[r]
                if before in _CONNECTING:
                    self.connecting -= 1
            if outcome == "ok":
                self.completed += 1
            else:
                self.failed += 1
            return
        if p in _CONNECTING:
            if before not in _CONNECTING:
                self.connecting += 1
        elif before in _CONNECTING:
            self.connecting -= 1
        phase[r] = p

    def frame(self, t_end: float, backlog: int, threads: dict[Any, Any], gil: dict[Any, Any],
              busy: int) -> dict[str, Any]:
        """The frame at ``t_end`` (see :func:`sample`)."""
        return {
            "t": round(t_end, 4),
            "backlog": backlog,
            "threads": {key: [s[0], s[1]] for key, s in threads.items()},
            "gil": dict(gil),
            "busy_cores": busy,
            "in_flight": len(self.phase),
            "completed": self.completed,
            "failed": self.failed,
            "connecting": self.connecting,
        }
