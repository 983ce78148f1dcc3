"""A run as the page receives it: validated within the page's limits, encoded for the wire.

Shared by the WebSocket stream (:mod:`.stream`, which plays a run) and the pages
(:mod:`.web.pages`, which validate the form with the same limits and encode a measured
Trace for ``/api/timeline``). It reads only the Trace, so simulated and measured runs
encode the same way.

Frames go out columnar: :meth:`Prepared.chunk` gives a run of consecutive frames plus every
request span, finished request and narration line that starts at or before the chunk's
last frame.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.trace import Trace

#: Request states, as numbered on the wire (``simulator.frames.REQUEST_STATES`` order).
REQUEST_STATES = ("connecting", "backlog", "pool", "gil", "cpu", "io", "write")
#: Thread states on the wire; ``absent`` is a thread that has not started yet.
THREAD_STATES = ("idle", "gil", "cpu", "io", "dead", "absent")
#: Request outcomes on the wire.
STATUSES = ("ok", "error", "reset", "timeout")

_NICE = (1.0, 2.0, 5.0)


def pick_tick(end_ms: float, max_frames: int) -> float:
    """The smallest 1-2-5 tick (at least 0.1 ms) that keeps a run under ``max_frames``."""
    want = max(end_ms, 1.0) / max_frames
    exp = math.floor(math.log10(want)) if want > 0 else -1
    for e in (exp, exp + 1):
        for m in _NICE:
            tick = m * 10.0**e
            if tick >= want - 1e-12:
                return round(max(tick, 0.1), 6)
    return round(10.0 ** (exp + 1), 6)  # pragma: no cover


def run_key(scenario: dict[str, Any], seed: int | None) -> str:
    """A short fingerprint of a run, so a reconnecting browser can resume the same one."""
    text = json.dumps([scenario, seed], sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _thread_keys(trace: Trace) -> tuple[list[dict[str, Any]], list[str]]:
    procs: list[dict[str, Any]] = []
    keys: list[str] = []
    for p in trace.processes:
        threads = [t if isinstance(t, str) else t["key"] for t in p.get("threads", [])]
        procs.append(
            {"key": p["key"], "label": p.get("label", p["key"]), "first": len(keys),
             "threads": threads}
        )
        keys.extend(threads)
    return procs, keys


@dataclass
class Prepared:
    """Everything one run sends, encoded once, in time order."""

    trace: Trace
    key: str
    tick_ms: float
    meta: dict[str, Any]
    times: list[float]
    # per frame: [backlog, busy, in_flight, completed, failed, connecting, threads, gil]
    frames: list[list[Any]]
    req_spans: list[tuple[float, list[Any]]]  # (start, [req, start, end, state])
    done: list[tuple[float, list[Any]]]  # (time known, encoded record)
    narration: list[tuple[float, str]]
    span_starts: list[float] = field(default_factory=list)
    done_times: list[float] = field(default_factory=list)
    line_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.span_starts = [s for s, _ in self.req_spans]
        self.done_times = [s for s, _ in self.done]
        self.line_times = [t for t, _ in self.narration]

    @property
    def n(self) -> int:
        return len(self.times)

    def cursor(self, have: int) -> list[int]:
        """Positions in the span/record/narration lists once ``have`` frames are out."""
        if have <= 0:
            return [0, 0, 0]
        if have >= self.n:
            return [len(self.req_spans), len(self.done), len(self.narration)]
        t = self.times[have - 1] + 1e-9
        return [
            bisect.bisect_right(self.span_starts, t),
            bisect.bisect_right(self.done_times, t),
            bisect.bisect_right(self.line_times, t),
        ]

    def chunk(self, a: int, b: int) -> dict[str, Any]:
        """The ``frames`` message for frames ``a`` to ``b`` (exclusive)."""
        ca, cb = self.cursor(a), self.cursor(b)
        rows = self.frames[a:b]
        th: list[int] = []
        gil: list[int] = []
        for row in rows:
            th.extend(row[6])
            gil.extend(row[7])
        return {
            "type": "frames",
            "i": a,
            "t": self.times[a:b],
            "b": [r[0] for r in rows],
            "c": [r[1] for r in rows],
            "q": [r[2] for r in rows],
            "d": [r[3] for r in rows],
            "x": [r[4] for r in rows],
            "k": [r[5] for r in rows],
            "th": th,
            "g": gil,
            "rs": [v for _, s in self.req_spans[ca[0]:cb[0]] for v in s],
            "done": [r for _, r in self.done[ca[1]:cb[1]]],
            "n": [[round(t, 3), text] for t, text in self.narration[ca[2]:cb[2]]],
            "last": b >= self.n,
        }

    def whole(self) -> dict[str, Any]:
        """Meta and every frame in one object (for a measured trace drawn all at once)."""
        return {"meta": self.meta, "frames": self.chunk(0, self.n)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 3)


def prepare(trace: Trace, max_frames: int = 4000, key: str = "") -> Prepared:
    """Encode a Trace for the wire: frames, spans, finished requests, narration."""
    from wsgiscope.simulator import frames as sim_frames
    from wsgiscope.simulator import narration as sim_narrate

    procs, keys = _thread_keys(trace)
    index = {k: i for i, k in enumerate(keys)}
    proc_index = {p["key"]: i for i, p in enumerate(procs)}
    end = trace.end_ms
    tick = pick_tick(end, max_frames)
    raw = sim_frames.sample(trace, tick)
    absent = THREAD_STATES.index("absent")
    tcode = {s: i for i, s in enumerate(THREAD_STATES)}
    times: list[float] = []
    rows: list[list[Any]] = []
    blank = [absent, -1] * len(keys)
    for f in raw:
        th = blank.copy()
        for k, (state, req) in f["threads"].items():
            i = index.get(k)
            if i is not None:
                th[2 * i] = tcode.get(state, 0)
                th[2 * i + 1] = req
        gil = [-1] * len(procs)
        for pk, holder in f["gil"].items():
            pi = proc_index.get(pk)
            if pi is not None and holder:
                gil[pi] = index.get(holder, -1)
        times.append(round(f["t"], 4))
        rows.append([f["backlog"], f["busy_cores"], f["in_flight"], f["completed"],
                     f.get("failed", 0), f.get("connecting", 0), th, gil])

    # Thread lanes are drawn from the frames (one state per tick); only request spans go out
    # as intervals, so a run with heavy GIL ping-pong does not flood the socket.
    # by start (to the ns, so float noise cannot reorder ties), then by request
    raw_spans = sorted(sim_frames.spans(trace, threads=False)["requests"],
                       key=lambda s: (round(s[1], 6), s[0]))
    rs = REQUEST_STATES
    req_spans = [
        (a, [int(r), round(a, 3), round(b, 3), rs.index(st)])
        for r, a, b, st in raw_spans
        if st in rs
    ]
    paths = sorted({r.path for r in trace.requests})
    path_index = {p: i for i, p in enumerate(paths)}
    done = []
    for r in trace.requests:
        known = r.finished_ms if r.finished_ms is not None else end
        thread = -1
        if r.worker and r.thread:
            thread = index.get(r.thread, index.get(f"{r.worker}/{r.thread}", -1))
        elif r.thread:
            thread = index.get(r.thread, -1)
        done.append((known, [
            r.id, path_index[r.path], _r(r.sent_ms), _r(r.accepted_ms), _r(r.finished_ms),
            STATUSES.index(r.status) if r.status in STATUSES else 1,
            _r(r.cpu_ms), _r(r.gil_wait_ms), thread, r.http_status, r.syn_retries,
            1 if r.note.startswith("read ") else 0,  # read another request's value
        ]))
    done.sort(key=lambda x: (x[0], x[1][0]))
    narration = [(float(t), str(text)) for t, text in sim_narrate.narrate(trace)]
    meta = {
        "type": "meta",
        "key": key,
        "source": trace.source,
        "name": trace.scenario.get("name", ""),
        "seed": trace.seed,
        "tick_ms": tick,
        "n_frames": len(times),
        "end_ms": round(end, 3),
        "cores": trace.cores,
        "backlog_limit": trace.backlog_limit,
        "processes": procs,
        "threads": keys,
        "n_requests": len(trace.requests),
        "paths": paths,
        "request_states": REQUEST_STATES,
        "thread_states": THREAD_STATES,
        "statuses": STATUSES,
        "summary": trace.summary,
    }
    return Prepared(trace, key, tick, meta, times, rows, req_spans, done, narration)


def load_for_web(scenario_data: Any, max_requests: int) -> simulator.Scenario:
    """Validate a scenario and check it fits what one page may ask of a shared server."""
    scenario = simulator.load_scenario(scenario_data)
    if scenario.expected_requests > max_requests:
        raise simulator.ScenarioError(
            "workload",
            f"asks for about {scenario.expected_requests:,} requests; the page runs at most "
            f"{max_requests:,} (the wsgiscope simulate command runs more)",
        )
    return scenario
