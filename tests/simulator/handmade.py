"""Hand-made traces for testing what reads a Trace (frames, narration, exports) without
the engine: each follows the event table of ``simulator.trace`` to the letter."""

from __future__ import annotations

from wsgiscope.simulator.trace import Event, RequestRecord, Trace, summarise


def single_thread(n: int = 3, sleep_ms: float = 1000.0, backlog: int = 128) -> Trace:
    """``app.run(threaded=False)``: n users send GET /sleep at T=0; one thread serves them
    one after another; each request is 1 ms of CPU around a ``sleep_ms`` blocking call."""
    scenario = {
        "name": "Users hit /sleep on a single-threaded dev server",
        "server": {"kind": "werkzeug", "threaded": False, "processes": 1, "backlog": backlog},
        "machine": {"cores": 2, "switch_interval_ms": 5.0, "gil": True},
        "endpoints": {"/sleep": [{"io_ms": sleep_ms}]},
        "workload": [{"at_ms": 0, "count": n, "paths": {"/sleep": 1.0}, "spacing_ms": 0}],
    }
    ev: list[Event] = [Event(0.0, "thread", "w1/t1", "idle", -1)]
    reqs = []
    gap = 0.05  # users connect one after another, like a load tool's "simultaneous" clients
    for r in range(n):
        ev += [
            Event(r * gap, "req", r, "syn", "0"),
            Event(r * gap, "req", r, "backlog", str(r)),
            Event(r * gap, "backlog", "listen", r if r else 1, -1),
        ]
    t = 0.0
    for r in range(n):
        ev += [
            Event(t, "thread", "w1/t1", "cpu", r),
            Event(t, "gil", "w1", "w1/t1", -1),
            Event(t, "req", r, "accept", "w1/t1"),
            Event(t, "backlog", "listen", max(0, n - r - 1) if r else 0, -1),
            Event(t, "req", r, "stage", "recv"),
            Event(t + 0.5, "req", r, "stage", "view"),
            Event(t + 0.5, "thread", "w1/t1", "io", r),
            Event(t + 0.5, "gil", "w1", "", -1),
            Event(t + 0.5 + sleep_ms, "thread", "w1/t1", "cpu", r),
            Event(t + 0.5 + sleep_ms, "gil", "w1", "w1/t1", -1),
            Event(t + 0.5 + sleep_ms, "req", r, "stage", "write"),
            Event(t + 1.0 + sleep_ms, "req", r, "done", "ok"),
            Event(t + 1.0 + sleep_ms, "thread", "w1/t1", "idle", -1),
            Event(t + 1.0 + sleep_ms, "gil", "w1", "", -1),
        ]
        reqs.append(
            RequestRecord(
                id=r,
                path="/sleep",
                sent_ms=r * gap,
                accepted_ms=t,
                started_ms=t,
                finished_ms=t + 1.0 + sleep_ms,
                http_status=200,
                worker="w1",
                thread="w1/t1",
                queue_ms=t - r * gap,
                cpu_ms=1.0,
                io_ms=sleep_ms,
            )
        )
        t += 1.0 + sleep_ms
    ev.sort(key=lambda e: e.t)  # stable: same-time events keep their order
    trace = Trace(
        scenario=scenario,
        source="simulated",
        events=ev,
        requests=reqs,
        processes=[{"key": "w1", "label": "server", "threads": ["w1/t1"]}],
        backlog_limit=backlog + 1,
        cores=2,
        seed=1,
    )
    trace.summary = summarise(trace)
    return trace


def gil_pair() -> Trace:
    """Two threads of one process each run a 10 ms CPU-bound request; the GIL is handed
    over after the 5 ms switch interval: t1 runs 0-5 and 10-15, t2 runs 5-10 and 15-20."""
    scenario = {
        "name": "Two CPU-bound requests on threads",
        "server": {"kind": "werkzeug", "threaded": True},
        "machine": {"cores": 2, "switch_interval_ms": 5.0, "gil": True},
        "endpoints": {"/cpu": [{"cpu_ms": 10}]},
        "workload": [{"at_ms": 0, "count": 2, "paths": {"/cpu": 1.0}}],
    }
    ev = [
        Event(0.0, "req", 0, "syn", "1"),
        Event(0.0, "req", 0, "backlog", ""),
        Event(0.0, "req", 1, "syn", "1"),
        Event(0.0, "req", 1, "backlog", ""),
        Event(0.0, "thread", "w1/t1", "cpu", 0),
        Event(0.0, "gil", "w1", "w1/t1", -1),
        Event(0.0, "req", 0, "accept", "w1/t1"),
        Event(0.0, "req", 0, "stage", "view"),
        Event(0.0, "thread", "w1/t2", "gil", 1),
        Event(0.0, "req", 1, "accept", "w1/t2"),
        Event(0.0, "req", 1, "stage", "view"),
        Event(5.0, "thread", "w1/t1", "gil", 0),
        Event(5.0, "gil", "w1", "w1/t2", -1),
        Event(5.0, "thread", "w1/t2", "cpu", 1),
        Event(10.0, "thread", "w1/t2", "gil", 1),
        Event(10.0, "gil", "w1", "w1/t1", -1),
        Event(10.0, "thread", "w1/t1", "cpu", 0),
        Event(15.0, "req", 0, "stage", "write"),
        Event(15.0, "req", 0, "done", "ok"),
        Event(15.0, "thread", "w1/t1", "dead", -1),
        Event(15.0, "gil", "w1", "w1/t2", -1),
        Event(15.0, "thread", "w1/t2", "cpu", 1),
        Event(20.0, "req", 1, "stage", "write"),
        Event(20.0, "req", 1, "done", "ok"),
        Event(20.0, "thread", "w1/t2", "dead", -1),
        Event(20.0, "gil", "w1", "", -1),
    ]
    reqs = [
        RequestRecord(
            id=0,
            path="/cpu",
            sent_ms=0.0,
            accepted_ms=0.0,
            started_ms=0.0,
            finished_ms=15.0,
            http_status=200,
            worker="w1",
            thread="w1/t1",
            gil_wait_ms=5.0,
            cpu_ms=10.0,
        ),
        RequestRecord(
            id=1,
            path="/cpu",
            sent_ms=0.0,
            accepted_ms=0.0,
            started_ms=0.0,
            finished_ms=20.0,
            http_status=200,
            worker="w1",
            thread="w1/t2",
            gil_wait_ms=10.0,
            cpu_ms=10.0,
        ),
    ]
    trace = Trace(
        scenario=scenario,
        source="simulated",
        events=ev,
        requests=reqs,
        processes=[{"key": "w1", "label": "server", "threads": ["w1/t1", "w1/t2"]}],
        backlog_limit=129,
        cores=2,
        seed=1,
    )
    trace.summary = summarise(trace)
    return trace


def dropped_syn() -> Trace:
    """gunicorn sync, one worker, ``--backlog 0`` (a queue of one): user 1 is served
    (0-100 ms), user 2 waits in the queue, user 3's SYN is dropped at T=0 and retried at
    T=1 s, when it is accepted at once."""
    scenario = {
        "name": "Backlog overflow",
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 1, "backlog": 0},
        "machine": {"cores": 2, "switch_interval_ms": 5.0, "gil": True},
        "endpoints": {"/work": [{"io_ms": 100}]},
        "workload": [{"at_ms": 0, "count": 3, "paths": {"/work": 1.0}}],
    }
    ev = [
        Event(0.0, "worker", "w1", "ready", ""),
        Event(0.0, "thread", "w1/t1", "idle", -1),
        Event(0.0, "req", 0, "syn", "1"),
        Event(0.0, "req", 0, "backlog", ""),
        Event(0.0, "backlog", "listen", 1, -1),
        Event(0.0, "thread", "w1/t1", "io", 0),
        Event(0.0, "req", 0, "accept", "w1/t1"),
        Event(0.0, "backlog", "listen", 0, -1),
        Event(0.0, "req", 1, "syn", "1"),
        Event(0.0, "req", 1, "backlog", ""),
        Event(0.0, "backlog", "listen", 1, -1),
        Event(0.0, "req", 2, "syn", "1"),
        Event(0.0, "req", 2, "drop", ""),
        Event(100.0, "req", 0, "done", "ok"),
        Event(100.0, "thread", "w1/t1", "io", 1),
        Event(100.0, "req", 1, "accept", "w1/t1"),
        Event(100.0, "backlog", "listen", 0, -1),
        Event(200.0, "req", 1, "done", "ok"),
        Event(200.0, "thread", "w1/t1", "idle", -1),
        Event(1000.0, "req", 2, "syn", "2"),
        Event(1000.0, "req", 2, "backlog", ""),
        Event(1000.0, "backlog", "listen", 1, -1),
        Event(1000.0, "thread", "w1/t1", "io", 2),
        Event(1000.0, "req", 2, "accept", "w1/t1"),
        Event(1000.0, "backlog", "listen", 0, -1),
        Event(1100.0, "req", 2, "done", "ok"),
        Event(1100.0, "thread", "w1/t1", "idle", -1),
    ]
    reqs = [
        RequestRecord(
            id=0,
            path="/work",
            sent_ms=0.0,
            accepted_ms=0.0,
            started_ms=0.0,
            finished_ms=100.0,
            http_status=200,
            worker="w1",
            thread="w1/t1",
            io_ms=100.0,
        ),
        RequestRecord(
            id=1,
            path="/work",
            sent_ms=0.0,
            accepted_ms=100.0,
            started_ms=100.0,
            finished_ms=200.0,
            http_status=200,
            worker="w1",
            thread="w1/t1",
            queue_ms=100.0,
            io_ms=100.0,
        ),
        RequestRecord(
            id=2,
            path="/work",
            sent_ms=0.0,
            accepted_ms=1000.0,
            started_ms=1000.0,
            finished_ms=1100.0,
            http_status=200,
            worker="w1",
            thread="w1/t1",
            syn_retries=1,
            io_ms=100.0,
        ),
    ]
    trace = Trace(
        scenario=scenario,
        source="simulated",
        events=ev,
        requests=reqs,
        processes=[{"key": "w1", "label": "worker 1", "threads": ["w1/t1"]}],
        backlog_limit=1,
        cores=2,
        seed=1,
    )
    trace.summary = summarise(trace)
    return trace
