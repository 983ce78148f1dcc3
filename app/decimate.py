"""Bounds on what one run sends to a browser, whatever the Trace, as a canvas renderer
decimates (uPlot merges items when there are more than pixels): thread lanes capped, lane
values per run bounded (the tick grows), request spans merged into slices of the view.
:func:`wsgiscope.app.runs.prepare` applies them.
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import itemgetter
from typing import Any

from wsgiscope.simulator.trace import Trace

#: Bounds on what one run sends, whatever the Trace (as a canvas renderer decimates: no
#: more items than the view can show). Thread lanes sent, a share per process; the rest
#: are counted in ``meta.hidden_threads`` / ``meta.hidden_processes``:
MAX_LANES = 512
#: ... per-frame lane values (thread states and GIL holders) in all: past it, the tick grows;
MAX_FRAME_VALUES = 1_000_000
#: ... request spans: past it, each request's spans shorter than a pixel-sized slice of
#: time are merged into one, in the state that took most of it.
MAX_SPANS = 200_000


def cap_lanes(procs: list[dict[str, Any]], keys: list[str], max_lanes: int
              ) -> tuple[list[dict[str, Any]], list[str], tuple[int, int]]:
    """At most ``max_lanes`` thread lanes: each process keeps its first threads up to an even
    share, processes beyond ``max_lanes`` are left out. Returns the kept processes (``first``
    renumbered), their thread keys and (threads left out, processes left out)."""
    if len(keys) <= max_lanes:
        return procs, keys, (0, 0)
    kept = procs[:max_lanes]
    share = max(1, max_lanes // len(kept))
    spare = max_lanes - sum(min(len(p["threads"]), share) for p in kept)
    out: list[dict[str, Any]] = []
    out_keys: list[str] = []
    for p in kept:
        take = min(len(p["threads"]), share)
        extra = min(len(p["threads"]) - take, spare)  # room a small process left
        spare -= extra
        threads = p["threads"][:take + extra]
        out.append({**p, "first": len(out_keys), "threads": threads})
        out_keys.extend(threads)
    return out, out_keys, (len(keys) - len(out_keys), len(procs) - len(kept))


def only_lanes(trace: Trace, keys: list[str]) -> Trace:
    """A copy of ``trace`` without the thread events of threads not in ``keys`` (sampling
    costs frames x threads: a capped run samples only the lanes it sends)."""
    keep = set(keys)
    log = trace.events
    rows = log.rows() if hasattr(log, "rows") else log
    events = [e for e in rows if e[1] != "thread" or e[2] in keep]
    return Trace(scenario=trace.scenario, source=trace.source, events=events,
                 requests=trace.requests, processes=trace.processes,
                 backlog_limit=trace.backlog_limit, cores=trace.cores, seed=trace.seed)


def decimate_spans(spans: list[Any], tick_ms: float, max_spans: int) -> list[Any]:
    """Request spans ``(req, start, end, state)`` cut to at most ``max_spans`` for the view:
    within each request, consecutive spans are gathered into slices of at least ``w`` ms and
    each slice becomes one span in the state that took most of it (``w`` starts at 1/64 of
    a frame's tick and doubles until the spans fit). Ordered by start, then request; the
    order of ``spans`` does not matter, only each request's spans in time order.

    Speed: each width is a pass over every request. A request without gaps whose last span
    starts less than ``w`` after its first becomes one slice, the same at every such width:
    that span is made once (:func:`_whole`); another request is merged again only when the
    width passes a slice length that closed one of its slices (below it, every check of
    the merge comes out the same)."""
    by_req: dict[int, list[Any]] = {}
    for s in spans:
        by_req.setdefault(s[0], []).append(s)
    # per request: its spans, reach and whole span (see _whole), and its merged spans at
    # the last width it was merged at with the largest width they hold for
    plans = [[r, items, *_whole(r, items), [], -math.inf] for r, items in by_req.items()]
    width = max(tick_ms / 64, 1e-6)
    while True:
        out: list[Any] = []
        add, more = out.append, out.extend
        for plan in plans:
            if plan[2] < width:
                add(plan[3])
            elif width <= plan[5]:  # no slice check changes its outcome up to there
                more(plan[4])
            else:
                merged: list[Any] = []
                plan[5] = _merge_request(plan[0], plan[1], width, merged)
                plan[4] = merged
                more(merged)
        if len(out) <= max_spans or width > 1e12:
            break
        width *= 2
    return sort_spans(out)


def sort_spans(spans: list[Any]) -> list[Any]:
    """``spans`` sorted by start (to the ns, so float noise cannot reorder ties), then by
    request, as ``sorted(spans, key=lambda s: (round(s[1], 6), s[0]))``: sorted by request,
    then stably by the rounded start, each key made in C."""
    spans.sort(key=_REQUEST)
    starts = list(map(round, map(_START, spans), repeat(6)))
    return [s for _, s in sorted(zip(starts, spans, strict=True), key=_FIRST)]


_REQUEST, _START, _FIRST = itemgetter(0), itemgetter(1), itemgetter(0)


def _whole(r: int, items: list[Any]) -> tuple[float, tuple[int, float, float, str]]:
    """Sort ``items`` (one request's spans) by start, and return how far after the first
    span's start the last slice check looks (a slice closes there at any width up to it;
    infinite with a gap) and the one span :func:`_merge_request` makes below that width."""
    items.sort(key=_START)
    _, a0, b0, st = items[0]
    took = {st: 0.0 + (b0 - a0)}
    reach, gap = -math.inf, False
    for _, a, b, st in items[1:]:
        reach = b0 - a0
        gap = gap or a - b0 > 1e-9
        b0 = max(b0, b)
        took[st] = took.get(st, 0.0) + (b - a)
    return (math.inf if gap else reach), (r, a0, b0, max(took, key=took.__getitem__))


def _merge_request(r: int, items: list[Any], width: float, out: list[Any]) -> float:
    """Append request ``r``'s spans (sorted by start) merged into slices of ``width``;
    return the smallest slice length that closed a slice (infinite if none): at any larger
    width up to it, every slice check comes out the same, and so do the spans."""
    first = len(out)  # out[first - 1] is another request's: never continued
    holds = math.inf
    rest = iter(items)
    _, a0, b0, st = next(rest)
    took = {st: 0.0 + (b0 - a0)}
    for _, a, b, st in rest:
        full = b0 - a0 >= width
        if full or a - b0 > 1e-9:  # a full slice, or a gap
            if full and b0 - a0 < holds:
                holds = b0 - a0
            _flush(r, a0, b0, took, out, first)
            a0, b0, took = a, b, {st: 0.0 + (b - a)}
        else:
            if b > b0:
                b0 = b
            took[st] = took.get(st, 0.0) + (b - a)
    _flush(r, a0, b0, took, out, first)
    return holds


def _flush(r: int, a0: float, b0: float, took: dict[str, float], out: list[Any],
           first: int) -> None:
    """One slice becomes a span in the state that took most of it, or continues the
    request's previous span when that is in the same state and ends where it starts."""
    state = max(took, key=took.__getitem__) if len(took) > 1 else next(iter(took))
    if len(out) > first:
        last = out[-1]
        if last[3] == state and abs(last[2] - a0) < 1e-9:
            out[-1] = (r, last[1], b0, state)  # the same state goes on
            return
    out.append((r, a0, b0, state))
