"""Where a request's time goes, stage by stage: measured runs against the model's seeds.

Both sides are the same Trace, so each request's stage events (``syn``/``accept``, then
``recv``, ``parse``, ``context``, ``match``, the hooks, ``view``, ``write``, to ``done``)
give the time from each stage to the next. This script averages them per request, per run
(measured, ``wsgiscope measure`` unwatched, seed k for run k) and per seed (simulated), and
prints the median and range of those averages side by side, so a gap in a latency
percentile can be traced to the stage it comes from (the queue before ``accept`` grows with
every millisecond a stage adds at high utilisation). The row of a stage is the time from
its start to the next stage's. It also prints the host's steal per run: a run the host
stole from (0.05 cores or more) is slower for that alone.

    python tests/bench/bench_stages.py tests/fidelity/22-gthread-poisson-60.json --runs 6 --seeds 40

A case file or a scenario file. Run it on a quiet machine; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from wsgiscope import simulator
from wsgiscope.app.lab.measure import measure


def stage_means(trace: simulator.Trace) -> dict[str, float]:
    """Mean time (ms) from each stage to the next over the requests served ``ok``, and the
    mean ``TOTAL`` from the first event to ``done``."""
    marks: dict[int, list[tuple[float, str]]] = defaultdict(list)
    ok: set[int] = set()
    for e in trace.events:
        if e.kind != "req":
            continue
        if e.what in ("syn", "accept"):
            marks[e.who].append((e.t, str(e.what)))
        elif e.what == "stage":
            marks[e.who].append((e.t, str(e.ref)))
        elif e.what == "done":
            marks[e.who].append((e.t, "done"))
            if e.ref == "ok":
                ok.add(e.who)
    spans: dict[str, list[float]] = defaultdict(list)
    for rid in ok:
        seq = sorted(marks[rid], key=lambda m: m[0])
        for (ta, a), (tb, _b) in zip(seq, seq[1:], strict=False):
            spans[a].append(tb - ta)
        spans["TOTAL"].append(seq[-1][0] - seq[0][0])
    return {k: statistics.fmean(v) for k, v in spans.items()}


def spread(values: list[float]) -> str:
    v = sorted(values)
    return f"{statistics.median(v):8.3f} ({v[0]:.3f}-{v[-1]:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", type=Path)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=40)
    args = ap.parse_args()
    data: dict[str, Any] = json.loads(args.scenario.read_text())
    sc = data.get("scenario", data)
    sim = [stage_means(simulator.run(sc, seed=s)) for s in range(1, args.seeds + 1)]
    real = []
    for k in range(1, args.runs + 1):
        trace = measure(sc, seed=k, watch=False)
        real.append(stage_means(trace))
        lab = trace.summary["lab"]
        print(f"run {k}: steal {lab['steal_cores']:.3f} cores, others "
              f"{lab['other_cpu_cores']:.2f}", file=sys.stderr, flush=True)
    keys = list(sim[0])
    print(f"{'stage':16s} {'model: median (range) over seeds':>34s} "
          f"{'measured: median (range) over runs':>36s}")
    for key in keys:
        print(f"{key:16s} {spread([d.get(key, 0.0) for d in sim]):>34s} "
              f"{spread([d.get(key, 0.0) for d in real]):>36s}")


if __name__ == "__main__":
    main()
