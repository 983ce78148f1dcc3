"""Benchmark: peak memory and time of ``wsgiscope simulate`` per output format and run size.

Each measurement runs in a fresh Python process (so one run's heap does not inflate the
next) that simulates gunicorn sync -w 8 under Poisson arrivals at 7/s with an exponential
1 s I/O endpoint (an M/M/8 queue) and the default stage costs, writes the output to
/dev/null as ``wsgiscope simulate`` writes it to standard output, and reports its peak
resident memory (``ru_maxrss``) and how the time splits between the engine and the output,
in wall time and in CPU time (the process's own, which other load on a shared machine
disturbs far less).
The ``engine`` row is the simulation alone: what every format pays before writing a byte.

Run: python tests/bench/bench_memory.py [--requests 10000,100000,200000]
     [--formats engine,json,trace,csv] [--repeat 1]
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

RATE_PER_S = 7.0

CHILD = r"""
import json, os, resource, sys, time
from wsgiscope import simulator

n, fmt, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
scenario = {
    "name": "gunicorn sync -w 8, exponential 1 s I/O, Poisson 7/s (M/M/8)",
    "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 8, "timeout_s": 0},
    "machine": {"cores": 8},
    "endpoints": {"/io": [{"io_ms": {"exp": 1000}}]},
    "workload": [{"poisson": {"rate_per_s": rate, "duration_s": n / rate},
                  "path": "/io"}],
    "client": {"timeout_s": 3600},
    "seed": 1,
}
try:  # imported first in every run, the engine row too: the same baseline
    from wsgiscope.app.commands.simulate import output
except ImportError:  # before the output was streamed
    from wsgiscope.app.commands.common import render
    output = lambda trace, fmt: [render(trace, fmt)]
from wsgiscope.simulator import export
t0, c0 = time.perf_counter(), time.process_time()
trace = simulator.run(scenario)
t1, c1 = time.perf_counter(), time.process_time()
written = 0
if fmt != "engine":
    pieces = output(trace, fmt)
    with open(os.devnull, "w", encoding="utf-8") as out:
        for piece in pieces:
            out.write(piece)
            written += len(piece)
t2, c2 = time.perf_counter(), time.process_time()
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"requests": len(trace.requests), "events": len(trace.events),
                  "engine_s": t1 - t0, "output_s": t2 - t1, "rss_mb": rss_mb,
                  "engine_cpu_s": c1 - c0, "output_cpu_s": c2 - c1,
                  "bytes": written}))
"""


def load() -> str:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


def measure(n: int, fmt: str) -> dict[str, float]:
    argv = [sys.executable, "-c", CHILD, str(n), fmt, str(RATE_PER_S)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", default="10000,100000,200000")
    parser.add_argument("--formats", default="engine,json,trace,csv")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (min/median)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.requests.split(",")]
    formats = args.formats.split(",")
    print(f"load average before: {load()}  ({os.cpu_count()} CPUs)")
    print(f"{'format':8} {'requests':>9} {'events':>10} {'peak RSS MB':>12} {'engine s':>9} "
          f"{'output s':>9} {'total s':>8} {'CPU s (engine + output)':>24} {'output MB':>10}")
    base: dict[int, float] = {}
    for n in sizes:
        for fmt in formats:
            runs = [measure(n, fmt) for _ in range(args.repeat)]
            rss = min(r["rss_mb"] for r in runs)
            eng = statistics.median(r["engine_s"] for r in runs)
            outp = statistics.median(r["output_s"] for r in runs)
            eng_cpu = statistics.median(r["engine_cpu_s"] for r in runs)
            out_cpu = statistics.median(r["output_cpu_s"] for r in runs)
            cpu = f"{eng_cpu + out_cpu:.2f} ({eng_cpu:.2f} + {out_cpu:.2f})"
            r = runs[0]
            if fmt == "engine":
                base[n] = rss
            extra = ""
            if fmt != "engine" and n in base:
                extra = f"  (+{rss - base[n]:.0f} MB over the engine)"
            print(f"{fmt:8} {r['requests']:9,} {r['events']:10,} {rss:12.0f} {eng:9.2f} "
                  f"{outp:9.2f} {eng + outp:8.2f} {cpu:>24} {r['bytes'] / 1e6:10.1f}{extra}",
                  flush=True)
    print(f"load average after: {load()}")
    print(f"measured {time.strftime('%Y-%m-%d')}; min RSS and median times over "
          f"{args.repeat} run(s) per cell")


if __name__ == "__main__":
    main()
