"""Context locals over time, read from a Trace: what each thread (or greenlet) had pushed,
and what the module globals, ``g`` and ``threading.local`` held, at any moment.

Flask 3 keeps the current app and request contexts in ``contextvars`` (``_cv_app``,
``_cv_request``; werkzeug's ``LocalStack`` before 2.3): each thread has its own context,
and under gevent each greenlet has its own too, so ``request`` and ``g`` are always the
ones of the request that thread or greenlet serves. ``RequestContext.push`` pushes an app
context and then itself; ``pop`` removes both after teardown. A module global belongs to
the process: every thread of it sees the same one. A ``threading.local`` belongs to the
thread (a greenlet under gevent's patching): a thread that serves request after request (a
pool thread, a sync worker) keeps its values from one to the next.

:func:`context_view` turns a Trace into the data the page needs to show that at the
playhead: each thread's context spans, every write and read of a global, ``g`` or a local,
and the races (a read of another request's value, an increment's stale store).
"""

from __future__ import annotations

from typing import Any

from .trace import Trace

#: A run with more requests than this has no context view (it would be too big to send).
MAX_REQUESTS = 300


def locals_per_connection(server: dict[str, Any]) -> bool:
    """Whether each connection gets a thread, process or greenlet of its own (so a
    ``threading.local`` starts empty for each request): werkzeug threaded or forking,
    gunicorn's gevent worker. Elsewhere threads serve request after request."""
    if server.get("kind", "werkzeug") == "werkzeug":
        return bool(server.get("threaded", True)) or int(server.get("processes", 1)) > 1
    return server.get("worker_class") == "gevent"


def context_view(trace: Trace, max_requests: int = MAX_REQUESTS) -> dict[str, Any] | None:
    """The context locals of a run, or None for a run too big to show.

    ``threads``: thread keys in lane order, with their process; ``spans``: ``[thread,
    request, pushed, popped, path, local owner]`` (the app and request contexts are on the
    thread from ``pushed`` to ``popped``); ``writes``: ``[t, scope, name, request, owner]``
    (``scope`` is global, g or local; ``owner`` the process, the request or the
    thread/request that holds a local); ``reads``: ``[t, scope, name, got, request, thread,
    wrong]`` (``got`` is the request whose value it read, -1 for none); ``races``: ``[t,
    request, thread, text]``.
    """
    if len(trace.requests) > max_requests:
        return None
    threads: list[dict[str, str]] = []
    for p in trace.processes:
        for th in p.get("threads", []):
            key = th if isinstance(th, str) else th["key"]
            threads.append({"key": key, "proc": p["key"]})
    index = {t["key"]: i for i, t in enumerate(threads)}
    proc_of = {t["key"]: t["proc"] for t in threads}
    fresh = locals_per_connection(trace.scenario.get("server", {}) or {})
    paths = {r.id: r.path for r in trace.requests}

    on: dict[int, str] = {}  # request -> the thread it is on
    open_spans: dict[int, list[Any]] = {}
    opened: set[int] = set()
    spans: list[list[Any]] = []
    writes: list[list[Any]] = []
    reads: list[list[Any]] = []
    races: list[list[Any]] = []
    any_store = False

    def close(rid: int, t: float) -> None:
        span = open_spans.pop(rid, None)
        if span is not None:
            span[3] = round(t, 4)
            spans.append(span)

    for t, kind, who, what, ref in trace.events:
        if kind == "thread":
            if isinstance(ref, int) and ref >= 0:
                on[ref] = str(who)
            continue
        if kind != "req":
            continue
        rid = int(who)
        thread = on.get(rid, "")
        ti = index.get(thread, -1)
        if what == "stage":
            # the contexts are pushed at the first Flask stage (context, or match or
            # before_request when the scenario gives the push no time)
            if ref in ("context", "match", "before_request") and rid not in opened:
                opened.add(rid)
                owner = f"r{rid}" if fresh else thread
                open_spans[rid] = [ti, rid, round(t, 4), None, paths.get(rid, ""), owner]
            elif ref == "write":
                close(rid, t)
        elif what == "done":
            close(rid, t)
        elif what == "store":
            any_store = True
            scope, _, name = str(ref).partition(".")
            owner = (proc_of.get(thread, "") if scope == "global" else f"r{rid}"
                     if scope == "g" or fresh else thread)
            writes.append([round(t, 4), scope, name, rid, owner])
        elif what == "read":
            any_store = True
            where, _, value = str(ref).partition(" = ")
            scope, _, name = where.partition(".")
            got = rid if value.startswith("its own") else -1
            if value.startswith("request "):
                got = int(value.split()[1].rstrip("'s"))
            reads.append([round(t, 4), scope, name, got, rid, ti, got != rid])
        elif what == "race":
            races.append([round(t, 4), rid, ti, str(ref)])
    for rid in list(open_spans):
        close(rid, trace.end_ms)
    if not any_store and not races and not spans:
        return None
    spans.sort(key=lambda s: s[2])
    return {"threads": threads, "spans": spans, "writes": writes, "reads": reads,
            "races": races, "per_connection": fresh, "stores": any_store}
