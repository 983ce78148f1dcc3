"""gunicorn gthread's own GIL hand-offs: the main thread's poller loop (accept, submit,
finish_request) and the pool thread's start and done-callback are Python code."""

from __future__ import annotations

from typing import Any

import pytest
from wsgiscope import simulator
from wsgiscope.simulator.frames import spans
from wsgiscope.simulator.scenario import COSTS
from wsgiscope.simulator.servers.gunicorn import SYSCALL_MS


def _run(costs: dict[str, float], endpoints: dict[str, Any], workload: list[Any],
         threads: int = 2) -> simulator.Trace:
    return simulator.run({
        "server": {"kind": "gunicorn", "worker_class": "gthread", "threads": threads},
        "machine": {"rtt_ms": 0, "context_switch_ms": 0},
        "costs": {**{k: 0 for k in COSTS}, **costs},
        "endpoints": endpoints,
        "workload": workload,
    })


def test_each_step_of_one_request_runs_where_gunicorn_runs_it() -> None:
    trace = _run(
        {"accept_ms": 1, "gthread_submit_ms": 2, "gthread_handle_ms": 3,
         "gthread_defer_ms": 4, "gthread_finish_ms": 5},
        {"/a": [{"io_ms": 10}]},
        [{"count": 1, "path": "/a"}],
    )
    (r,) = trace.requests
    # the client has its response only when finish_request (main thread) shuts the socket;
    # the pool thread's two system calls (select(), the pipe write) take SYSCALL_MS each
    sys_ms = SYSCALL_MS
    assert (r.accepted_ms, r.started_ms) == (1.0, 6.0 + sys_ms)
    assert r.finished_ms == pytest.approx(25.0 + 2 * sys_ms)
    assert r.cpu_ms == 5.0  # submit (main thread) and handle (pool thread), on its behalf
    busy = [(k, s, e, st, req) for k, s, e, st, req in spans(trace)["threads"] if st != "idle"]
    want = [
        ("w1/main", 0.0, 1.0, "cpu", -1),  # accept()
        ("w1/main", 1.0, 3.0, "cpu", 0),  # wrap the socket, tpool.submit()
        ("w1/t1", 3.0, 4.5, "cpu", 0),  # the work item starts handle()
        ("w1/t1", 4.5, 4.5 + sys_ms, "io", 0),  # wait_for_data: select() lets the GIL go
        ("w1/t1", 4.5 + sys_ms, 6.0 + sys_ms, "cpu", 0),
        ("w1/t1", 6.0 + sys_ms, 16.0 + sys_ms, "io", 0),  # the view
        ("w1/t1", 16.0 + sys_ms, 18.0 + sys_ms, "cpu", -1),  # done-callback: defer()
        ("w1/t1", 18.0 + sys_ms, 18.0 + 2 * sys_ms, "io", -1),  # its os.write() to the pipe
        ("w1/t1", 18.0 + 2 * sys_ms, 20.0 + 2 * sys_ms, "cpu", -1),
        ("w1/main", 20.0 + 2 * sys_ms, 25.0 + 2 * sys_ms, "cpu", -1),  # finish_request()
    ]
    got = sorted(busy, key=lambda x: (x[1], x[0]))
    assert [(k, st, req) for k, _, _, st, req in got] == [(k, st, req) for k, _, _, st, req in want]
    for (_, s, e, _, _), (_, ws, we, _, _) in zip(got, want, strict=True):
        assert (s, e) == pytest.approx((ws, we))


def test_the_main_thread_handles_what_select_returned_one_at_a_time() -> None:
    # Two connections at once: the second is accepted after the first is submitted; the
    # first one's finish_request waits until the main thread is back in its loop.
    trace = _run(
        {"accept_ms": 1, "gthread_submit_ms": 1, "gthread_finish_ms": 1},
        {"/a": [{"io_ms": 1}]},
        [{"count": 2, "path": "/a", "spacing_ms": 0}],
    )
    main = [(s, e, req) for k, s, e, st, req in spans(trace)["threads"]
            if k == "w1/main" and st == "cpu"]
    assert main == [(0.0, 1.0, -1), (1.0, 2.0, 0), (2.0, 3.0, -1), (3.0, 4.0, 1),
                    (4.0, 5.0, -1), (5.0, 6.0, -1)]
    # each client sees its connection closed by its finish_request (4-5, then 5-6)
    assert [r.finished_ms for r in trace.requests] == [5.0, 6.0]


def test_finish_request_waits_for_the_gil_beside_a_cpu_hog() -> None:
    """The main thread closes a quick request's connection only once it gets the GIL from
    the hog, and the client has its response only then: about one switch interval after
    the pool thread was done with it."""
    trace = _run(
        {"accept_ms": 0.03, "gthread_finish_ms": 0.03},
        {"/report": [{"cpu_ms": 300}], "/ping": [{"io_ms": 2}]},
        [{"count": 1, "path": "/report"}, {"at_ms": 100, "count": 1, "path": "/ping"}],
    )
    ping = next(r for r in trace.requests if r.path == "/ping")
    assert ping.finished_ms is not None
    waits = [(s, e) for k, s, e, st, _ in spans(trace)["threads"]
             if k == "w1/main" and st == "gil" and e <= ping.finished_ms + 1e-9]
    assert waits
    start, end = waits[-1]
    assert ping.finished_ms - end == pytest.approx(0.03)  # then finish_request runs
    assert 4.0 < end - start <= 5.0 + 1e-6
