"""Benchmark: the M/M/8 queue in wsgiscope's engine and in SimPy, side by side.

gunicorn sync with 8 workers, an I/O-only endpoint whose duration is exponential with a
mean of 1 s, Poisson arrivals at 7/s, every per-stage cost set to 0: that is exactly an
M/M/8 queue (rho = 0.875). Both simulators serve the same number of requests; the script
prints each one's speed (requests simulated per second of wall time), the ratio, and each
one's mean queue wait against Erlang C.

Times are CPU seconds of this process (time.process_time), which other load on a shared
machine disturbs far less than wall time; the three run ``--repeat`` times, interleaved, and
each ratio is taken within one round, then reported as the median (and range) of the rounds.

SimPy runs the model twice: bare (a Resource of 8, no output but the waits: the fastest
SimPy can do it) and traced (8 worker processes taking connections from a Store, logging
the same events and building the same per-request records and summary as our Trace), so
the second ratio compares equal work.

Run: python tests/bench/bench_mm8.py [--requests 100000] [--seed 1] [--repeat 3] [--profile]
[--no-gc]
Not part of the test suite; needs simpy (pip install simpy).
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import statistics
import time

import simpy
from wsgiscope import simulator
from wsgiscope.simulator.scenario import COSTS

RATE_PER_S = 7.0
SERVICE_MEAN_S = 1.0
SERVERS = 8


def erlang_c_wait_s(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C formula)."""
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    bottom = sum(a**k / math.factorial(k) for k in range(c)) + top
    return (top / bottom) / (c * mu - lam)


def scenario(n: int, seed: int) -> dict:
    return {
        "name": "M/M/8: gunicorn sync -w 8, exponential 1 s I/O, Poisson 7/s",
        "server": {
            "kind": "gunicorn",
            "worker_class": "sync",
            "workers": SERVERS,
            "timeout_s": 0,
            "boot_ms": 0,
        },
        "machine": {"cores": SERVERS, "context_switch_ms": 0, "rtt_ms": 0},
        "costs": {name: 0 for name in COSTS},
        "endpoints": {"/io": [{"io_ms": {"exp": SERVICE_MEAN_S * 1000}}]},
        "workload": [
            {"poisson": {"rate_per_s": RATE_PER_S, "duration_s": n / RATE_PER_S}, "path": "/io"}
        ],
        "client": {"timeout_s": 3600},
        "seed": seed,
    }


def run_ours(n: int, seed: int) -> tuple[int, float, float, float, float]:
    data = scenario(n, seed)
    t0 = time.process_time()
    trace = simulator.run(data)
    wall = time.process_time() - t0
    done = [r for r in trace.requests if r.status == "ok"]
    wait_s = sum(r.queue_ms for r in done) / len(done) / 1000.0
    # the load this sample of arrivals and service times really put on the eight workers
    span_s = max(r.sent_ms for r in trace.requests) / 1000.0
    busy_s = sum(r.finished_ms - r.accepted_ms for r in done) / 1000.0
    return len(trace.requests), wall, wait_s, len(trace.requests) / span_s, busy_s / len(done)


def run_simpy(n: int, seed: int) -> tuple[int, float, float, float, float]:
    rng = random.Random(seed)
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=SERVERS)
    waits: list[float] = []
    busy = [0.0]
    last_arrival = [0.0]

    def customer(env: simpy.Environment):  # type: ignore[no-untyped-def]
        arrived = env.now
        with servers.request() as req:
            yield req
            waits.append(env.now - arrived)
            service = rng.expovariate(1.0 / SERVICE_MEAN_S)
            busy[0] += service
            yield env.timeout(service)

    def source(env: simpy.Environment):  # type: ignore[no-untyped-def]
        for _ in range(n):
            yield env.timeout(rng.expovariate(RATE_PER_S))
            last_arrival[0] = env.now
            env.process(customer(env))

    t0 = time.process_time()
    env.process(source(env))
    env.run()
    wall = time.process_time() - t0
    n_done = len(waits)
    return n_done, wall, sum(waits) / n_done, n_done / last_arrival[0], busy[0] / n_done


def run_simpy_traced(n: int, seed: int) -> tuple[int, float, float, float, float]:
    """The same model as ours, with the same output: a Trace with the event log, the
    per-request records and the summary."""
    from wsgiscope.simulator.trace import Event, RequestRecord, Trace, summarise

    rng = random.Random(seed)
    env = simpy.Environment()
    backlog = simpy.Store(env)
    events: list[Event] = []
    records: list[RequestRecord] = []
    log = events.append

    def worker(env: simpy.Environment, key: str):  # type: ignore[no-untyped-def]
        thread = f"{key}/main"
        while True:
            rec = yield backlog.get()
            now = env.now * 1000.0
            log(Event(now, "backlog", "listen", len(backlog.items), -1))
            log(Event(now, "req", rec.id, "accept", thread))
            rec.accepted_ms = rec.started_ms = now
            rec.queue_ms = now - rec.sent_ms
            rec.worker, rec.thread = key, thread
            log(Event(now, "thread", thread, "io", rec.id))
            log(Event(now, "req", rec.id, "stage", "view"))
            service = rng.expovariate(1.0 / SERVICE_MEAN_S)
            yield env.timeout(service)
            now = env.now * 1000.0
            rec.finished_ms, rec.http_status, rec.io_ms = now, 200, service * 1000.0
            log(Event(now, "req", rec.id, "done", "ok"))
            log(Event(now, "thread", thread, "idle", -1))

    def source(env: simpy.Environment):  # type: ignore[no-untyped-def]
        for i in range(n):
            yield env.timeout(rng.expovariate(RATE_PER_S))
            now = env.now * 1000.0
            rec = RequestRecord(i, "/io", now)
            records.append(rec)
            log(Event(now, "req", i, "syn", "0"))
            log(Event(now, "req", i, "backlog", str(len(backlog.items) + 1)))
            backlog.put(rec)
            log(Event(now, "backlog", "listen", len(backlog.items), -1))

    t0 = time.process_time()
    for k in range(1, SERVERS + 1):
        env.process(worker(env, f"w{k}"))
    env.process(source(env))
    env.run()
    trace = Trace(scenario={}, source="simulated", events=events, requests=records, cores=8)
    trace.summary = summarise(trace)
    wall = time.process_time() - t0
    done = [r for r in records if r.finished_ms is not None]
    wait = sum(r.queue_ms for r in done) / len(done) / 1000.0
    busy = sum(r.io_ms for r in done) / 1000.0
    return len(done), wall, wait, len(done) / (records[-1].sent_ms / 1000.0), busy / len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the three runs")
    parser.add_argument("--profile", action="store_true", help="also profile our engine")
    parser.add_argument(
        "--no-gc", action="store_true", help="switch the cyclic garbage collector off for both"
    )
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    theory = erlang_c_wait_s(RATE_PER_S, 1.0 / SERVICE_MEAN_S, SERVERS)

    runs: dict[str, list[tuple[int, float, float, float, float]]] = {}
    for _ in range(max(1, args.repeat)):  # interleaved: a burst of load hits all three alike
        for name, fn in (("wsgiscope", run_ours), ("SimPy bare", run_simpy),
                         ("SimPy traced", run_simpy_traced)):
            gc.collect()
            runs.setdefault(name, []).append(fn(args.requests, args.seed))
    median = {name: (*rs[0][:1], statistics.median(r[1] for r in rs), *rs[0][2:])
              for name, rs in runs.items()}
    ours, peer, traced = median["wsgiscope"], median["SimPy bare"], median["SimPy traced"]
    compiled = simulator.core.__file__.endswith((".so", ".pyd"))
    print(f"wsgiscope's simulator: {'compiled' if compiled else 'pure Python'}; CPU s, "
          f"median of {len(runs['wsgiscope'])} rounds")

    print(
        f"M/M/{SERVERS}, rho = {RATE_PER_S * SERVICE_MEAN_S / SERVERS:.3f}, "
        f"Erlang C mean queue wait = {theory:.3f} s"
    )
    print(
        f"{'':12} {'requests':>9} {'CPU s':>8} {'requests/s':>11} {'mean wait s':>12} "
        f"{'vs Erlang C':>11} {'realised rho':>13} {'Erlang C there':>15}"
    )
    rows = (("wsgiscope", ours), ("SimPy bare", peer), ("SimPy traced", traced))
    for name, (n, wall, wait, lam, svc) in rows:
        there = erlang_c_wait_s(lam, 1.0 / svc, SERVERS)
        print(
            f"{name:12} {n:9d} {wall:8.2f} {n / wall:11.0f} {wait:12.3f} "
            f"{100 * (wait / theory - 1):+10.1f}% {lam * svc / SERVERS:13.3f} {there:13.3f} s"
        )
    for peer_name, label in (("SimPy bare", "SimPy bare"),
                             ("SimPy traced", "SimPy traced (same output)")):
        # requests per CPU second, ours over the peer's, within each round
        ratios = sorted((o[0] / o[1]) / (p[0] / p[1])
                        for o, p in zip(runs["wsgiscope"], runs[peer_name], strict=True))
        print(f"speed ratio wsgiscope / {label} = {statistics.median(ratios):.2f} "
              f"(rounds: {ratios[0]:.2f}-{ratios[-1]:.2f})")
    print(
        "(near saturation the mean wait moves with the load each sample really drew: "
        "'Erlang C there' is the formula at the realised arrival rate and service time)"
    )
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(simulator.run, scenario(args.requests, args.seed))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
