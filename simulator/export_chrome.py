"""The Chrome Trace Event export of a Trace, for Perfetto (ui.perfetto.dev) or
``chrome://tracing``: a track per thread, the GIL holder per process and the backlog as a
counter. It reads only the Trace."""

from __future__ import annotations

from typing import Any

from .frames import thread_spans_with_stage
from .trace import Trace

_KERNEL_PID = 0


def to_chrome_trace(trace: Trace) -> dict[str, Any]:
    """The run as Chrome Trace Event JSON (``{"traceEvents": [...]}``), for Perfetto.

    One process track per server process and one thread track per thread lane, with a
    complete (``X``) event per span of a thread's state, named after the request and its
    lifecycle stage (idle spans are left out). Each process also has a ``GIL`` track
    showing which thread holds it. A ``kernel`` process carries the accept-queue depth and
    the requests in flight as counters (``C``). Times are microseconds.
    """
    events: list[dict[str, Any]] = []
    pids: dict[str, int] = {}
    tids: dict[str, tuple[int, int]] = {}
    names: dict[int, str] = {_KERNEL_PID: "kernel (listen socket)"}

    def pid_of(proc: str) -> int:
        if proc not in pids:
            pids[proc] = len(pids) + 1
            names.setdefault(pids[proc], proc)
        return pids[proc]

    def tid_of(key: str) -> tuple[int, int]:
        if key not in tids:
            pid = pid_of(key.split("/", 1)[0])
            tids[key] = (pid, sum(1 for p, _ in tids.values() if p == pid) + 1)
        return tids[key]

    for proc in trace.processes:
        pid = pid_of(str(proc["key"]))
        names[pid] = str(proc.get("label") or proc["key"])
        for key in proc.get("threads", []):
            tid_of(str(key))

    paths = {r.id: r.path for r in trace.requests}
    for key, start, end, state, req, stage in thread_spans_with_stage(trace):
        if state == "idle":
            continue
        pid, tid = tid_of(key)
        if req >= 0:
            name = f"user {req + 1} {stage} ({state})" if stage else f"user {req + 1} ({state})"
            args: dict[str, Any] = {
                "request": req,
                "path": paths.get(req, ""),
                "stage": stage,
                "state": state,
            }
        else:
            name = "accept loop" if state in ("gil", "cpu") else state
            args = {"state": state}
        events.append(
            {
                "name": name,
                "cat": state,
                "ph": "X",
                "ts": _us(start),
                "dur": _us(end - start),
                "pid": pid,
                "tid": tid,
                "args": args,
            }
        )

    gil_open: dict[str, tuple[float, str]] = {}
    last_depth: int | None = None
    in_flight = 0
    started: set[Any] = set()
    for e in trace.events:
        if e.kind == "gil":
            pkey = str(e.who)
            prev = gil_open.pop(pkey, None)
            if prev is not None and e.t > prev[0]:
                events.append(_gil_span(pid_of(pkey), prev[0], e.t, prev[1]))
            if e.what:
                gil_open[pkey] = (e.t, str(e.what))
        elif e.kind == "backlog":
            depth = int(e.what)
            if depth != last_depth:
                last_depth = depth
                events.append(
                    {
                        "name": "backlog",
                        "ph": "C",
                        "ts": _us(e.t),
                        "pid": _KERNEL_PID,
                        "args": {"depth": depth},
                    }
                )
        elif e.kind == "req":
            if e.what == "syn" and e.who not in started:
                started.add(e.who)
                in_flight += 1
            elif e.what == "done":
                in_flight -= 1
            else:
                continue
            events.append(
                {
                    "name": "in flight",
                    "ph": "C",
                    "ts": _us(e.t),
                    "pid": _KERNEL_PID,
                    "args": {"requests": in_flight},
                }
            )
    end = trace.end_ms
    for pkey, (since, holder) in gil_open.items():
        if end > since:
            events.append(_gil_span(pid_of(pkey), since, end, holder))

    meta: list[dict[str, Any]] = []
    for pid, name in sorted(names.items()):
        meta.append({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": name}})
        meta.append(
            {"name": "process_sort_index", "ph": "M", "pid": pid, "args": {"sort_index": pid}}
        )
    for pid in sorted(set(pids.values())):
        meta.append(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": "GIL"}}
        )
    for key, (pid, tid) in tids.items():
        meta.append(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": key}}
        )
        meta.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    return {
        "traceEvents": meta + events,
        "displayTimeUnit": "ms",
        "otherData": {
            "scenario": str(trace.scenario.get("name", "")),
            "source": trace.source,
            "seed": trace.seed,
        },
    }


def _us(ms: float) -> float:
    """Milliseconds to microseconds, to the nanosecond (cheaper than ``round(x, 3)``)."""
    return int(ms * 1e6 + 0.5) / 1e3


def _gil_span(pid: int, start: float, end: float, holder: str) -> dict[str, Any]:
    return {
        "name": f"held by {holder}",
        "cat": "gil",
        "ph": "X",
        "ts": _us(start),
        "dur": _us(end - start),
        "pid": pid,
        "tid": 0,
        "args": {"holder": holder},
    }
