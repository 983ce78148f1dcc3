"""A measured run is a Trace like a simulated one: same JSON form, frames, spans,
narration; request phases in causal order; server facts (a worker timeout) recorded."""

from __future__ import annotations

import pytest
from wsgiscope.app.lab.measure import measure
from wsgiscope.simulator import frames
from wsgiscope.simulator.narration import narrate
from wsgiscope.simulator.trace import Trace

ORDER = ("syn", "drop", "backlog", "accept", "pool", "stage", "done")


@pytest.mark.lab
def test_a_measured_trace_works_like_a_simulated_one() -> None:
    sc = {
        "name": "mixed endpoints on gthread",
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 1, "threads": 2},
        "endpoints": {
            "/mixed": [{"cpu_ms": 5}, {"io_ms": 40}, {"cpu_ms": 5}],
            "/race": [{"set_global": "user"}, {"io_ms": 30}, {"get_global": "user"}],
        },
        "workload": [
            {"at_ms": 0, "count": 6, "path": "/mixed", "spacing_ms": 5},
            # two threads of one process, both free by then: they overlap on the global
            {"at_ms": 600, "count": 2, "path": "/race", "spacing_ms": 0},
        ],
    }
    trace = measure(sc)
    assert trace.source == "measured"
    assert Trace.from_dict(trace.to_dict()).to_dict() == trace.to_dict()
    assert [e.t for e in trace.events] == sorted(e.t for e in trace.events)
    assert {p["key"] for p in trace.processes} == {"w1"}
    for r in trace.requests:
        assert r.status == "ok" and r.http_status == 200
        assert r.sent_ms <= r.accepted_ms <= r.started_ms < r.finished_ms  # type: ignore[operator]
        assert r.worker == "w1" and r.thread is not None
        assert r.thread.startswith(r.worker + "/t")
        phases = [e.what for e in trace.request_events(r.id) if e.kind == "req"]
        assert phases[0] == "syn" and phases[-1] == "done"
        assert [ORDER.index(p) for p in phases] == sorted(ORDER.index(p) for p in phases)
        if r.path == "/mixed":
            assert r.cpu_ms >= 10.0
            assert r.io_ms >= 40.0
    # two requests raced on a module global: at least one read the other's value
    races = [r for r in trace.requests if r.path == "/race" and r.note]
    assert races and "read global 'user' and got request" in races[0].note
    assert trace.summary["races"] == len(races)

    shots = frames.sample(trace, 10.0)
    assert shots[-1]["completed"] == len(trace.requests)
    assert max(f["in_flight"] for f in shots) >= 2
    states = {s for _r, _a, _b, s in frames.spans(trace)["requests"]}
    assert {"cpu", "io", "write"} <= states
    assert narrate(trace)


@pytest.mark.lab
def test_a_gunicorn_worker_timeout_is_measured_as_an_error_and_a_new_worker() -> None:
    sc = {
        "name": "worker timeout",
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 1, "timeout_s": 1},
        "endpoints": {"/export": [{"io_ms": 8000}], "/ping": []},
        "workload": [
            {"at_ms": 0, "count": 1, "path": "/export"},
            {"at_ms": 300, "count": 1, "path": "/ping"},
        ],
    }
    trace = measure(sc)
    export, ping = trace.requests
    assert export.status == "error" and export.http_status == 500
    # killed after the 1 s timeout, long before its 8 s of work would have ended
    assert export.finished_ms is not None and 1000.0 <= export.finished_ms < 8000.0
    assert "killed" in export.note
    assert ping.status == "ok"
    assert ping.finished_ms is not None and ping.finished_ms > export.finished_ms
    worker_events = [(e.who, e.what) for e in trace.events if e.kind == "worker"]
    assert ("w1", "killed") in worker_events
    assert ("w1", "boot") in worker_events  # the replacement takes the dead worker's place
