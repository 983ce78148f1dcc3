"""Several workers and instances share runs and rooms through a real ``redis-server`` (started
here on a free loopback port, no persistence; the tests are skipped without it)."""

from __future__ import annotations

import json
import time

import pytest
import simple_websocket
from servekit import get, healthz, redis_server, serve
from wsgiscope import simulator
from wsgiscope.app.cache import MemoryRunCache, RedisRunStore
from wsgiscope.app.pubsub import RedisBroker
from wsgiscope.app.runs import Prepared, prepare
from wsgiscope.app.serving import RunJob, RunService


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def clean(name: str) -> dict:
    return simulator.load_scenario(simulator.presets.get(name).scenario).to_dict()


def start(address: str, scenario: dict, seed: int) -> dict:
    ws = simple_websocket.Client.connect(f"ws://{address}/ws")
    try:
        ws.send(json.dumps({"op": "start", "scenario": scenario, "seed": seed}))
        while True:
            text = ws.receive(timeout=60)
            assert text is not None, "no answer"
            msg = json.loads(text)
            assert msg["type"] != "error", msg["error"]
            if msg["type"] == "meta":
                return msg
    finally:
        ws.close()


# --- the store and the broker -----------------------------------------------------------------


def test_the_shared_store_is_bounded_by_bytes_oldest_out_first(redis_url):
    run = prepare(simulator.run(clean("dev-single-thread")), 4000, "k")
    data = run.to_bytes()
    store = RedisRunStore(redis_url, max_bytes=int(len(data) * 2.5), prefix="t1:")
    store.put("a", data)
    store.put("b", data)
    assert store.get("a") == data  # a is now the most recently used
    store.put("c", data)
    assert store.get("b") is None and store.get("a") == data and store.get("c") == data
    assert store.summary()["entries"] == 2 and store.summary()["bytes"] == 2 * len(data)
    assert Prepared.from_bytes(store.get("c")).chunk_text(0, run.n) == run.chunk_text(0, run.n)


def test_one_process_at_a_time_may_simulate_a_run(redis_url):
    one, two = (RedisRunStore(redis_url, prefix="t2:") for _ in range(2))
    assert one.claim("k", 5) and not two.claim("k", 5)
    two.release("k")  # not its claim: nothing happens
    assert one.claimed("k")
    one.release("k")
    assert two.claim("k", 5)


def test_two_services_sharing_redis_simulate_once(redis_url):
    a = RunService(MemoryRunCache(), shared=RedisRunStore(redis_url, prefix="t3:"))
    b = RunService(MemoryRunCache(), shared=RedisRunStore(redis_url, prefix="t3:"))
    job = RunJob(clean("gunicorn-sync-2"), 7, 4000, 50_000)
    first = a.get(job)
    second = b.get(RunJob(clean("gunicorn-sync-2"), 7, 4000, 50_000))
    assert second.chunk_text(0, second.n) == first.chunk_text(0, first.n)
    assert (a.stats["simulations"], b.stats["simulations"], b.stats["shared_hits"]) == (1, 0, 1)


def test_a_refusal_is_shared_too(redis_url):
    a = RunService(MemoryRunCache(), shared=RedisRunStore(redis_url, prefix="t4:"),
                   max_events=1000)
    b = RunService(MemoryRunCache(), shared=RedisRunStore(redis_url, prefix="t4:"),
                   max_events=1000)
    for svc in (a, b):
        with pytest.raises(simulator.ScenarioError):
            svc.get(svc.job(clean("gthread-poisson"), None, 4000, 50_000))
    assert (a.stats["simulations"], b.stats["simulations"]) == (1, 0)


def test_redis_down_means_simulating_here(redis_url):
    store = RedisRunStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    svc = RunService(MemoryRunCache(), shared=store)
    assert svc.get(RunJob(clean("dev-single-thread"), 1, 4000, 50_000)).n > 0
    assert svc.stats["simulations"] == 1 and store.stats["errors"] >= 1


def test_a_room_reaches_subscribers_in_other_processes(redis_url):
    here, there = RedisBroker(redis_url, prefix="t5:"), RedisBroker(redis_url, prefix="t5:")
    try:
        assert here.wait_connected(5) and there.wait_connected(5)
        sub = there.subscribe("class-7")
        other = there.subscribe("class-8")
        assert here.publish("class-7", '{"t": 1200}') >= 1
        assert sub.get(timeout=5) == '{"t": 1200}'
        assert other.get(timeout=0.2) is None
    finally:
        here.close()
        there.close()


# --- wsgiscope serve --redis --------------------------------------------------------------------


def test_two_workers_share_the_run_cache(tmp_path, redis_url):
    scenario = simulator.presets.get("gunicorn-gthread-1x4").scenario
    with serve(tmp_path / "server.log", "--workers", "2", "--redis", redis_url,
               "--sim-processes", "1") as address:
        workers: dict[int, dict] = {}
        for _ in range(8):  # until both workers have served the run (the kernel picks)
            for _ in range(4):
                start(address, scenario, 9001)
            for _ in range(40):
                h = healthz(address)
                workers[h["pid"]] = h["runs"]
                if len(workers) == 2:
                    break
            served = [r["simulations"] + r["shared_hits"] + r["shared_waits"]
                      for r in workers.values()]
            if len(workers) == 2 and all(served):
                break
        assert len(workers) == 2 and all(served), workers
        assert sum(r["simulations"] for r in workers.values()) == 1
        assert get(f"http://{address}/")[0] == 200


def test_two_instances_share_the_run_cache(tmp_path, redis_url):
    scenario = simulator.presets.get("dev-threaded").scenario
    with serve(tmp_path / "a.log", "--redis", redis_url) as a, \
            serve(tmp_path / "b.log", "--redis", redis_url) as b:
        t0 = time.monotonic()
        assert start(a, scenario, 77)["key"] == start(b, scenario, 77)["key"]
        assert time.monotonic() - t0 < 60
        ra, rb = healthz(a)["runs"], healthz(b)["runs"]
        assert (ra["simulations"], rb["simulations"], rb["shared_hits"]) == (1, 0, 1)


def test_serve_refuses_a_redis_it_cannot_reach(tmp_path):
    from wsgiscope.app.cli import build_parser
    from wsgiscope.app.commands.common import CliError
    from wsgiscope.app.commands.serve import serve as serve_command

    args = build_parser().parse_args(["serve", "--redis", "redis://127.0.0.1:1/0"])
    with pytest.raises(CliError, match="--redis: cannot reach Redis at redis://127.0.0.1:1/0"):
        serve_command(args)
    args = build_parser().parse_args(["serve", "--redis", "http://example.com"])
    with pytest.raises(CliError, match="--redis must be a URL starting with redis://"):
        serve_command(args)
