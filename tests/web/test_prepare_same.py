"""Speed work on preparing a run for the page must not change what the page receives: the
faster paths are checked here against the plain ones they replaced."""

from __future__ import annotations

import random
from typing import Any

import pytest
from wsgiscope import simulator
from wsgiscope.app import runpack
from wsgiscope.app.decimate import decimate_spans
from wsgiscope.app.runs import Prepared, prepare
from wsgiscope.simulator import presets


def plain_decimate(spans: list[Any], tick_ms: float, max_spans: int) -> list[Any]:
    """The span decimation as it was first written: every request merged again at each
    width, from spans sorted by start."""
    spans = sorted(spans, key=lambda s: (round(s[1], 6), s[0]))
    by_req: dict[int, list[Any]] = {}
    for s in spans:
        by_req.setdefault(s[0], []).append(s)
    width = max(tick_ms / 64, 1e-6)

    def close(out: list[Any], r: int, a0: float, b0: float, took: dict[str, float]) -> None:
        """End a slice: its longest state, joined to the one before if it goes on."""
        state = max(took, key=took.__getitem__)
        if out and out[-1][0] == r and out[-1][3] == state and abs(out[-1][2] - a0) < 1e-9:
            out[-1] = (r, out[-1][1], b0, state)
        else:
            out.append((r, a0, b0, state))

    while True:
        out: list[Any] = []
        for r, items in by_req.items():
            a0 = b0 = 0.0
            took: dict[str, float] = {}
            for _, a, b, st in sorted(items, key=lambda s: s[1]):
                if took and (b0 - a0 >= width or a - b0 > 1e-9):
                    close(out, r, a0, b0, took)
                    took = {}
                if not took:
                    a0 = a
                b0 = max(b0, b) if took else b
                took[st] = took.get(st, 0.0) + (b - a)
            if took:
                close(out, r, a0, b0, took)
        if len(out) <= max_spans or width > 1e12:
            break
        width *= 2
    out.sort(key=lambda s: (round(s[1], 6), s[0]))
    return out


def test_decimated_spans_are_the_plain_decimations_in_any_request_order() -> None:
    rng = random.Random(5)
    for _ in range(200):
        spans = []
        for r in range(rng.randint(1, 60)):
            t = rng.uniform(0, 100)
            for _ in range(rng.randint(1, 9)):
                d = rng.choice([rng.expovariate(1), rng.uniform(0, 1e-3), 5.0, 1e-7])
                if rng.random() < 0.1:  # gaps, some below the 1e-9 ms a gap needs
                    t += rng.choice([1e-10, 0.5, 2e-9])
                spans.append((r, t, t + d, rng.choice("abcd")))
                t += d
        tick, cap = rng.choice([0.01, 0.1, 1.0, 10.0, 64.0]), rng.randint(1, len(spans))
        want = plain_decimate(spans, tick, cap)
        by_request = sorted(spans, key=lambda s: (s[0], s[1]))
        assert decimate_spans(list(spans), tick, cap) == want
        assert decimate_spans(by_request, tick, cap) == want


def sync_run(n: int) -> simulator.Trace:
    """gunicorn sync -w 8 with 1 s of I/O under Poisson arrivals, as the page's benchmarks."""
    return simulator.run({
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 8, "timeout_s": 0},
        "machine": {"cores": 8}, "endpoints": {"/io": [{"io_ms": {"exp": 1000}}]},
        "workload": [{"poisson": {"rate_per_s": 7.0, "duration_s": n / 7.0}, "path": "/io"}],
        "client": {"timeout_s": 3600}}, seed=3)


def plain_request_events(trace: simulator.Trace) -> list[list[Any]]:
    """Every request's events, as ``Trace.request_events`` picks them."""
    n = len(trace.requests)
    out: list[list[Any]] = [[] for _ in range(n)]
    for e in trace.events:
        rid = e.who if e.kind == "req" else e.ref if e.kind == "thread" else None
        if type(rid) is int and 0 <= rid < n:
            out[rid].append(e)
    return out


@pytest.mark.parametrize("how", ["arrays", "typed", "small blocks"])
def test_every_requests_inspector_data_is_its_record_and_events(
        how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = sync_run(3000)
    if how == "small blocks":  # a request's events over many blocks, some of them skipped
        monkeypatch.setattr(runpack, "INSPECT_BLOCK", 16)
    run = prepare(trace, 4000, "k")
    if how == "typed":  # the way for events holding values other than strings and ints
        run.inspect = runpack._inspect_typed(trace)
    run = Prepared.from_bytes(run.to_bytes())
    want = plain_request_events(trace)
    assert want[7] == trace.request_events(7)
    for rid, record in enumerate(trace.requests):
        view = run.inspect_view(rid)
        got = view.request_events(rid)
        assert view.requests[rid] == record
        assert got == want[rid]
        assert [tuple(map(type, e)) for e in got] == [tuple(map(type, e)) for e in want[rid]]


def test_inspector_data_tells_one_from_true_and_a_float() -> None:
    trace = sync_run(600)
    log = trace.events
    t = log.t[-1]
    trace.events.extend([(t, "req", 5, "outcome", 1), (t, "req", 5, "outcome", True),
                         (t, "req", 5, "outcome", 1.0), (t, "thread", "w", "io", 5)])
    got = runpack.inspect_view(prepare(trace, 400, "k"), 5).request_events(5)
    assert [type(e.ref) for e in got[-4:-1]] == [int, bool, float]
    assert got == plain_request_events(trace)[5]


def test_frames_from_the_columns_are_the_one_by_one_frames(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from wsgiscope.simulator import frames

    runs = [sync_run(800), simulator.run(presets.get("gil-cpu-threads").scenario, seed=2),
            simulator.run(presets.get("gthread-poisson").scenario, seed=2)]
    # a log out of time order: a late event early holds back those after it (the one-by-one
    # pass); an early event late, or two of a frame swapped, change nothing
    shuffled = sync_run(300)
    events = list(shuffled.events)
    events.insert(40, events.pop(len(events) // 2))
    events.append(events.pop(100))
    events[200], events[201] = events[201], events[200]
    shuffled.events = events
    runs.append(shuffled)
    assert frames._sample_columns(shuffled, shuffled.events, 7.0, 0.0, 900, 8) is None
    got = []
    for trace in runs:
        for tick, start in ((7.0, 0.0), (0.5, 3.0), (trace.end_ms / 3, 1.0)):
            got.append(frames.sample(trace, tick, start_ms=start))
    monkeypatch.setattr(frames, "_sample_columns", lambda *_: None)
    want = [frames.sample(trace, tick, start_ms=start) for trace in runs
            for tick, start in ((7.0, 0.0), (0.5, 3.0), (trace.end_ms / 3, 1.0))]
    assert got == want


def test_request_spans_are_the_sweeps_for_every_lesson() -> None:
    from wsgiscope.simulator import spans

    for trace in [sync_run(500), *(simulator.run(p.scenario, seed=4) for p in presets.all())]:
        want = spans._sweep(trace, with_stage=False, with_threads=False)[0]
        assert spans.spans(trace, threads=False) == {"requests": want, "threads": []}
