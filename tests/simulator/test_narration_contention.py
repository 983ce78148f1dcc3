"""Narration of contention: the accept race, uneven cores, a killed gevent worker, and a
replacement's boot time."""

from __future__ import annotations

import re

from wsgiscope import simulator
from wsgiscope.simulator.narration import narrate


def told(scenario: dict) -> str:
    return "\n".join(line for _, line in narrate(simulator.run(scenario)))


def test_the_accept_race_is_told() -> None:
    text = told({
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 2, "threads": 4},
        "endpoints": {"/a": [{"io_ms": 1000}]},
        "workload": [{"count": 10, "path": "/a"}],
        "seed": 3,
    })
    assert re.search(r"worker w\d's main thread was already running and took [789] of the 10 "
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
    assert re.search(r"worker w1's replacement starts accepting 122\.0 ms after the old one "
                     r"left: SIGCHLD woke the arbiter", text), text
