"""A digest of every bundled lesson's Trace at two seeds, to show a speed change changed nothing.

Each case is simulated and reduced to a SHA-256 of the whole Trace at full precision (every
event with its exact time, every request record, the summary, the lanes) and of its JSON
and Chrome Trace exports (``export.iter_json``, ``export.iter_chrome_trace``). The same
engine must give the same digests: save them before a change, check them after.

Run: python tests/bench/trace_digest.py [--save FILE | --check FILE] [--quick]
Besides the lessons it runs the three scenarios of ``bench_full.py`` and ``bench_mm8.py``'s
M/M/8 at a few thousand requests (``--quick``: the lessons only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator import export, presets

SEEDS = (1, 2)


def cases(quick: bool = False) -> Iterator[tuple[str, dict[str, Any], int]]:
    """``(name, scenario, seed)`` for every bundled lesson at each of :data:`SEEDS`, then
    (unless ``quick``) the benchmarks' scenarios at 3,000 requests."""
    for lesson in presets.all():
        for seed in SEEDS:
            yield f"{lesson.name}@{seed}", lesson.scenario, seed
    if quick:
        return
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    import bench_full
    import bench_mm8

    for name, make in bench_full.SCENARIOS.items():
        for seed in SEEDS:
            yield f"bench_full {name}@{seed}", make(3000, seed), seed
    for seed in SEEDS:
        yield f"bench_mm8@{seed}", bench_mm8.scenario(3000, seed), seed


def digest(trace: simulator.Trace) -> str:
    """SHA-256 of the Trace at full precision and of its JSON and Chrome Trace exports."""
    h = hashlib.sha256()
    log = trace.events
    h.update(log.t.tobytes())
    h.update(json.dumps([list(map(log.kinds.__getitem__, log.codes)), log.who, log.what,
                         log.ref]).encode())
    h.update(repr([astuple(r) for r in trace.requests]).encode())
    h.update(json.dumps([trace.summary, trace.processes, trace.backlog_limit, trace.cores,
                         trace.seed], sort_keys=True).encode())
    for piece in export.iter_json(trace):
        h.update(piece.encode())
    for piece in export.iter_chrome_trace(trace):  # compiled too (setup.py's HOT)
        h.update(piece.encode())
    return h.hexdigest()


def digests(quick: bool = False) -> dict[str, str]:
    return {name: digest(simulator.run(sc, seed)) for name, sc, seed in cases(quick)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--save", metavar="FILE", help="write the digests to FILE (JSON)")
    group.add_argument("--check", metavar="FILE", help="compare with digests saved in FILE")
    parser.add_argument("--quick", action="store_true", help="the lessons only")
    args = parser.parse_args()
    t0 = time.process_time()
    found = digests(args.quick)
    took = time.process_time() - t0
    if args.save:
        Path(args.save).write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
        print(f"{len(found)} digests saved to {args.save} ({took:.1f} CPU s)")
        return 0
    if args.check:
        saved = json.loads(Path(args.check).read_text(encoding="utf-8"))
        differ = [k for k in saved if k in found and found[k] != saved[k]]
        missing = [k for k in saved if k not in found]
        for k in differ:
            print(f"DIFFERS  {k}")
        for k in missing:
            print(f"MISSING  {k}")
        print(f"{len(found)} cases, {len(differ)} differ, {len(missing)} missing "
              f"({took:.1f} CPU s)")
        return 1 if differ or missing else 0
    for name, value in found.items():
        print(f"{value[:16]}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
