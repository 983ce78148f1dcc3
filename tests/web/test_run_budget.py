"""The page's cap on requests and its event budget agree: a run the page accepts is simulated
whole, or refused before its first frame in one line naming the field and what is allowed,
never stopped by the budget after its head was shown. Small runs and small configured
limits: no test here simulates a large run."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import simple_websocket
from servekit import FakeSocket, serve
from wsgiscope import simulator
from wsgiscope.app import create_app, heads, page_caps
from wsgiscope.app.cache import MemoryRunCache
from wsgiscope.app.runs import load_for_web
from wsgiscope.app.serving import RunService
from wsgiscope.app.stream import Session
from wsgiscope.simulator import budget
from wsgiscope.simulator.budget import BudgetError
from wsgiscope.simulator.core import COMPILED


def poisson(n: int, server: dict[str, Any], endpoints: dict[str, Any], rate: float = 60.0,
            paths: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "name": f"{n} requests",
        "server": server,
        "machine": {"cores": 2},
        "endpoints": endpoints,
        "workload": [{"poisson": {"rate_per_s": rate, "duration_s": n / rate},
                      "paths": paths or {next(iter(endpoints)): 1.0}}],
    }


def sync_io(n: int) -> dict[str, Any]:
    """The default scenario of the README's speed figures, small: ~15 events a request."""
    return poisson(n, {"kind": "gunicorn", "worker_class": "sync", "workers": 8,
                       "timeout_s": 0}, {"/io": [{"io_ms": {"exp": 100}}]}, rate=70.0)


def gthread_mixed(n: int) -> dict[str, Any]:
    """Threads sharing a GIL: ~28 events a request, more than twice the engine's estimate."""
    return poisson(n, {"kind": "gunicorn", "worker_class": "gthread", "workers": 4,
                       "threads": 8},
                   {"/mixed": [{"cpu_ms": 2}, {"io_ms": {"exp": 20}}, {"cpu_ms": 3}],
                    "/io": [{"io_ms": {"exp": 50}}], "/cpu": [{"cpu_ms": {"exp": 8}}]},
                   rate=400.0, paths={"/mixed": 0.6, "/io": 0.3, "/cpu": 0.1})


def events(scenario: dict[str, Any], seed: int) -> int:
    return int(simulator.run(scenario, seed=seed).summary["events_simulated"])


def start(budget_events: int | None, scenario: dict[str, Any], seed: int = 1,
          max_requests: int = 100_000) -> FakeSocket:
    ws = FakeSocket()
    s = Session(ws, 4000, max_requests, RunService(MemoryRunCache(), max_events=budget_events))
    s.handle(json.dumps({"op": "start", "scenario": scenario, "seed": seed}))
    if s.flight is not None:
        assert s.flight.done.wait(60)
        s.pump()
    return ws


@pytest.mark.parametrize("compiled", [False, True])
def test_the_pages_own_budget_admits_a_plain_run_of_its_cap(compiled: bool) -> None:
    """Up to the cap, the engine's estimate never refuses a plain workload: a run over the
    cap is told the cap (field and range), not an event count. Pure Python and compiled."""
    cap, events_budget = page_caps(compiled)
    if compiled == COMPILED:
        config = create_app({"TESTING": True}).config
        assert (config["MAX_REQUESTS"], config["SIM_MAX_EVENTS"]) == (cap, events_budget)
    assert cap * budget.EVENTS_PER_REQUEST <= events_budget
    budget.check(load_for_web(sync_io(cap), cap), events_budget)
    with pytest.raises(simulator.ScenarioError) as err:
        load_for_web(sync_io(cap + 1000), cap)
    assert err.value.field == "workload"
    assert f"at most {cap:,}" in str(err.value)  # the page's cap, or (200,000) the engine's


def test_over_the_cap_the_socket_says_so_before_any_frame() -> None:
    ws = start(None, sync_io(2000), max_requests=1000)
    assert ws.take("meta") == [] and ws.take("frames") == []
    (err,) = ws.take("error")
    assert err["field"] == "workload"
    assert "asks for about 2,000 requests; the page runs at most 1,000" in err["error"]


def test_a_run_its_head_shows_too_costly_is_refused_before_its_first_frame() -> None:
    scenario = gthread_mixed(1500)
    whole = events(scenario, 1)
    limit = int(whole * 0.7)
    assert budget.estimate(simulator.load_scenario(scenario))[0].events < limit  # admitted
    ws = start(limit, scenario)
    assert ws.take("meta") == [] and ws.take("frames") == []  # no head shown, then stopped
    (err,) = ws.take("error")
    assert err["field"] == "workload"
    said = re.search(r"send at most about ([\d,]+) requests like these", err["error"])
    assert said, err["error"]
    assert "\n" not in err["error"]
    # what it says fits does fit: that many such requests run whole within the budget
    fits = int(said.group(1).replace(",", ""))
    assert 300 <= fits < 1500
    smaller = gthread_mixed(fits)
    assert events(smaller, 1) <= limit
    ws = start(limit, smaller)
    assert ws.take("error") == []
    metas = ws.take("meta")
    assert metas[0]["partial"] and metas[-1]["replace"]


def test_a_head_is_asked_for_or_not_the_run_is_refused_the_same() -> None:
    sc = simulator.load_scenario(gthread_mixed(1500))
    limit = int(events(gthread_mixed(1500), 2) * 0.7)
    with pytest.raises(BudgetError):
        heads.produce(sc, 2, limit, 4000, "k")
    with pytest.raises(BudgetError):
        heads.produce(sc, 2, limit, 4000, "k", lambda head: None)


def test_a_run_within_the_budget_plays_its_head_then_the_whole_run() -> None:
    scenario = sync_io(1500)
    # room for what a head may project over its whole run (a sample: up to ~15 % over)
    limit = int(events(scenario, 1) * 1.3 / heads.PACE_SHARE)
    ws = start(limit, scenario, seed=1)
    assert ws.take("error") == []
    metas = ws.take("meta")
    assert [bool(m.get("partial")) for m in metas] == [True, False]
    assert metas[-1]["summary"]["events_simulated"] <= limit


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serve(tmp_path_factory.mktemp("serve") / "server.log") as address:
        yield address


def test_a_user_asking_the_page_for_200k_requests_is_told_the_cap_at_once(server: str) -> None:
    """As a user would: ``wsgiscope serve`` with its defaults, the page's WebSocket."""
    if COMPILED:
        pytest.skip("with the compiled engine the page runs 200,000")
    ws = simple_websocket.Client.connect(f"ws://{server}/ws")
    try:
        ws.send(json.dumps({"op": "start", "scenario": sync_io(200_000), "seed": 1}))
        msg = json.loads(ws.receive(timeout=30))
    finally:
        ws.close()
    assert msg["type"] == "error" and msg["field"] == "workload"
    assert msg["error"] == ("workload: asks for about 200,000 requests; the page runs at most "
                            "100,000 (the wsgiscope simulate command runs more)")
