"""The engine's mechanics: determinism, exact timelines, lifecycle order, edge cases."""

from __future__ import annotations

import subprocess
import sys

import pytest
from wsgiscope import simulator
from wsgiscope.simulator import presets
from wsgiscope.simulator.kernel import syn_offsets_ms
from wsgiscope.simulator.scenario import COSTS
from wsgiscope.simulator.trace import RESULT_FIELDS, STAGES, Trace

NO_COSTS = {k: 0 for k in COSTS}


def test_same_seed_same_trace_and_other_seed_differs() -> None:
    scenario = presets.get("gthread-poisson").scenario
    a = simulator.run(scenario, seed=7)
    b = simulator.run(scenario, seed=7)
    assert a.to_dict() == b.to_dict()
    c = simulator.run(scenario, seed=8)
    assert c.to_dict()["requests"] != a.to_dict()["requests"]


def test_simulator_imports_no_flask_and_no_io() -> None:
    code = (
        "import sys, simulator; simulator.run(simulator.presets.get('dev-threaded').scenario);"
        "bad = {'flask', 'werkzeug', 'socket', 'threading', 'asyncio', 'gunicorn'} & "
        "set(sys.modules); print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # threading may be imported by the interpreter itself; flask and friends must not be.
    assert "flask" not in out.stdout and "werkzeug" not in out.stdout
    assert "gunicorn" not in out.stdout and "socket" not in out.stdout


def test_exact_timeline_single_thread_without_overheads() -> None:
    trace = simulator.run(
        {
            "server": {"kind": "werkzeug", "threaded": False},
            "costs": NO_COSTS,
            "machine": {"rtt_ms": 0},
            "client": {"launch_gap_ms": 0},
            "endpoints": {"/sleep": [{"io_ms": 1000}]},
            "workload": [{"at_ms": 0, "count": 3, "path": "/sleep"}],
        }
    )
    log = [
        (e.t, e.what, e.ref)
        for e in trace.events
        if e.kind == "req" and e.what in ("backlog", "accept", "done")
    ]
    assert log == [
        (0.0, "backlog", "1"),
        (0.0, "accept", "server/main"),
        (0.0, "backlog", "1"),
        (0.0, "backlog", "2"),
        (1000.0, "done", "ok"),
        (1000.0, "accept", "server/main"),
        (2000.0, "done", "ok"),
        (2000.0, "accept", "server/main"),
        (3000.0, "done", "ok"),
    ]
    depth = [(e.t, e.what) for e in trace.events if e.kind == "backlog"]
    assert depth == [(0.0, 0), (0.0, 1), (0.0, 0), (0.0, 1), (0.0, 2), (1000.0, 1), (2000.0, 0)]


def test_events_are_in_time_order() -> None:
    trace = simulator.run(presets.get("gthread-poisson").scenario)
    times = [e.t for e in trace.events]
    assert times == sorted(times)


def test_lifecycle_stages_in_flask_order() -> None:
    trace = simulator.run(presets.get("flask-lifecycle").scenario)
    stages = [e.ref for e in trace.request_events(0) if e.what == "stage"]
    assert tuple(stages) == STAGES
    phases = [e.what for e in trace.request_events(0) if e.kind == "req"]
    assert phases[:3] == ["syn", "backlog", "accept"] and phases[-1] == "done"


def test_thread_states_show_gil_waits_for_cpu_threads() -> None:
    trace = simulator.run(presets.get("gil-cpu-threads").scenario)
    holders = {e.what for e in trace.events if e.kind == "gil" and e.what}
    assert len(holders) >= 4  # the GIL moved between the request threads
    states = {e.what for e in trace.events if e.kind == "thread"}
    assert {"gil", "cpu", "io", "idle"} <= states


def test_globals_race_and_g_isolation() -> None:
    trace = simulator.run(presets.get("globals-race").scenario)
    reads = [(e.who, e.ref) for e in trace.events if e.kind == "req" and e.what == "read"]
    assert reads == [
        (0, "global.user = request 1's value"),
        (1, "global.user = its own value"),
        (2, "g.user = its own value"),
        (3, "g.user = its own value"),
    ]
    assert trace.summary["races"] == 1


def test_globals_do_not_race_across_processes() -> None:
    scenario = presets.get("globals-race").scenario
    scenario = {**scenario, "server": {"kind": "werkzeug", "threaded": False, "processes": 2}}
    assert simulator.run(scenario).summary["races"] == 0


def test_syn_schedules() -> None:
    assert syn_offsets_ms("linear", 6) == [1000, 2000, 3000, 4000, 5000, 7000, 11000]
    assert syn_offsets_ms("exponential", 6) == [1000, 3000, 7000, 15000, 31000, 63000, 127000]


def test_connect_gives_up_after_syn_retries() -> None:
    trace = simulator.run(
        {
            "server": {"kind": "werkzeug", "threaded": False, "backlog": 0},
            "client": {"syn_retries": 2, "timeout_s": 600},
            "endpoints": {"/long": [{"io_ms": 60_000}]},
            "workload": [{"count": 4, "path": "/long", "spacing_ms": 1}],
        }
    )
    failed = [r for r in trace.requests if r.status == "timeout"]
    assert failed and all("SYN retransmits" in r.note for r in failed)
    assert all(r.finished_ms == pytest.approx(r.sent_ms + 3000) for r in failed)


def test_client_timeout_while_in_the_backlog() -> None:
    trace = simulator.run(
        {
            "server": {"kind": "werkzeug", "threaded": False},
            "client": {"timeout_s": 2.5},
            "endpoints": {"/sleep": [{"io_ms": 1000}]},
            "workload": [{"count": 5, "path": "/sleep"}],
        }
    )
    statuses = [r.status for r in trace.requests]
    assert statuses == ["ok", "ok", "timeout", "timeout", "timeout"]
    # The server still accepts the abandoned connections, reads EOF and closes them fast.
    assert trace.requests[4].accepted_ms is not None
    assert trace.end_ms < 3100


def test_max_requests_recycles_the_worker() -> None:
    trace = simulator.run(
        {
            "server": {"kind": "gunicorn", "workers": 1, "max_requests": 3, "boot_ms": 500},
            "endpoints": {"/a": [{"io_ms": 10}]},
            "workload": [{"count": 7, "path": "/a"}],
        }
    )
    assert all(r.status == "ok" for r in trace.requests)
    exits = [e for e in trace.events if e.kind == "worker" and e.what == "exit"]
    assert len(exits) == 2
    assert trace.requests[3].accepted_ms >= 500  # waited for the replacement to boot


def test_somaxconn_caps_the_backlog() -> None:
    trace = simulator.run(
        {
            "server": {"kind": "gunicorn", "backlog": 2048},
            "machine": {"somaxconn": 128},
            "endpoints": {"/a": [{"io_ms": 10}]},
            "workload": [{"count": 1, "path": "/a"}],
        }
    )
    assert trace.backlog_limit == 129


def test_trace_dict_round_trip() -> None:
    trace = simulator.run(presets.get("worker-timeout").scenario)
    again = Trace.from_dict(trace.to_dict())
    assert again.to_dict() == trace.to_dict()
    result = trace.to_result()
    assert set(result["requests"][0]) >= set(RESULT_FIELDS)
    assert set(result["summary"]) >= {
        "completed",
        "failed",
        "makespan_ms",
        "throughput_rps",
        "latency_ms",
        "max_backlog",
    }


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_every_preset_runs_and_teaches_something(name: str) -> None:
    preset = presets.get(name)
    assert preset.title and preset.lesson and preset.watch
    trace = simulator.run(preset.scenario)
    assert trace.requests and trace.summary["completed"] > 0


def test_unknown_preset_lists_the_names() -> None:
    with pytest.raises(KeyError, match="dev-single-thread"):
        presets.get("nope")
