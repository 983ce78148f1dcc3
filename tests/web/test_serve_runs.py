"""The parts of serving many viewers, one at a time: a prepared run as bytes, the pool of
simulation processes, the run service (cache, one simulation for identical requests,
refusals remembered), and the rooms' publish/subscribe in memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from wsgiscope import simulator
from wsgiscope.app.cache import MemoryRunCache, approx_size, cache_key
from wsgiscope.app.pool import JobError, PoolError, SimPool
from wsgiscope.app.pubsub import MemoryBroker
from wsgiscope.app.runs import Prepared, prepare
from wsgiscope.app.serving import RunJob, RunService
from wsgiscope.app.web.inspector import inspect_request


def clean(name: str) -> dict:
    return simulator.load_scenario(simulator.presets.get(name).scenario).to_dict()


def job(name: str = "dev-single-thread", seed: int | None = None, **kw) -> RunJob:
    return RunJob(clean(name), seed, 4000, 50_000, **kw)


def poisson(rate: int) -> dict:
    sc = json.loads(json.dumps(simulator.presets.get("gthread-poisson").scenario))
    sc["workload"][0]["poisson"]["rate_per_s"] = rate
    return simulator.load_scenario(sc).to_dict()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.fixture(scope="module")
def pool():
    p = SimPool(2, timeout_s=30)
    yield p
    p.close()


# --- a prepared run as bytes ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev-single-thread", "gevent-io", "gthread-poisson"])
def test_a_prepared_run_survives_bytes_unchanged(name):
    trace = simulator.run(simulator.presets.get(name).scenario)
    run = prepare(trace, 4000, "k")
    again = Prepared.from_bytes(run.to_bytes())
    assert json.dumps(again.meta) == json.dumps(run.meta) and again.n == run.n
    for a, b in [(0, run.n), (0, 1), (run.n // 3, run.n // 2)]:
        assert again.chunk_text(a, b) == run.chunk_text(a, b)
    for rid in {0, len(trace.requests) // 2, len(trace.requests) - 1}:
        assert inspect_request(again.inspect_view(rid), rid) == inspect_request(trace, rid)


def test_bytes_that_are_not_a_run_are_refused():
    with pytest.raises(ValueError, match="not a prepared run"):
        Prepared.from_bytes(b"\x80\x04pickle")


def test_the_cache_key_is_the_content_and_the_limits():
    a = cache_key(clean("dev-single-thread"), 1, 4000, 50_000)
    assert a == cache_key(json.loads(json.dumps(clean("dev-single-thread"))), 1, 4000, 50_000)
    assert len({a, cache_key(clean("dev-single-thread"), 2, 4000, 50_000),
                cache_key(clean("dev-single-thread"), 1, 2000, 50_000),
                cache_key(clean("dev-single-thread"), 1, 4000, 50_000, 1000),
                cache_key(clean("dev-threaded"), 1, 4000, 50_000)}) == 5


# --- the pool of simulation processes ---------------------------------------------------------


def test_a_helper_gives_what_the_engine_gives_here(pool):
    j = job("gunicorn-gthread-1x4", seed=3)
    run = Prepared.from_bytes(pool.call(j.request()))
    here = prepare(simulator.run(j.scenario, seed=3), 4000, j.key)
    assert run.chunk_text(0, run.n) == here.chunk_text(0, here.n)
    assert json.dumps(run.meta) == json.dumps(here.meta)


def test_a_refused_scenario_comes_back_in_one_line_naming_the_field(pool):
    bad = {**job().request(), "scenario": {"server": {"kind": "werkzeug", "processes": 0}}}
    with pytest.raises(JobError) as err:
        pool.call(bad)
    assert err.value.scenario_error and err.value.field
    assert "\n" not in err.value.message
    # the engine's budget is a scenario error too, with its field
    with pytest.raises(JobError) as err:
        pool.call(job("gthread-poisson", max_events=1000).request())
    assert err.value.scenario_error and "\n" not in err.value.message
    assert Prepared.from_bytes(pool.call(job().request())).n > 0  # the helper carries on


def test_a_helper_that_dies_is_replaced(pool):
    before = set(pool.pids())
    victim = next(iter(before))
    os.kill(victim, signal.SIGKILL)
    for _ in range(4):  # whichever helper each call gets, all of them answer
        assert Prepared.from_bytes(pool.call(job().request())).n > 0
    assert victim not in pool.pids() and len(pool.pids()) == 2
    assert pool.stats["replaced"] >= 1


def test_a_run_over_the_time_limit_is_stopped_and_its_helper_replaced():
    p = SimPool(1, timeout_s=0.3)
    try:
        old = p.pids()[0]
        heavy = RunJob(poisson(400), 1, 4000, 50_000)
        with pytest.raises(PoolError, match=r"took longer than 0.3 s"):
            p.call(heavy.request())
        assert not alive(old)
        p.timeout_s = 30
        assert Prepared.from_bytes(p.call(job().request())).n > 0
        assert p.stats["timeouts"] == 1 and p.pids()[0] != old
    finally:
        p.close()


def test_helpers_die_with_the_serving_process(tmp_path):
    code = ("import sys, time; from wsgiscope.app.pool import SimPool; p = SimPool(2); "
            "print(*p.pids(), flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            start_new_session=True)
    try:
        pids = [int(x) for x in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        proc.kill()  # SIGKILL: no clean-up code runs in the parent
        proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        proc.stdout.close()


# --- the run service --------------------------------------------------------------------------


def test_identical_requests_in_flight_cost_one_simulation():
    svc = RunService(MemoryRunCache())
    j = job("gunicorn-sync-2", seed=11)
    runs = []
    threads = [threading.Thread(target=lambda: runs.append(svc.get(job("gunicorn-sync-2", 11))))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(runs) == 8 and len({id(r) for r in runs}) == 1
    assert svc.stats["simulations"] == 1
    assert svc.get(j) is runs[0] and svc.stats["simulations"] == 1  # then from the cache
    assert svc.get(job("gunicorn-sync-2", 12)) is not runs[0]
    assert svc.stats["simulations"] == 2


def test_a_refusal_is_remembered_not_simulated_again():
    svc = RunService(MemoryRunCache(), max_events=1000)
    j = svc.job(clean("gthread-poisson"), None, 4000, 50_000)
    for _ in range(3):
        with pytest.raises(simulator.ScenarioError):
            svc.get(j)
    assert svc.stats["simulations"] == 1 and svc.stats["refused"] == 2


def test_the_memory_cache_is_bounded_by_bytes_oldest_out_first():
    runs = [prepare(simulator.run(clean("dev-single-thread"), seed=s), 4000, str(s))
            for s in range(3)]
    size = approx_size(runs[0])
    cache = MemoryRunCache(max_bytes=int(size * 2.5))
    cache.put("a", runs[0])
    cache.put("b", runs[1])
    assert cache.get("a") is runs[0]  # a is now the most recently used
    cache.put("c", runs[2])
    assert cache.get("b") is None and cache.get("a") is runs[0] and cache.get("c") is runs[2]
    assert cache.summary()["bytes"] <= cache.max_bytes and cache.stats["evicted"] == 1
    tiny = MemoryRunCache(max_bytes=10)
    tiny.put("a", runs[0])
    assert tiny.get("a") is None  # larger than the whole cache: not kept


def test_a_pooled_service_keeps_the_loop_free_of_simulation(pool):
    svc = RunService(MemoryRunCache(), pool)
    run = svc.get(job("gil-cpu-threads", seed=5))
    assert run.n > 0 and svc.stats["simulations"] == 1
    assert svc.summary()["pool"]["processes"] == 2


# --- rooms in memory --------------------------------------------------------------------------


def test_a_room_reaches_its_subscribers_only():
    broker = MemoryBroker()
    a, b, other = broker.subscribe("lesson-1"), broker.subscribe("lesson-1"), broker.subscribe(
        "lesson-2")
    assert broker.publish("lesson-1", '{"t": 5}') == 2
    assert a.get(timeout=1) == b.get(timeout=1) == '{"t": 5}'
    assert other.get(timeout=0.05) is None
    a.close()
    assert broker.publish("lesson-1", "x") == 1
    assert a.get(timeout=0.01) is None and b.get(timeout=1) == "x"


def test_a_subscriber_that_does_not_read_loses_the_oldest_not_the_server():
    broker = MemoryBroker(maxlen=4)
    with broker.subscribe("r") as sub:
        for i in range(10):
            broker.publish("r", str(i))
        assert sub.lost == 6
        assert [sub.get(timeout=0.1) for _ in range(4)] == ["6", "7", "8", "9"]
    assert broker.summary() == {"rooms": 0, "subscribers": 0}


def test_a_waiting_subscriber_wakes_for_a_message():
    broker = MemoryBroker()
    sub = broker.subscribe("r")
    threading.Timer(0.1, broker.publish, ("r", "hello")).start()
    assert sub.get(timeout=5) == "hello"


@pytest.mark.parametrize("room", ["", "x" * 201, 5])
def test_a_room_name_is_checked(room):
    with pytest.raises(ValueError, match="room must be a name of 1 to 200 characters"):
        MemoryBroker().subscribe(room)
