"""Who wins accept(): a worker that is running already, before its sleeping siblings wake."""

from __future__ import annotations

import collections

import pytest
from wsgiscope import simulator
from wsgiscope.simulator.scenario import COSTS

SEEDS = range(40)


def run(server: dict, endpoint: list, seed: int = 1, costs: dict | None = None,
        **item: float) -> simulator.Trace:
    return simulator.run({
        "server": {"kind": "gunicorn", **server},
        "machine": {"cores": 2},
        "costs": costs or {},
        "endpoints": {"/a": endpoint},
        "workload": [{"count": 10, "path": "/a", **item}],
        "seed": seed,
    })


def larger_share(trace: simulator.Trace) -> int:
    """How many of the requests the busier worker accepted."""
    return max(collections.Counter(r.worker for r in trace.requests).values())


def test_a_sleeping_worker_runs_only_after_its_wake_up() -> None:
    trace = simulator.run({
        "server": {"kind": "gunicorn", "workers": 1},
        "costs": {"wakeup_ms": 1.0},
        "endpoints": {"/a": [{"io_ms": 10}]},
        "workload": [{"count": 2, "path": "/a"}],
    })
    first, second = trace.requests
    queued = [e.t for e in trace.events if e.kind == "req" and e.what == "backlog"]
    accept_ms = COSTS["accept_ms"][0]
    # asleep in select(): half to several times wakeup_ms before it accepts
    assert 0.5 <= first.accepted_ms - queued[0] - accept_ms <= 5
    # the same worker, back from its first request with a connection queued: at once
    assert second.accepted_ms == pytest.approx(first.finished_ms + accept_ms, abs=1e-6)


def test_gthread_bursts_split_unevenly() -> None:
    """gthread -w 2 --threads 4, ten 1 s requests at once: an even split serves them in two
    waves (4 + 1 per worker). The main thread that has just accepted loops back and accepts
    again before the other worker's main thread wakes, so splits of 7-3 or worse are
    common. Measured (2026-11-21, 2 cores, gunicorn 27.0.1, `wsgiscope compare` of this
    scenario, 10 runs): the busier worker took 5, 6, 6, 6, 6, 6, 7, 7, 8, 8 (a fair coin
    gives 7 or more a third of the time). A worker that takes 9 leaves one request for a
    third wave."""
    shares = []
    waves = []
    for seed in SEEDS:
        trace = run({"worker_class": "gthread", "workers": 2, "threads": 4}, [{"io_ms": 1000}],
                    seed)
        shares.append(larger_share(trace))
        waves.append(round(max(r.finished_ms for r in trace.requests) / 1000))
    assert 0.25 * len(SEEDS) <= sum(s >= 7 for s in shares) <= 0.6 * len(SEEDS), shares
    assert min(shares) == 5 and max(shares) >= 8, shares
    assert all((w == 3) == (s >= 9) for s, w in zip(shares, waves, strict=True))


def test_sync_short_requests_split_unevenly() -> None:
    """sync -w 2, ten short requests 2 ms apart (each takes a worker about 1.3 ms): each
    worker is asleep or just done when the next connection comes, so which one takes it
    is a race every time. Measured (2026-11-21, `wsgiscope compare` of this scenario,
    10 runs): the busier worker took 5, 5, 5, 6, 6, 6, 7, 7, 7, 7."""
    shares = [larger_share(run({"workers": 2}, [{"cpu_ms": 0.05}], seed, spacing_ms=2))
              for seed in SEEDS]
    # not a strict alternation: every measured split happens, and 7-3 or worse often
    # enough that 4 of 10 runs is a likely draw (at least 15 % of seeds: below that, 4 or
    # more in 10 comes less than one time in twenty)
    assert {5, 6, 7} <= set(shares), shares
    assert sum(s >= 7 for s in shares) >= 0.15 * len(SEEDS), shares


def test_sync_staircase_still_holds() -> None:
    """Two sync workers busy for 1 s each take the queued connections in turn."""
    for seed in range(5):
        trace = run({"workers": 2}, [{"io_ms": 1000}], seed)
        done = sorted(round(r.finished_ms / 1000) for r in trace.requests)
        assert done == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
