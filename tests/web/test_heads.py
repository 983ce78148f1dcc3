"""A large run in two parts: its head is the beginning of the whole run, it is sent before
the whole run is simulated, and the stream swaps in the whole run without a gap."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import pytest
from servekit import FakeSocket
from wsgiscope import simulator
from wsgiscope.app import heads, runservice
from wsgiscope.app.cache import MemoryRunCache
from wsgiscope.app.runs import Prepared, prepare
from wsgiscope.app.serving import RunService
from wsgiscope.app.stream import Session

COLUMNS = ("t", "b", "c", "q", "d", "x", "k", "th", "g")


def large(n: int = 2500, rate: float = 40.0) -> dict[str, Any]:
    """gunicorn sync -w 4 under Poisson arrivals: large enough to come in two parts."""
    return {
        "name": f"{n} requests",
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 4},
        "machine": {"cores": 2},
        "endpoints": {"/io": [{"cpu_ms": 1}, {"io_ms": {"exp": 60}}],
                      "/cpu": [{"cpu_ms": 15}]},
        "workload": [{"poisson": {"rate_per_s": rate, "duration_s": n / rate},
                      "paths": {"/io": 0.9, "/cpu": 0.1}}],
    }


def both(scenario: dict[str, Any], seed: int) -> tuple[Prepared, Prepared]:
    sc = simulator.load_scenario(scenario)
    got: list[Prepared] = []
    whole = heads.produce(sc, seed, None, 4000, "k", got.append)
    assert len(got) == 1
    return got[0], whole


@pytest.mark.parametrize("seed", [1, 7])
def test_the_heads_frames_are_the_whole_runs_first_frames(seed: int) -> None:
    head, whole = both(large(), seed)
    assert head.partial and not whole.partial
    assert 0 < head.n < whole.n
    assert head.tick_ms == whole.tick_ms
    assert head.meta["threads"] == whole.meta["threads"]
    a, b = head.chunk(0, head.n), whole.chunk(0, head.n)
    for column in COLUMNS:
        assert a[column] == b[column], column
    assert a["last"] is False and whole.chunk(0, whole.n)["last"] is True
    # what the head tells of the finished requests is what the whole run tells
    assert head.done and set(head.done) <= set(whole.done)
    horizon = head.meta["horizon_ms"]
    assert all(json.loads(r)[4] <= horizon for r in head.done)
    # its request spans that ended before the horizon are the whole run's
    ended = [s for s in head.spans if float(s.split(",")[2]) < horizon - 1e-6]
    assert ended and set(ended) <= set(whole.spans)
    # what needs the whole run comes with it
    n = whole.meta["summary"]["requests"]
    assert head.meta["summary"] is None and n > 2000
    assert head.meta["n_requests"] == whole.meta["n_requests"] == n
    assert head.meta["paths"] == whole.meta["paths"]
    assert head.narration[0] == whole.narration[0]  # the opening counts every request
    assert not any("all done" in line for line in head.narration)


def test_the_whole_run_is_the_same_with_or_without_a_head() -> None:
    sc = simulator.load_scenario(large())
    head, whole = both(large(), 3)
    alone = heads.produce(sc, 3, None, 4000, "k")
    assert alone.chunk_text(0, alone.n) == whole.chunk_text(0, whole.n)
    assert alone.meta == whole.meta
    # and the same trace as a plain run, whose own tick may differ
    plain = prepare(simulator.run(sc, seed=3), 4000, "k")
    assert plain.done == whole.done and plain.meta["summary"] == whole.meta["summary"]


def test_a_small_run_comes_whole() -> None:
    got: list[Prepared] = []
    sc = simulator.load_scenario(simulator.presets.get("dev-single-thread").scenario)
    run = heads.produce(sc, 1, None, 4000, "k", got.append)
    assert got == [] and not run.partial
    assert run.chunk_text(0, run.n) == prepare(simulator.run(sc, seed=1), 4000, "k").chunk_text(
        0, run.n)


def test_the_head_is_sent_before_the_rest_is_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The order of things: the engine's events when the head went out, then the rest."""
    log: list[tuple[str, int]] = []

    class Logged(simulator.Simulation):
        def finish(self) -> simulator.Trace:
            log.append(("rest starts", self.events_run))
            trace = super().finish()
            log.append(("rest done", self.events_run))
            return trace

    monkeypatch.setattr(heads.simulator, "Simulation", Logged)
    sc = simulator.load_scenario(large())
    heads.produce(sc, 2, None, 4000, "k", lambda h: log.append(("head", h.n)))
    assert [what for what, _ in log] == ["head", "rest starts", "rest done"]
    assert 0 < log[1][1] < log[2][1] // 4  # the head took a small part of the events


def test_a_session_plays_the_head_then_swaps_in_the_whole_run(
        app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real = heads.produce

    def held(*args: Any) -> Prepared:
        on_head = args[5]

        def head(run: Prepared) -> None:
            on_head(run)
            assert gate.wait(60)  # the rest waits until the test has looked

        return real(*args[:5], head)

    monkeypatch.setattr(runservice, "produce", held)
    runs = RunService(MemoryRunCache())
    ws = FakeSocket()
    s = Session(ws, 4000, 50_000, runs)
    s.handle(json.dumps({"op": "start", "scenario": large(), "seed": 5, "speed": 1}))
    meta = ws.take("meta")
    first = ws.take("frames")
    assert [m.get("partial") for m in meta] == [True]
    assert first and first[0]["i"] == 0 and not first[-1]["last"]
    assert s.flight is not None and not s.flight.done.is_set()  # the rest is not simulated yet
    assert runs.memory.summary()["entries"] == 0  # and a head is never cached
    s.handle(json.dumps({"op": "seek", "t": 1e9}))  # past the head: frames come with the rest
    had = sum(len(c["t"]) for c in first + ws.take("frames"))
    with app.app_context():
        s.handle(json.dumps({"op": "inspect", "id": 3}))
    assert ws.take("inspect") == []  # answered from the whole run (the pacer has no context)
    gate.set()
    s.flight.done.wait(60)
    assert s.busy
    s.pump()
    meta = ws.take("meta")
    assert len(meta) == 1 and meta[0]["replace"] and not meta[0].get("partial")
    assert meta[0]["summary"]["requests"] == meta[0]["n_requests"]
    again = ws.take("frames")
    assert again[0]["i"] == 0
    assert sum(len(c["t"]) for c in again) > had  # the seek past the head is served now
    for column in COLUMNS:  # the frames the viewer had, the same again
        assert again[0][column][:len(first[0]["t"]) * (len(first[0][column]) // len(
            first[0]["t"]))] == first[0][column]
    assert ws.take("inspect")[0]["id"] == 3
    assert runs.memory.summary()["entries"] == 1
    assert again[-1]["last"] is True and ws.take("end")  # the seek was past the end
    s.handle(json.dumps({"op": "seek", "t": 0}))
    s.handle(json.dumps({"op": "play"}))
    assert not s.busy and ws.take("frames") == []  # it has everything


def test_a_head_then_a_failed_rest_is_said_on_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    real, gate = heads.produce, threading.Event()

    def failing(*args: Any) -> Prepared:
        def head(run: Prepared) -> None:
            args[5](run)
            assert gate.wait(60)
            raise simulator.ScenarioError("workload", "stopped for the test")

        return real(*args[:5], head)

    monkeypatch.setattr(runservice, "produce", failing)
    ws = FakeSocket()
    s = Session(ws, 4000, 50_000, RunService(MemoryRunCache()))
    s.handle(json.dumps({"op": "start", "scenario": large(), "seed": 6}))
    assert ws.take("meta")[0]["partial"]
    assert s.flight is not None
    gate.set()
    s.flight.done.wait(60)
    s.pump()
    err = ws.take("error")
    assert len(err) == 1 and "stopped for the test" in err[0]["error"]
    assert err[0]["field"] == "workload"


def test_a_head_only_job_gives_the_same_head_and_simulates_no_further(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sc = simulator.load_scenario(large())
    head, _ = both(large(), 3)
    finished: list[int] = []

    class Logged(simulator.Simulation):
        def finish(self) -> simulator.Trace:
            finished.append(self.events_run)
            return super().finish()

    monkeypatch.setattr(heads.simulator, "Simulation", Logged)
    alone = heads.produce(sc, 3, None, 4000, "k", head_only=True)
    assert alone.partial and finished == []
    assert alone.to_bytes() == head.to_bytes()
    small = simulator.load_scenario(simulator.presets.get("dev-single-thread").scenario)
    assert not heads.produce(small, 1, None, 4000, "k", head_only=True).partial  # whole


def test_when_every_simulation_process_is_busy_the_head_comes_from_the_heads_lane() -> None:
    """Four users starting at once on a pool of two took 4.4 s (median) to their first
    frame, 0.39 s alone: the third and fourth waited for whole runs. A process kept for
    heads gives theirs while the whole runs wait their turn."""
    from wsgiscope.app.pool import SimPool

    pool, lane = SimPool(1, timeout_s=60), SimPool(1, timeout_s=60)
    others: list[threading.Thread] = []

    def other_user(job: runservice.RunJob) -> None:  # a whole run that keeps the pool busy
        def run() -> None:
            with contextlib.suppress(Exception):  # the pool closes under it at the end
                svc.get(job)
        others.append(threading.Thread(target=run, daemon=True))
        others[-1].start()

    try:
        svc = RunService(MemoryRunCache(), pool, heads=lane)
        busy = svc.job(simulator.load_scenario(large(6000)).to_dict(), 1, 4000, 50_000)
        other_user(busy)
        deadline = threading.Event()
        while pool.idle() and not deadline.wait(0.01):
            pass  # until the only process has taken the other user's whole run
        run, flight = svc.start(svc.job(simulator.load_scenario(large()).to_dict(), 2, 4000,
                                        50_000))
        assert run.partial and flight is not None
        assert svc.stats["lane_heads"] == 1 and not flight.done.is_set()
        assert flight.done.wait(120) and flight.ready() is not None
        assert svc.summary()["heads_pool"]["processes"] == 1
        # a refusal the head finds is told at once, from the lane too
        tight = RunService(MemoryRunCache(), pool, heads=lane, max_events=20_000)
        other_user(svc.job(busy.scenario, 5, 4000, 50_000))
        while pool.idle() and not deadline.wait(0.01):
            pass
        with pytest.raises(simulator.ScenarioError) as err:
            tight.start(tight.job(simulator.load_scenario(large(20_000)).to_dict(), 2, 4000,
                                  50_000))
        assert err.value.field == "workload" and lane.stats["jobs"] == 2
    finally:
        pool.close()
        lane.close()
        for other in others:
            other.join(10)
