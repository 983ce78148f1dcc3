"""A run played in steps (simulator.Simulation) is the run: the same Trace, and what it shows
part way is final."""

from __future__ import annotations

import pytest
from wsgiscope import simulator
from wsgiscope.simulator.budget import BudgetError


def poisson(n: int = 400) -> dict:
    return {
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 2, "threads": 4},
        "machine": {"cores": 2},
        "endpoints": {"/mixed": [{"cpu_ms": 2}, {"io_ms": {"exp": 40}}, {"cpu_ms": 3}],
                      "/cpu": [{"cpu_ms": 30}]},
        "workload": [{"poisson": {"rate_per_s": 60, "duration_s": n / 60},
                      "paths": {"/mixed": 0.8, "/cpu": 0.2}}],
    }


@pytest.mark.parametrize("steps", [1, 7, 50])
def test_steps_give_the_same_trace(steps: int) -> None:
    whole = simulator.run(poisson(), seed=4)
    run = simulator.Simulation(poisson(), seed=4)
    for k in range(1, steps + 1):
        run.run_until(whole.end_ms * k / (steps + 1))
    trace = run.finish()
    assert trace.events == whole.events
    assert trace.requests == whole.requests
    assert trace.summary == whole.summary
    assert run.finished and run.finish() is trace


def test_what_a_step_shows_is_final() -> None:
    whole = simulator.run(poisson(), seed=9)
    run = simulator.Simulation(poisson(), seed=9)
    t = whole.end_ms / 3
    assert not run.run_until(t)
    part = run.partial()
    n = len(part.events)
    assert 0 < n < len(whole.events)
    assert all(e.t <= t for e in part.events)
    assert part.events[:] == whole.events[:n]  # a prefix of the whole run's log
    assert whole.events[n].t > t  # and all of what happened up to t
    assert part.summary == {}
    done = [r for r in part.requests if r.finished_ms is not None]
    assert done and all(r.finished_ms <= t for r in done)
    assert [r.id for r in part.requests] == list(range(len(part.requests)))
    assert all(r.sent_ms <= t for r in part.requests)
    assert len(run.requests) == len(whole.requests)
    assert [p["key"] for p in part.processes] == [p["key"] for p in whole.processes]


def test_the_budget_holds_over_the_steps() -> None:
    events = simulator.run(poisson(), seed=1).summary["events_simulated"]
    run = simulator.Simulation(poisson(), seed=1, max_events=events - 1)
    with pytest.raises(BudgetError) as err:
        for k in range(1, 1000):
            run.run_until(k * 100.0)
    assert err.value.field == "workload"
    assert run.events_run == events - 1
    with pytest.raises(BudgetError):
        simulator.Simulation(poisson(), seed=1, max_events=100)  # refused before it starts
