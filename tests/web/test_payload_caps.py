"""What a run sends is bounded whatever the Trace: thread lanes capped, frames x lanes
bounded (the tick grows), request spans decimated for the view."""

from __future__ import annotations

import json
from typing import Any

from wsgiscope.app import runs
from wsgiscope.app.decimate import MAX_FRAME_VALUES, MAX_LANES, cap_lanes, decimate_spans
from wsgiscope.app.stream import Session

MB = 1_000_000


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, text: str) -> None:
        self.sent.append(text)


def test_a_44_kb_timeline_body_is_not_a_huge_response(client: Any) -> None:
    threads = [f"t{i}" for i in range(6000)]
    trace = {"scenario": {}, "source": "measured", "cores": 2, "backlog_limit": 1,
             "processes": [{"key": "p", "threads": threads}], "requests": [],
             "events": [[0, "thread", "t1", "cpu", -1], [100_000, "thread", "t1", "idle", -1]]}
    body = json.dumps({"trace": trace})
    assert len(body) < 60_000
    resp = client.post("/api/timeline", data=body, content_type="application/json")
    assert resp.status_code == 200
    assert len(resp.data) < 3 * MB
    data = resp.get_json()
    meta, frames = data["meta"], data["frames"]
    assert len(meta["threads"]) == MAX_LANES
    assert meta["hidden_threads"] == 6000 - MAX_LANES and meta["hidden_processes"] == 0
    assert len(frames["th"]) == 2 * MAX_LANES * meta["n_frames"]
    assert meta["n_frames"] * (2 * MAX_LANES + 1) <= MAX_FRAME_VALUES


def test_a_run_with_sixteen_thousand_threads_sends_a_few_megabytes() -> None:
    ws = FakeSocket()
    s = Session(ws, 4000)
    scenario = {"server": {"kind": "gunicorn", "workers": 16, "threads": 1024},
                "endpoints": {"/s": [{"io_ms": 10}]},
                "workload": [{"count": 500, "path": "/s", "spacing_ms": 1}]}
    s.handle(json.dumps({"op": "start", "scenario": scenario, "speed": "max", "play": True}))
    first = sum(len(m) for m in ws.sent)
    while s.busy:
        s.pump()
    total = sum(len(m) for m in ws.sent)
    meta = json.loads(ws.sent[0])
    assert meta["type"] == "meta", ws.sent[0][:300]
    assert len(meta["threads"]) <= MAX_LANES and meta["hidden_threads"] > 15_000
    assert first < 3 * MB and total < 5 * MB


def test_a_run_of_256_workers_x_1024_threads_is_refused_at_once() -> None:
    ws = FakeSocket()
    s = Session(ws, 4000)
    scenario = {"server": {"kind": "gunicorn", "workers": 256, "threads": 1024},
                "endpoints": {"/s": [{"io_ms": 10}]}, "workload": [{"count": 10, "path": "/s"}]}
    s.handle(json.dumps({"op": "start", "scenario": scenario}))
    (msg,) = [json.loads(m) for m in ws.sent]
    assert msg["type"] == "error" and msg["field"] == "server.threads"


def test_cap_lanes_shares_the_lanes_between_processes() -> None:
    procs, keys = runs._thread_keys(_trace_with(3, 400))
    kept, kept_keys, hidden = cap_lanes(procs, keys, 512)
    assert len(kept_keys) == 512 and hidden == (1200 - 512, 0)
    assert [len(p["threads"]) for p in kept] == [172, 170, 170]
    assert [p["first"] for p in kept] == [0, 172, 342]
    assert kept_keys == [t for p in kept for t in p["threads"]]
    many, many_keys, hidden = cap_lanes(*runs._thread_keys(_trace_with(600, 1)), 512)
    assert len(many) == 512 and len(many_keys) == 512 and hidden == (88, 88)
    small = runs._thread_keys(_trace_with(2, 3))
    assert cap_lanes(*small, 512) == (*small, (0, 0))


def _trace_with(n_procs: int, n_threads: int) -> Any:
    from wsgiscope.simulator import Trace

    return Trace(scenario={}, source="measured", processes=[
        {"key": f"w{p}", "threads": [f"w{p}/t{i}" for i in range(n_threads)]}
        for p in range(n_procs)])


def test_decimated_spans_keep_each_requests_extent_and_main_state() -> None:
    spans = []
    for r in range(50):
        t = float(r)
        spans.append((r, t, t + 1.0, "backlog"))
        t += 1.0
        for _ in range(2000):  # GIL ping-pong: 0.03 ms on the CPU, 0.01 ms waiting
            spans.append((r, t, t + 0.03, "cpu"))
            spans.append((r, t + 0.03, t + 0.04, "gil"))
            t += 0.04
        spans.append((r, t, t + 2.0, "io"))
    out = decimate_spans(spans, 0.1, 5000)
    assert len(out) <= 5000
    assert out == sorted(out, key=lambda s: (round(s[1], 6), s[0]))
    for r in range(50):
        mine = [s for s in out if s[0] == r]
        assert mine[0][1] == r and abs(mine[-1][2] - (r + 1.0 + 80.0 + 2.0)) < 1e-6
        assert mine[0][3] == "backlog" and mine[-1][3] == "io"
        assert {s[3] for s in mine} <= {"backlog", "cpu", "gil", "io"}
        assert sum(s[2] - s[1] for s in mine if s[3] == "cpu") > 60.0
        for a, b in zip(mine, mine[1:], strict=False):
            assert abs(a[2] - b[1]) < 1e-9  # no gap opened, no overlap
