"""Benchmark: what a large run costs the server on the page's path, stage by stage.

The pool job's path (:func:`wsgiscope.app.heads.job`): simulate (the head, then the rest, in
one engine), ``prepare`` the whole run for the page (narration, frames, request spans,
finished requests, the inspector's data), then pack it (``Prepared.to_bytes``). Each stage's
CPU time (``time.process_time``), the wall time of the three, the pack's size and the
process's peak RSS are printed, one line per run; ``--repeat`` runs each size that many
times, each in a fresh process (min / median), so one run's memory does not carry into the
next.

Scenarios (``--scenario``):

* ``sync`` -- gunicorn sync -w 8, an exponential 1 s I/O endpoint, Poisson 7/s, default
  stage costs (as ``bench_first_frame.py``): about 15 events a request.
* ``gthread`` -- gunicorn gthread -w 2 x 8 threads, 2 ms of CPU and 20 ms of I/O a request,
  Poisson sized to keep the GIL contended: more events a request (the costliest kind the
  event budget admits per request).

``--profile N`` runs ``prepare`` of one run of N requests under cProfile and prints the top
of it (cumulative and own time).

Run: python tests/bench/bench_prepare.py [--requests 50000,200000] [--repeat 3]
     [--scenario sync] [--max-events 4000000] [--profile 200000]
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from bench_first_frame import scenario as sync_scenario


def scenario(n: int, kind: str = "sync") -> dict[str, Any]:
    if kind == "sync":
        return sync_scenario(n)  # the page benchmark's M/M/8
    rate = 400.0
    return {
        "name": f"gunicorn gthread 2 x 8, 2 ms CPU + 20 ms I/O, Poisson {rate:g}/s: {n:,}",
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 2,
                   "threads": 8, "timeout_s": 0},
        "machine": {"cores": 2},
        "endpoints": {"/mix": [{"cpu_ms": 2}, {"io_ms": 20}]},
        "workload": [{"poisson": {"rate_per_s": rate, "duration_s": n / rate},
                      "path": "/mix"}],
        "client": {"timeout_s": 3600},
    }


def _timed(module: Any, name: str, box: dict[str, float], label: str) -> None:
    """Wrap ``module.name`` so its CPU time adds up in ``box[label]``."""
    inner = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            box[label] = box.get(label, 0.0) + time.process_time() - t0

    setattr(module, name, wrapper)


def one(n: int, kind: str, seed: int, max_events: int, profile: bool) -> dict[str, Any]:
    """One run of ``n`` requests along the pool job's path, in this process."""
    from wsgiscope import simulator
    from wsgiscope.app import heads, runpack, runs
    from wsgiscope.simulator import contexts, frames, narration

    box: dict[str, float] = {}
    _timed(narration, "narrate", box, "narrate")
    _timed(frames, "sample", box, "frames")
    _timed(frames, "spans", box, "spans")
    _timed(runs, "decimate_spans", box, "decimate")
    _timed(runpack, "inspect_data", box, "inspect")
    _timed(contexts, "context_view", box, "contexts")
    sc = runs.load_for_web(scenario(n, kind), n)
    wall = time.perf_counter()
    t0 = time.process_time()
    run = simulator.Simulation(sc, seed, max_events)
    sent = run.arrivals
    end = heads.estimate_end(sc, sent.sent(len(sent) - 1) if len(sent) else 0.0)
    tick = runs.pick_tick(end, runs.Lanes(run.partial()).frame_cap(4000))
    with simulator.no_gc():
        horizon = heads._play_head(run, tick, 4000)
    if horizon is not None:
        heads.check_pace(run, horizon)
    trace = run.finish()
    t1 = time.process_time()
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        with simulator.no_gc():
            prof.enable()
            prepared = runs.prepare(trace, 4000, "k", tick_ms=tick)
            prof.disable()
        stats = pstats.Stats(prof, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(40)
    else:
        with simulator.no_gc():
            prepared = runs.prepare(trace, 4000, "k", tick_ms=tick)
    t2 = time.process_time()
    data = prepared.to_bytes()
    t3 = time.process_time()
    wall = time.perf_counter() - wall
    rest = (t2 - t1) - sum(box.values())
    return {"n": n, "scenario": kind, "events": len(trace.events), "simulate": t1 - t0,
            "prepare": t2 - t1, "pack": t3 - t2, "total": t3 - t0, "wall": wall, **box,
            "encode": rest,
            "pack_mb": len(data) / 1e6,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", default="50000,200000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scenario", default="sync", choices=("sync", "gthread"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-events", type=int, default=8_000_000)
    ap.add_argument("--profile", type=int, default=0)
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one or args.profile:
        n = args.one or args.profile
        print(json.dumps(one(n, args.scenario, args.seed, args.max_events,
                             bool(args.profile))))
        return
    sizes = [int(s) for s in args.requests.split(",")]
    results: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for _ in range(args.repeat):
        for n in sizes:  # a fresh process per run: peak RSS is the run's own
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(n), "--scenario", args.scenario,
                 "--seed", str(args.seed), "--max-events", str(args.max_events)],
                check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            results[n].append(r)
            print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r.items()), flush=True)
    for n, rs in results.items():
        print(f"{n:,} requests ({args.scenario}), min / median of {len(rs)}:")
        for key in ("simulate", "prepare", "pack", "total", "wall", "narrate", "frames", "spans",
                    "decimate", "inspect", "encode", "pack_mb", "rss_mb"):
            vals = [r.get(key, 0.0) for r in rs]
            print(f"  {key:9s} {min(vals):9.2f} / {statistics.median(vals):9.2f}")


if __name__ == "__main__":
    main()
