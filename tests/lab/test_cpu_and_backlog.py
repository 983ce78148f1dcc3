"""A CPU-bound row and a backlog-overflow row, measured on real servers."""

from __future__ import annotations

import pytest
from wsgiscope.app.lab.measure import measure

CPU_MS = 60.0


@pytest.mark.lab
def test_cpu_bound_threads_take_turns_on_the_gil() -> None:
    # docs/ARCHITECTURE.md: four simultaneous GET /cpu on the threaded dev server; each
    # request's own CPU time is its work, the rest of its wall time is waiting for the GIL.
    sc = {
        "name": "four CPU-bound requests on threads",
        "server": {"kind": "werkzeug", "threaded": True},
        "endpoints": {"/cpu": [{"cpu_ms": CPU_MS}]},
        "workload": [{"at_ms": 0, "count": 4, "path": "/cpu", "spacing_ms": 0}],
    }
    trace = measure(sc)
    reqs = trace.requests
    assert [r.status for r in reqs] == ["ok"] * 4
    for r in reqs:
        assert r.cpu_ms >= CPU_MS  # the thread's own CPU time covers the segment
        assert r.finished_ms is not None
    # one GIL: the four segments ran one at a time, never in parallel
    view_starts = sorted(
        e.t for e in trace.events if e.kind == "req" and e.what == "stage" and e.ref == "view"
    )
    assert len(view_starts) == 4
    makespan = max(r.finished_ms for r in reqs if r.finished_ms is not None)
    assert makespan >= 4 * CPU_MS - 1.0
    # the requests overlapped, so their segments took longer than their CPU time
    waited = [r for r in reqs if r.gil_wait_ms > CPU_MS / 2]
    assert len(waited) >= 2
    assert trace.summary["gil_wait_pct"] > 0


@pytest.mark.lab
def test_backlog_overflow_fills_the_queue_and_costs_syn_retransmits() -> None:
    # gunicorn --backlog 2 with one sync worker: the accept queue holds 3 connections;
    # the rest of a burst of ten is dropped and retried by the clients' kernels after ~1 s.
    sc = {
        "name": "backlog overflow",
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 1, "backlog": 2},
        "endpoints": {"/work": [{"io_ms": 150}]},
        "workload": [{"at_ms": 0, "count": 10, "path": "/work", "spacing_ms": 0}],
    }
    trace = measure(sc)
    assert trace.backlog_limit == 3
    depths = [e.what for e in trace.events if e.kind == "backlog"]
    assert max(depths) >= 2  # the sampler saw the queue fill up
    assert trace.summary["max_backlog"] == max(depths)
    assert all(isinstance(d, int) and d <= trace.backlog_limit for d in depths)
    assert [r.status for r in trace.requests] == ["ok"] * 10  # late, but no error
    retried = [r for r in trace.requests if r.syn_retries > 0]
    assert retried, "no SYN was dropped"
    for r in retried:
        assert r.finished_ms is not None and r.finished_ms >= 1000.0
        phases = [e.what for e in trace.request_events(r.id) if e.kind == "req"]
        assert phases[:2] == ["syn", "drop"]
    prompt = [r for r in trace.requests if r.syn_retries == 0]
    assert len(prompt) >= 3
    assert trace.summary["syn_retries"] == sum(r.syn_retries for r in trace.requests)
