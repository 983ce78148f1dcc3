"""The lost update, version-aware: where CPython lets a thread go decides whether
``counter += 1`` from several threads loses updates."""

from __future__ import annotations

from typing import Any

import pytest
from wsgiscope import simulator
from wsgiscope.simulator.races import LOOPS, rules, switch_in_window


def counting(python: str, call: bool = False, lock: bool = False, times: int = 1_000_000,
             threads: int = 4, seed: int = 1) -> simulator.Trace:
    sc: dict[str, Any] = {
        "server": {"kind": "werkzeug", "threaded": True},
        "machine": {"python": python},
        "endpoints": {"/count": [{"increment": "counter", "times": times, "call": call,
                                  "lock": lock}]},
        "workload": [{"at_ms": 0, "count": threads, "path": "/count"}],
    }
    return simulator.run(sc, seed)


def test_the_window_follows_the_eval_breaker_sites() -> None:
    # 3.10+: no check between LOAD_GLOBAL and STORE_GLOBAL in a plain `counter += 1`
    assert switch_in_window("3.11", call=False) == 0.0
    assert switch_in_window("3.13", call=False) == 0.0
    # a call in between: the callee's RESUME checks
    assert 0.3 < switch_in_window("3.11", call=True) < 0.8
    # 3.9 checks before almost every instruction
    assert 0.3 < switch_in_window("3.9", call=False) < 0.8
    assert rules("3.10") == "3.10+" and rules("3.9") == "3.9"
    for listing in LOOPS.values():
        names = [name for name, _ in listing]
        assert sum(n.endswith(" load") for n in names) == 1
        assert sum(n.endswith(" store") for n in names) == 1


@pytest.mark.parametrize(("python", "call", "loses"), [
    ("3.9", False, True), ("3.9", True, True), ("3.11", False, False), ("3.11", True, True),
])
def test_unlocked_counters_lose_updates_where_the_interpreter_can_switch(
        python: str, call: bool, loses: bool) -> None:
    trace = counting(python, call)
    row = trace.summary["increments"]["counter"]
    assert row["increments"] == 4_000_000
    assert row["lost"] == row["increments"] - row["counted"] == trace.summary["lost_updates"]
    assert (row["lost"] > 0) == loses
    races = [e for e in trace.events if e.kind == "req" and e.what == "race"]
    assert bool(races) == loses
    if loses:
        assert any("switched out after loading" in str(e.ref) for e in races)
        assert any("by other threads lost" in str(e.ref) for e in races)
        assert any("stored over" in r.note for r in trace.requests)
    times = [e.t for e in trace.events]
    assert times == sorted(times)


@pytest.mark.parametrize("python", ["3.9", "3.11"])
def test_a_lock_loses_nothing(python: str) -> None:
    trace = counting(python, call=True, lock=True)
    assert trace.summary["lost_updates"] == 0
    assert trace.summary["increments"]["counter"]["counted"] == 4_000_000


def test_one_thread_or_one_short_increment_loses_nothing() -> None:
    assert counting("3.9", threads=1).summary["lost_updates"] == 0
    # a single increment per request is over long before the switch interval
    assert counting("3.9", times=1, threads=8).summary["lost_updates"] == 0


def test_processes_have_a_counter_each() -> None:
    sc = {
        "server": {"kind": "gunicorn", "workers": 2},
        "machine": {"python": "3.9"},
        "endpoints": {"/count": [{"increment": "counter", "times": 100_000}]},
        "workload": [{"at_ms": 0, "count": 4, "path": "/count"}],
    }
    trace = simulator.run(sc)
    # sync workers: one request at a time per process, so nothing overlaps
    assert trace.summary["increments"]["counter"] == {
        "increments": 400_000, "counted": 400_000, "lost": 0}


def test_the_same_seed_gives_the_same_losses() -> None:
    a = counting("3.9", seed=7).summary["increments"]
    assert a == counting("3.9", seed=7).summary["increments"]
