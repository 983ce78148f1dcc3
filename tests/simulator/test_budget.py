"""The event budget: costly scenarios are refused before they run, in one line naming the
field that makes them costly; what the estimate misses is stopped by the hard cap."""

from __future__ import annotations

from typing import Any

import pytest
from wsgiscope import simulator
from wsgiscope.simulator import budget
from wsgiscope.simulator.budget import BudgetError
from wsgiscope.simulator.core import Env

CPU = {"endpoints": {"/cpu": [{"cpu_ms": 1000}]}}


def test_the_context_switch_scenario_that_once_looped_forever_finishes_within_its_budget() -> None:
    scenario = {"machine": {"context_switch_ms": 5}, "endpoints": {"/cpu": [{"cpu_ms": 85}]},
                "workload": [{"count": 4, "path": "/cpu"}]}
    trace = simulator.run(scenario, max_events=20_000)
    assert [r.status for r in trace.requests] == ["ok"] * 4
    assert trace.summary["events_simulated"] <= 20_000


def test_two_minutes_of_contended_cpu_at_a_tiny_switch_interval_is_refused_at_once() -> None:
    scenario = {"machine": {"switch_interval_ms": 0.05},
                "endpoints": {"/cpu": [{"cpu_ms": 60_000}]},
                "workload": [{"count": 2, "path": "/cpu"}]}
    with pytest.raises(BudgetError) as info:
        simulator.run(scenario)
    err = info.value
    assert isinstance(err, simulator.ScenarioError)
    assert err.field == "machine.switch_interval_ms"
    text = str(err)
    assert "\n" not in text
    assert text.startswith("machine.switch_interval_ms: 0.05 ms with 120 s of contended CPU")
    assert "2.4 M GIL hand-overs" in text
    assert "at most 4 M events" in text


def test_the_same_cpu_at_the_default_interval_runs() -> None:
    scenario = {**CPU, "workload": [{"count": 2, "path": "/cpu"}]}
    trace = simulator.run(scenario)
    assert trace.summary["completed"] == 2


def test_heavy_cpu_at_the_default_interval_names_the_endpoint() -> None:
    scenario = {"endpoints": {"/cpu": [{"cpu_ms": 600_000}]},
                "workload": [{"count": 100, "path": "/cpu"}]}
    with pytest.raises(BudgetError) as info:
        simulator.run(scenario)
    assert info.value.field == "endpoints./cpu"


@pytest.mark.parametrize(("workers", "threads"), [(256, 1024), (64, 1024)])
def test_too_many_simulated_threads_are_refused(workers: int, threads: int) -> None:
    scenario = {"server": {"kind": "gunicorn", "workers": workers, "threads": threads},
                "endpoints": {"/s": [{"io_ms": 10}]}, "workload": [{"count": 10, "path": "/s"}]}
    with pytest.raises(BudgetError) as info:
        simulator.run(scenario)
    assert info.value.field == "server.threads"
    assert f"{workers} workers x {threads} threads" in str(info.value)


def test_a_smaller_budget_refuses_what_the_default_allows() -> None:
    scenario = {**CPU, "machine": {"switch_interval_ms": 0.5},
                "workload": [{"count": 2, "path": "/cpu"}]}
    simulator.run(scenario)  # ~12,000 events
    with pytest.raises(BudgetError, match="at most 5,000 events"):
        simulator.run(scenario, max_events=5_000)


def test_the_hard_cap_stops_what_the_estimate_misses() -> None:
    # Eight threads per worker contend more than the estimate counts.
    scenario = {"server": {"kind": "gunicorn", "workers": 4, "threads": 8}, **CPU,
                "workload": [{"count": 40, "path": "/cpu"}]}
    estimated = sum(c.events for c in budget.estimate(simulator.load_scenario(scenario)))
    limit = int(estimated) + 100
    with pytest.raises(BudgetError) as info:
        simulator.run(scenario, max_events=limit)
    text = str(info.value)
    assert "\n" not in text
    assert f"more than {budget.approx(limit)} events" in text
    assert info.value.field  # the costliest field by the estimate


def test_the_env_cap_counts_every_event() -> None:
    env = Env(max_events=3)
    seen: list[Any] = []

    def tick(i: int) -> None:
        seen.append(i)
        env.after(1.0, tick, i + 1)

    env.at(0.0, tick, 0)
    with pytest.raises(BudgetError, match="stopped at 0.002 s"):
        env.run()
    assert seen == [0, 1, 2]
    assert env.events_run == 3


def test_every_bundled_lesson_is_well_within_the_web_budget() -> None:
    for name, preset in simulator.presets.PRESETS.items():
        sc = simulator.load_scenario(preset.scenario)
        budget.check(sc, 1_000_000)  # half the page's budget: no BudgetError
        assert budget.sim_threads(sc) <= budget.MAX_SIM_THREADS, name
