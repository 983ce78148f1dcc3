"""Narration of contention: the accept race, uneven cores, a killed gevent worker, and a
replacement's boot time."""

from __future__ import annotations

import re

from wsgiscope import simulator
from wsgiscope.simulator.narration import narrate
from wsgiscope.simulator.scenario import COSTS, GUNICORN


def told(scenario: dict) -> str:
    return "\n".join(line for _, line in narrate(simulator.run(scenario)))


def test_the_accept_race_is_told() -> None:
    text = told({
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 2, "threads": 4},
        "endpoints": {"/a": [{"io_ms": 1000}]},
        "workload": [{"count": 10, "path": "/a"}],
        "seed": 5,  # a seed where one worker took 7 or more (4 seeds in 10 do, as measured)
    })
    assert re.search(r"worker w\d's main thread was already running and took [78] of the 10 "
                     r"connections", text), text


def test_an_even_split_is_not_told_as_a_race() -> None:
    text = told({
        "server": {"kind": "gunicorn", "workers": 2},
        "endpoints": {"/a": [{"io_ms": 1000}]},
        "workload": [{"count": 10, "path": "/a"}],
    })
    assert "already running" not in text


def test_uneven_cores_are_told() -> None:
    text = told({
        "server": {"kind": "gunicorn", "workers": 3},
        "endpoints": {"/cpu": [{"cpu_ms": 85}]},
        "workload": [{"count": 3, "path": "/cpu"}],
    })
    assert re.search(r"worker w\d shares core \d with worker w\d while worker w\d has a core "
                     r"to itself", text), text
    assert "load balancing moves" in text


def test_a_killed_gevent_worker_and_its_replacement_are_told() -> None:
    text = told({
        "server": {"kind": "gunicorn", "worker_class": "gevent", "timeout_s": 2},
        "endpoints": {"/crunch": [{"cpu_ms": 10_000}], "/ping": [{"io_ms": 5}]},
        "workload": [{"at_ms": 0, "count": 1, "path": "/crunch"},
                     {"at_ms": 100, "count": 1, "path": "/ping"}],
    })
    assert "gets no response at all" in text
    told_gap = re.search(r"worker w1's replacement starts accepting ([\d.]+) ms after the old "
                         r"one left: SIGCHLD woke the arbiter", text)
    assert told_gap, text
    typical = COSTS["reap_ms"][0] + COSTS["fork_ms"][0] + GUNICORN["boot_ms"][0]
    assert 0.75 * typical <= float(told_gap.group(1)) <= 3 * typical


HOGS_AND_QUICK = {
    "server": {"kind": "werkzeug", "threaded": True},
    "endpoints": {"/cpu": [{"cpu_ms": 200}], "/quick": [{"cpu_ms": 1}, {"io_ms": 5}]},
    "workload": [{"count": 3, "path": "/cpu"},
                 {"at_ms": 30, "count": 5, "path": "/quick", "spacing_ms": 40}],
}


def test_the_accept_loop_waits_in_thread_start_beside_cpu_hogs() -> None:
    """werkzeug threaded=True: Thread.start() returns only once the new thread has had the
    GIL, so while the first hog runs, the third connection waits to be accepted (measured:
    33-39 ms beside three hogs); without the wait it was accepted at once in every seed."""
    waits = []
    for seed in range(1, 21):
        trace = simulator.run({**HOGS_AND_QUICK, "seed": seed})
        third = sorted(trace.requests, key=lambda r: r.id)[2]
        waits.append(third.accepted_ms - third.sent_ms)
        main = [e for e in trace.events if e.kind == "thread" and e.who == "server/main"]
        assert any(e.what == "io" for e in main)  # blocked in start()
    waits.sort()
    assert waits[len(waits) // 2] >= 5.0, waits  # at least a switch interval, mostly
    text = told({**HOGS_AND_QUICK, "seed": 3})
    assert "is still in Thread.start() for the connection ahead of it" in text


def test_without_contention_thread_start_costs_little() -> None:
    """With nothing CPU-bound, start() waits only for the new threads' own first steps
    (the first request's, the server's first, longer). Measured (2026-11-21, werkzeug
    3.1.8, 4 runs of this scenario): the first accepted 0.3-0.8 ms after it was sent, the
    fifth 4.9-6.5 ms; all five done at 113-118 ms."""
    for seed in range(10):
        trace = simulator.run({
            "server": {"kind": "werkzeug", "threaded": True},
            "endpoints": {"/a": [{"io_ms": 100}]},
            "workload": [{"count": 5, "path": "/a"}],
            "seed": seed,
        })
        waits = [r.accepted_ms - r.sent_ms for r in trace.requests]
        assert waits[0] < 1.0 and 3.0 < max(waits) < 9.0, waits
        assert max(r.finished_ms for r in trace.requests) < 120


def test_a_fresh_processs_first_request_is_told_slow() -> None:
    scenario = {"endpoints": {"/a": [{"io_ms": 10}]}, "workload": [{"count": 2, "path": "/a"}]}
    sync = told({**scenario, "server": {"kind": "gunicorn", "workers": 1}})
    assert "first request this process serves also pays its one-off set-up (1.4 ms" in sync
    forked = told({**scenario, "server": {"kind": "werkzeug", "threaded": False,
                                          "processes": 2}})
    assert "one-off set-up" not in forked  # a forked child's is in fork_child_ms
    cold = told({**scenario, "server": {"kind": "gunicorn", "workers": 1},
                 "costs": {"first_request_ms": 0}})
    assert "one-off set-up" not in cold
