"""Arrivals drawn up front, requests made as they are sent: the same numbers, in the same
order, as drawing each request in turn, and nothing made per request before the first event."""

from __future__ import annotations

from typing import Any

import pytest
from wsgiscope import simulator
from wsgiscope.simulator import arrivals as arr
from wsgiscope.simulator.scenario import load_scenario


def scenario(item: dict[str, Any], **client: Any) -> simulator.Scenario:
    return load_scenario({
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
        "endpoints": {"/a": [{"io_ms": 5}], "/b": [{"cpu_ms": 1}]},
        "workload": [item],
        "client": client,
    })


ITEMS = [
    {"poisson": {"rate_per_s": 50, "duration_s": 20}, "path": "/a"},
    {"poisson": {"rate_per_s": 3, "duration_s": 7}, "path": "/a", "start_ms": 250},
    {"poisson": {"rate_per_s": 1000, "duration_s": 0.001}, "path": "/a"},
    {"constant": {"rate_per_s": 7, "duration_s": 10}, "path": "/a", "start_ms": 3},
    {"at_ms": 5, "count": 40, "path": "/a", "spacing_ms": 3},
    {"at_ms": 0, "count": 25, "path": "/a"},  # spacing 0: the client's launch gap
    {"at_ms": 0, "count": 25, "path": "/a", "send_ms": 12},
]


def columns(a: arr.Arrivals) -> list[tuple[Any, ...]]:
    return [(repr(a.sent(i)), a.path(i), repr(a.send(i))) for i in range(len(a))]


@pytest.mark.parametrize("item", ITEMS)
@pytest.mark.parametrize("seed", [1, 2, 77])
def test_one_plain_item_draws_what_one_by_one_draws(item: dict[str, Any], seed: int) -> None:
    sc = scenario(item, launch_gap_ms=0.25)
    quick_rng, slow_rng = arr.Random(seed), arr.Random(seed)
    quick = arr._one_plain_item(sc.workload[0], quick_rng, 0.25)
    slow = arr._one_by_one(sc.workload, slow_rng, 0.25)
    assert quick is not None
    assert columns(quick) == columns(slow)  # to the bit (repr), ints stay ints
    assert quick_rng.getstate() == slow_rng.getstate()  # the run's next numbers: the same
    assert quick.path_names() == slow.path_names() == (["/a"] if len(slow) else [])


def test_the_request_cap_stops_drawing_where_one_by_one_stops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arr, "MAX_REQUESTS", 30)
    sc = scenario({"poisson": {"rate_per_s": 100, "duration_s": 10}, "path": "/a"})
    quick_rng, slow_rng = arr.Random(3), arr.Random(3)
    quick = arr._one_plain_item(sc.workload[0], quick_rng, 0.0)
    slow = arr._one_by_one(sc.workload, slow_rng, 0.0)
    assert quick is not None and len(quick) == 30
    assert columns(quick) == columns(slow)
    assert quick_rng.getstate() == slow_rng.getstate()


@pytest.mark.parametrize("item", [
    {"poisson": {"rate_per_s": 50, "duration_s": 2}, "paths": {"/a": 0.7, "/b": 0.3}},
    {"poisson": {"rate_per_s": 50, "duration_s": 2}, "path": "/a",
     "send_ms": {"exp": 5}},
])
def test_other_items_are_drawn_one_by_one(item: dict[str, Any]) -> None:
    sc = scenario(item)
    assert arr._one_plain_item(sc.workload[0], arr.Random(1), 0.0) is None
    got = arr.arrivals(sc, arr.Random(1), 0.0)
    assert columns(got) == columns(arr._one_by_one(sc.workload, arr.Random(1), 0.0))


def test_a_run_makes_its_requests_as_they_are_sent() -> None:
    sc = scenario({"poisson": {"rate_per_s": 50, "duration_s": 40}, "path": "/a"})
    run = simulator.Simulation(sc, seed=5)
    sent = run.arrivals
    n = len(sent)
    assert n > 1500 and sent.made == []  # none made before the first event
    half = sent.sent(n // 2)
    run.run_until(half)
    made = len(sent.made)
    assert n // 2 < made < n and sent.sent(made) > half  # the ones sent by then
    assert sent.path_names() == ["/a"]
    whole = run.finish()
    assert len(run.requests) == n == len(whole.requests)
    assert whole.requests == simulator.run(sc, seed=5).requests


def test_a_step_shows_every_request_sent_by_then() -> None:
    """A burst all sent at 0: a look before the first event shows each of them."""
    sc = scenario({"at_ms": 0, "count": 12, "path": "/a", "spacing_ms": 0},
                  launch_gap_ms=0)
    run = simulator.Simulation(sc, seed=1)
    part = run.partial()
    assert [r.id for r in part.requests] == list(range(12))
    assert all(r.sent_ms == 0 for r in part.requests)
