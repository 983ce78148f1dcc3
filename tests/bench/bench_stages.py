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

``--pin`` pairs run k with seed k: each request is sent with the durations the model drew
for it (its ``io_ms`` read from the seed's Trace, sent in the demo app's ``X-Lab-Seg``
header), so the two serve the very same work and their difference per stage is the model's
error, not the draws'. It needs endpoints whose ``cpu_ms`` are fixed numbers.

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

import wsgiscope.app.lab.measure as lab
from wsgiscope import simulator
from wsgiscope.simulator.spans import thread_spans_with_stage


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


def drawn_io(trace: simulator.Trace) -> dict[int, list[float]]:
    """Each request's I/O durations inside its view, in order, as the model drew them."""
    out: dict[int, list[float]] = defaultdict(list)
    for _key, a, b, state, rid, stage in sorted(thread_spans_with_stage(trace),
                                                 key=lambda span: span[1]):
        if state == "io" and stage == "view" and rid >= 0:
            out[rid].append(b - a)
    return out


def pinned_plan(sc: dict[str, Any], seed: int, plan_for: Any) -> dict[str, Any]:
    """The lab's plan (``plan_for``: ``lab_plan``) for ``seed`` with every request's segments
    as the model drew them."""
    plan: dict[str, Any] = plan_for(sc, seed)
    draws = drawn_io(simulator.run(sc, seed=seed))
    for req in plan["requests"]:
        segs = []
        ios = iter(draws.get(req["id"], []))
        for seg in plan["scenario"]["endpoints"][req["path"]]:
            if "io_ms" in seg:
                segs.append({"io_ms": next(ios)})
            elif isinstance(seg.get("cpu_ms"), (int, float)) and len(seg) == 1:
                segs.append(seg)
            else:
                raise SystemExit(f"--pin: {req['path']} has a segment it cannot pin: {seg}")
        req["segments"] = segs
    return plan


def spread(values: list[float]) -> str:
    v = sorted(values)
    return f"{statistics.median(v):8.3f} ({v[0]:.3f}-{v[-1]:.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", type=Path)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--pin", action="store_true", help="run k serves seed k's own draws")
    args = ap.parse_args()
    data: dict[str, Any] = json.loads(args.scenario.read_text())
    sc = data.get("scenario", data)
    seeds = args.runs if args.pin else args.seeds
    sim = [stage_means(simulator.run(sc, seed=s)) for s in range(1, seeds + 1)]
    real = []
    plan_for = lab.lab_plan
    for k in range(1, args.runs + 1):
        if args.pin:
            lab.lab_plan = lambda scenario, seed=None, _k=k: pinned_plan(sc, _k, plan_for)  # type: ignore[assignment]
        try:
            trace = lab.measure(sc, seed=k, watch=False)
        finally:
            lab.lab_plan = plan_for
        real.append(stage_means(trace))
        load = trace.summary["lab"]
        print(f"run {k}: steal {load['steal_cores']:.3f} cores, others "
              f"{load['other_cpu_cores']:.2f}", file=sys.stderr, flush=True)
    keys = list(sim[0])
    print(f"{'stage':16s} {'model: median (range) over seeds':>34s} "
          f"{'measured: median (range) over runs':>36s}")
    for key in keys:
        print(f"{key:16s} {spread([d.get(key, 0.0) for d in sim]):>34s} "
              f"{spread([d.get(key, 0.0) for d in real]):>36s}")


if __name__ == "__main__":
    main()
