"""Frames and spans: per-tick state and state intervals derived from a Trace."""

from __future__ import annotations

from collections import defaultdict

import pytest
from handmade import dropped_syn, gil_pair, single_thread
from wsgiscope import simulator
from wsgiscope.simulator.frames import REQUEST_STATES, sample, spans, thread_spans_with_stage


def test_gil_pair_frames_follow_the_handovers() -> None:
    frames = sample(gil_pair(), 2.5)
    assert [f["t"] for f in frames] == [2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0]
    holders = [f["gil"]["w1"] for f in frames]
    assert holders == ["w1/t1", "w1/t2", "w1/t2", "w1/t1", "w1/t1", "w1/t2", "w1/t2", ""]
    assert frames[0]["threads"] == {"w1/t1": ["cpu", 0], "w1/t2": ["gil", 1]}
    assert frames[1]["threads"] == {"w1/t1": ["gil", 0], "w1/t2": ["cpu", 1]}
    # one GIL: never more than one busy core, though the machine has two
    assert {f["busy_cores"] for f in frames[:-1]} == {1}
    assert frames[-1]["busy_cores"] == 0
    assert [f["in_flight"] for f in frames] == [2, 2, 2, 2, 2, 1, 1, 0]
    assert [f["completed"] for f in frames] == [0, 0, 0, 0, 0, 1, 1, 2]


def test_single_thread_backlog_drains_one_per_second() -> None:
    frames = sample(single_thread(n=3), 500.0)
    # end of each half second: backlog 2 (users 2 and 3) until user 1 is done at ~1 s ...
    assert [f["backlog"] for f in frames] == [2, 2, 1, 1, 0, 0, 0]
    assert [f["completed"] for f in frames] == [0, 0, 1, 1, 2, 2, 3]
    assert frames[-1]["t"] >= single_thread(n=3).end_ms
    assert frames[0]["threads"]["w1/t1"] == ["io", 0]
    assert frames[2]["threads"]["w1/t1"] == ["io", 1]


def test_start_and_end_window() -> None:
    trace = single_thread(n=3)
    frames = sample(trace, 100.0, start_ms=1000.0, end_ms=1500.0)
    assert [f["t"] for f in frames] == [1100.0, 1200.0, 1300.0, 1400.0, 1500.0]
    # events before the window still count: user 1 is done, user 2 is on the thread
    assert frames[0]["completed"] == 1
    assert frames[0]["threads"]["w1/t1"] == ["io", 1]


def test_connecting_counts_a_dropped_syn_until_its_retry() -> None:
    frames = sample(dropped_syn(), 250.0)
    assert [f["connecting"] for f in frames] == [1, 1, 1, 0, 0]
    assert frames[0]["backlog"] == 0 and frames[0]["in_flight"] == 1
    assert sample(dropped_syn(), 50.0)[0]["backlog"] == 1


@pytest.mark.parametrize("tick", [0, -1.0])
def test_tick_must_be_positive(tick: float) -> None:
    with pytest.raises(ValueError, match="tick_ms"):
        sample(gil_pair(), tick)


def test_spans_of_the_gil_pair() -> None:
    s = spans(gil_pair())
    assert sorted(s["requests"]) == [
        (0, 0.0, 5.0, "cpu"),
        (0, 5.0, 10.0, "gil"),
        (0, 10.0, 15.0, "cpu"),
        (1, 0.0, 5.0, "gil"),
        (1, 5.0, 10.0, "cpu"),
        (1, 10.0, 15.0, "gil"),
        (1, 15.0, 20.0, "cpu"),
    ]
    assert ("w1/t1", 15.0, 20.0, "dead", -1) in s["threads"]
    ends = [sp[2] for sp in s["threads"]]
    assert ends == sorted(ends)


def test_spans_of_a_dropped_syn_and_the_backlog() -> None:
    s = spans(dropped_syn())
    assert s["requests"] == [
        (0, 0.0, 100.0, "io"),
        (1, 0.0, 100.0, "backlog"),
        (1, 100.0, 200.0, "io"),
        (2, 0.0, 1000.0, "connecting"),
        (2, 1000.0, 1100.0, "io"),
    ]


def test_write_stage_is_its_own_state() -> None:
    s = spans(single_thread(n=1, sleep_ms=100.0))
    assert [sp[3] for sp in s["requests"]] == ["cpu", "io", "write"]
    assert s["requests"][-1][1:3] == (100.5, 101.0)


def test_thread_spans_split_by_stage() -> None:
    stages = [sp for sp in thread_spans_with_stage(single_thread(n=1)) if sp[4] == 0]
    assert [(sp[3], sp[5]) for sp in stages] == [("cpu", "recv"), ("io", "view"), ("cpu", "write")]


def _run(server: dict, endpoints: dict, workload: list, cores: int = 2) -> simulator.Trace:
    return simulator.run(
        {
            "server": server,
            "machine": {"cores": cores},
            "endpoints": endpoints,
            "workload": workload,
        }
    )


MIXED = {"/a": [{"cpu_ms": 20}, {"io_ms": 30}], "/b": [{"io_ms": {"exp": 10}}]}
POISSON = [{"poisson": {"rate_per_s": 150, "duration_s": 2}, "paths": {"/a": 1, "/b": 2}}]


@pytest.mark.parametrize(
    "server",
    [
        {"kind": "gunicorn", "worker_class": "gthread", "workers": 2, "threads": 4},
        {"kind": "gunicorn", "worker_class": "sync", "workers": 3},
        {"kind": "werkzeug", "threaded": True},
        {"kind": "werkzeug", "threaded": False},
    ],
)
def test_spans_agree_with_the_request_records(server: dict) -> None:
    trace = _run(server, MIXED, POISSON, cores=8)
    per: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r, start, end, state in spans(trace)["requests"]:
        assert state in REQUEST_STATES
        assert end > start
        per[r][state] += end - start
    assert len(trace.requests) > 200
    for rec in trace.requests:
        got = per[rec.id]
        # queue_ms runs from the first SYN to accept(): SYN retransmits, then the backlog
        assert got["connecting"] + got["backlog"] == pytest.approx(rec.queue_ms, abs=1e-6)
        assert got["pool"] == pytest.approx(rec.pool_wait_ms, abs=1e-6)
        if server.get("threaded"):
            # the main thread that accepted it may wait for the GIL to start its thread:
            # the request waits too, though its record counts only its own thread's waits
            assert got["gil"] >= rec.gil_wait_ms - 1e-6
        else:
            assert got["gil"] == pytest.approx(rec.gil_wait_ms, abs=1e-6)
        # on a core: the CPU work plus small context-switch and thread-start costs
        assert got["cpu"] == pytest.approx(rec.cpu_ms, abs=0.5)
        # connecting: the handshake's round trip, longer only after a dropped SYN
        rtt = trace.scenario["machine"]["rtt_ms"]
        ack_dropped = any(e.what == "overflow" for e in trace.request_events(rec.id))
        assert got["connecting"] == pytest.approx(rtt) or rec.syn_retries > 0 or ack_dropped
        assert sum(got.values()) == pytest.approx(rec.finished_ms - rec.sent_ms, abs=1e-6)


def test_frames_of_a_real_run_end_in_the_summary() -> None:
    trace = _run({"kind": "gunicorn", "workers": 2}, MIXED, POISSON)
    frames = sample(trace, 10.0)
    assert len(frames) == pytest.approx(trace.end_ms / 10.0, abs=1)
    last = frames[-1]
    assert last["completed"] == trace.summary["completed"]
    assert last["in_flight"] == 0 and last["backlog"] == 0
    assert all(0 <= f["busy_cores"] <= trace.cores for f in frames)
    assert max(f["backlog"] for f in frames) <= trace.summary["max_backlog"]
    lanes = {k for p in trace.processes for k in p["threads"]}
    assert set(last["threads"]) <= lanes
    assert set(last["gil"]) == {p["key"] for p in trace.processes}


def test_two_gil_processes_run_in_parallel() -> None:
    trace = _run(
        {"kind": "gunicorn", "workers": 2},
        {"/cpu": [{"cpu_ms": 100}]},
        [{"at_ms": 0, "count": 2, "path": "/cpu"}],
    )
    frames = sample(trace, 20.0)
    assert max(f["busy_cores"] for f in frames) == 2


def test_frames_and_spans_survive_the_json_form() -> None:
    import json

    trace = _run({"kind": "gunicorn", "worker_class": "gthread", "workers": 2}, MIXED, POISSON)
    again = simulator.Trace.from_dict(json.loads(json.dumps(trace.to_dict())))
    assert sample(again, 25.0) == json.loads(json.dumps(sample(trace, 25.0)))
    got, want = spans(again), spans(trace)
    assert [s[0] for s in got["requests"]] == [s[0] for s in want["requests"]]
    assert [s[3] for s in got["threads"]] == [s[3] for s in want["threads"]]


def test_request_spans_alone_are_the_same() -> None:
    trace = simulator.run(simulator.presets.get("gthread-poisson").scenario)
    both, alone = spans(trace), spans(trace, threads=False)
    assert alone["requests"] == both["requests"] and alone["threads"] == []
