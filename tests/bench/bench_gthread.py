"""Benchmark: 100,000 requests through gunicorn gthread -w 4 --threads 8 under the GIL.

A mix of endpoints -- CPU-bound, I/O-bound and mixed -- arrives as a Poisson stream on a
4-core machine, with every per-stage cost at its default, so threads contend for each
worker's GIL and the worker's main thread accepts in between. Prints the wall time, the
events the engine ran and logged, and their rates.

Run: python tests/bench/bench_gthread.py [--requests 100000] [--seed 1] [--profile] [--no-gc]
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import time

from wsgiscope import simulator

RATE_PER_S = 400.0


def scenario(n: int, seed: int) -> dict:
    return {
        "name": "gunicorn gthread -w 4 --threads 8, mixed CPU/I/O, Poisson",
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 4, "threads": 8},
        "machine": {"cores": 4},
        "endpoints": {
            "/cpu": [{"cpu_ms": {"exp": 3}}],
            "/io": [{"io_ms": {"exp": 40}}],
            "/mixed": [{"cpu_ms": 1}, {"io_ms": {"exp": 20}}, {"cpu_ms": {"uniform": [0.5, 2]}}],
        },
        "workload": [
            {
                "poisson": {"rate_per_s": RATE_PER_S, "duration_s": n / RATE_PER_S},
                "paths": {"/cpu": 1, "/io": 2, "/mixed": 2},
            }
        ],
        "seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-gc", action="store_true", help="cyclic garbage collector off")
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    data = scenario(args.requests, args.seed)

    t0 = time.perf_counter()
    trace = simulator.run(data)
    wall = time.perf_counter() - t0
    s = trace.summary
    heap_events = s.get("events_simulated", 0)
    logged = len(trace.events)
    print(f"{data['name']}")
    print(f"requests        {len(trace.requests):,} ({s['completed']:,} ok)")
    print(f"simulated time  {s['makespan_ms'] / 1000:.1f} s")
    print(f"wall time       {wall:.2f} s")
    print(f"heap events     {heap_events:,}  ({heap_events / wall:,.0f}/s)")
    print(f"logged events   {logged:,}  ({logged / wall:,.0f}/s)")
    print(f"requests/s      {len(trace.requests) / wall:,.0f}")
    print(
        f"latency         mean {s['latency_ms']['mean']:.1f} ms, p99 {s['latency_ms']['p99']:.1f}"
        f" ms; GIL wait {s['gil_wait_pct']}% of time on a thread"
    )
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(simulator.run, data)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
