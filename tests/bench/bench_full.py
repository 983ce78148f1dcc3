"""Benchmark: the engine on the full model, with SimPy's bare M/M/8 beside it.

Three scenarios, every per-stage cost at its default (as users run them):

* ``sync M/M/8`` -- gunicorn sync -w 8 on 8 cores, an exponential 1 s I/O endpoint,
  Poisson arrivals at 7/s (the M/M/8 queue of ``bench_mm8.py`` with the stages left in);
* ``gthread 4x8 mixed`` -- gunicorn gthread -w 4 --threads 8 on 4 cores, CPU-bound, I/O-bound
  and mixed endpoints at 400/s (``bench_gthread.py``'s scenario), threads contending for
  each worker's GIL;
* ``threaded CPU/GIL`` -- Flask's threaded dev server on 2 cores, a thread per connection,
  every request ~4 ms of pure-Python CPU at 150/s: one GIL busy about two thirds of the
  time, threads handing it over every switch interval.

For each: requests simulated per second, heap events per second (what the engine's loop
ran) and logged events per second (the Trace's event log). SimPy runs the bare M/M/8 (a
Resource of 8, no output) in the same process, counting its events, so the events/s ratio
compares the two loops on this machine at this moment. Rates are per second of the
process's CPU time, which other load on a shared machine disturbs far less than wall time;
wall times are printed beside them (median of ``--repeat`` runs, and the min) with the load
average.

Run: python tests/bench/bench_full.py [--requests 50000] [--repeat 3] [--profile]
     python tests/bench/bench_full.py --stale  (stale core completions, pure Python)
Not part of the test suite; needs simpy (pip install simpy).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from wsgiscope import simulator


def sync_mm8(n: int, seed: int) -> dict[str, Any]:
    rate = 7.0
    return {
        "name": "sync M/M/8",
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 8, "timeout_s": 0},
        "machine": {"cores": 8},
        "endpoints": {"/io": [{"io_ms": {"exp": 1000}}]},
        "workload": [{"poisson": {"rate_per_s": rate, "duration_s": n / rate}, "path": "/io"}],
        "client": {"timeout_s": 3600},
        "seed": seed,
    }


def gthread_mixed(n: int, seed: int) -> dict[str, Any]:
    rate = 400.0
    return {
        "name": "gthread 4x8 mixed",
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 4, "threads": 8},
        "machine": {"cores": 4},
        "endpoints": {
            "/cpu": [{"cpu_ms": {"exp": 3}}],
            "/io": [{"io_ms": {"exp": 40}}],
            "/mixed": [{"cpu_ms": 1}, {"io_ms": {"exp": 20}}, {"cpu_ms": {"uniform": [0.5, 2]}}],
        },
        "workload": [{"poisson": {"rate_per_s": rate, "duration_s": n / rate},
                      "paths": {"/cpu": 1, "/io": 2, "/mixed": 2}}],
        "seed": seed,
    }


def threaded_gil(n: int, seed: int) -> dict[str, Any]:
    rate = 150.0
    return {
        "name": "threaded CPU/GIL",
        "server": {"kind": "werkzeug", "threaded": True},
        "machine": {"cores": 2},
        "endpoints": {"/cpu": [{"cpu_ms": {"exp": 4}}]},
        "workload": [{"poisson": {"rate_per_s": rate, "duration_s": n / rate}, "path": "/cpu"}],
        "client": {"timeout_s": 3600},
        "seed": seed,
    }


SCENARIOS: dict[str, Callable[[int, int], dict[str, Any]]] = {
    "sync M/M/8": sync_mm8,
    "gthread 4x8 mixed": gthread_mixed,
    "threaded CPU/GIL": threaded_gil,
}


Row = tuple[float, float, int, int, int]  # wall s, CPU s, requests, heap events, logged


def run_ours(data: dict[str, Any]) -> Row:
    t0, c0 = time.perf_counter(), time.process_time()
    trace = simulator.run(data)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return (wall, cpu, len(trace.requests), trace.summary.get("events_simulated", 0),
            len(trace.events))


def run_simpy(n: int, seed: int) -> Row:
    """SimPy's bare M/M/8 (a Resource, no output), counting the events it steps through."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=8)

    def customer(env: simpy.Environment):  # type: ignore[no-untyped-def]
        with servers.request() as req:
            yield req
            yield env.timeout(rng.expovariate(1.0))

    def source(env: simpy.Environment):  # type: ignore[no-untyped-def]
        for _ in range(n):
            yield env.timeout(rng.expovariate(7.0))
            env.process(customer(env))

    t0, c0 = time.perf_counter(), time.process_time()
    env.process(source(env))
    events = 0
    step = env.step
    try:
        while True:
            step()
            events += 1
    except simpy.core.EmptySchedule:
        pass
    return time.perf_counter() - t0, time.process_time() - c0, n, events, 0


def stale(n: int, seed: int, names: list[str]) -> None:
    """How many core completions the engine scheduled and then skipped (the core's burst
    changed before it came: a thread left mid-burst), against every heap event."""
    from wsgiscope.simulator import cores
    from wsgiscope.simulator.cores import Cores

    if not str(cores.__file__).endswith(".py"):
        sys.exit("--stale needs the pure-Python engine (an editable install): a compiled "
                 "build's classes cannot be patched")
    fire = Cores._fire
    skipped = [0]

    def counting(self: Cores, arg: Any) -> None:
        if arg[1] != arg[0].token:
            skipped[0] += 1
        fire(self, arg)

    Cores._fire = counting  # type: ignore[method-assign]
    try:
        for name in names:
            skipped[0] = 0
            heap = run_ours(SCENARIOS[name](n, seed))[3]
            print(f"{name:20} stale core completions {skipped[0]:,} of {heap:,} heap events "
                  f"({100 * skipped[0] / heap:.2f} %)")
    finally:
        Cores._fire = fire  # type: ignore[method-assign]


def load() -> str:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="one scenario's name")
    parser.add_argument("--profile", action="store_true", help="profile each scenario once")
    parser.add_argument("--stale", action="store_true",
                        help="count each scenario's stale core completions once (pure Python)")
    args = parser.parse_args()
    if args.stale:
        stale(args.requests, args.seed, [args.only] if args.only else list(SCENARIOS))
        return
    print(f"load average before: {load()}")
    rows: dict[str, list[Row]] = {}
    names = [args.only] if args.only else list(SCENARIOS)
    for _ in range(args.repeat):  # interleaved, so a burst of load hits every row alike
        for name in names:
            rows.setdefault(name, []).append(run_ours(SCENARIOS[name](args.requests, args.seed)))
        rows.setdefault("SimPy bare M/M/8", []).append(run_simpy(args.requests, args.seed))
    print(f"{'':20} {'requests':>9} {'wall s med':>11} {'min':>6} {'CPU s med':>10} "
          f"{'requests/s':>11} {'heap ev/s':>10} {'logged ev/s':>12} {'heap ev/req':>12}")
    print(f"{'':20} {'':9} {'':11} {'':6} {'':10} {'(per CPU second)':>36}")
    simpy_eps = 0.0
    for name, runs in rows.items():
        walls = [r[0] for r in runs]
        wall = statistics.median(walls)
        cpu = statistics.median(r[1] for r in runs)
        _, _, n, heap, logged = runs[0]
        if name.startswith("SimPy"):
            simpy_eps = heap / cpu
        print(f"{name:20} {n:9,} {wall:11.2f} {min(walls):6.2f} {cpu:10.2f} {n / cpu:11,.0f} "
              f"{heap / cpu:10,.0f} {logged / cpu:12,.0f} {heap / n:12.1f}")
    if simpy_eps:
        print("heap events per CPU second against SimPy bare M/M/8's:")
        for name, runs in rows.items():
            if not name.startswith("SimPy"):
                cpu = statistics.median(r[1] for r in runs)
                print(f"  {name:20} {runs[0][3] / cpu / simpy_eps:.2f}x")
    print(f"load average after: {load()}  (median of {args.repeat} runs; "
          f"{time.strftime('%Y-%m-%d')})")
    if args.profile:
        import cProfile
        import pstats

        for name in names:
            print(f"\n== {name}")
            profiler = cProfile.Profile()
            profiler.runcall(simulator.run, SCENARIOS[name](args.requests, args.seed))
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
