"""The WebSocket stream: one socket, one run, played at the speed the browser asks for.

The browser sends JSON messages (``op``: start, play, pause, seek, speed, step, inspect);
the server answers with JSON messages (``type``: meta, frames, end, goto, inspect, error).
Each socket owns its run: the handler keeps everything in a :class:`Session` local to the
connection, nothing is shared between users.

Frames go out columnar, in chunks: a ``frames`` message carries a run of consecutive
frames plus every request span, finished request and narration line that starts at or
before the chunk's last frame. The browser keeps all of it, so scrubbing back
never asks the server for anything; going past what it has asks for a ``seek``.

A dropped socket reconnects and sends ``start`` again with ``resume``: the run is
deterministic, so the server rebuilds it and carries on from the frame the browser has.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_sock import Sock
from wsgiscope import simulator
from wsgiscope.simulator.trace import Trace

sock = Sock()

#: Request states, as numbered on the wire (``simulator.frames.REQUEST_STATES`` order).
REQUEST_STATES = ("connecting", "backlog", "pool", "gil", "cpu", "io", "write")
#: Thread states on the wire; ``absent`` is a thread that has not started yet.
THREAD_STATES = ("idle", "gil", "cpu", "io", "dead", "absent")
#: Request outcomes on the wire.
STATUSES = ("ok", "error", "reset", "timeout")

#: Playback speeds the page offers; ``"max"`` sends frames as fast as the socket takes them.
MIN_SPEED, MAX_SPEED = 0.1, 100.0
#: How far ahead of the browser's playhead the server keeps sending, in wall-clock seconds.
LEAD_S = 0.25
#: How often a playing session sends, and how many frames fit in one message at most.
SEND_INTERVAL_S = 1 / 30
CHUNK_FRAMES = 1500

_NICE = (1.0, 2.0, 5.0)


class ProtocolError(ValueError):
    """A message the server cannot act on; answered with an error frame."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


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
    from wsgiscope.simulator import narrate as sim_narrate

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


def build(scenario_data: Any, seed: Any, max_frames: int, max_requests: int) -> Prepared:
    """Validate a scenario, run the engine, encode the result. Raises ScenarioError."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ProtocolError(f"seed must be a whole number of 0 or more (got {seed!r})", "seed")
    scenario = load_for_web(scenario_data, max_requests)
    clean = scenario.to_dict()
    trace = simulator.run(scenario, seed=seed)
    return prepare(trace, max_frames, run_key(clean, seed))


def _speed(value: Any) -> float:
    if value == "max":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        MIN_SPEED <= value <= MAX_SPEED
    ):
        raise ProtocolError(
            f"speed must be a number from {MIN_SPEED:g} to {MAX_SPEED:g} or \"max\" "
            f"(got {value!r})", "speed")
    return float(value)


def _time(msg: dict[str, Any]) -> float | None:
    t = msg.get("t")
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ProtocolError(f"t must be a time in ms (got {t!r})", "t")
    return float(t)


class Session:
    """One socket's run and playback state."""

    def __init__(self, ws: Any, max_frames: int, max_requests: int = 50_000) -> None:
        self.ws = ws
        self.max_frames = max_frames
        self.max_requests = max_requests
        self.run: Prepared | None = None
        self.sent = 0
        self.playing = False
        self.speed = 1.0
        self.anchor_t = 0.0
        self.anchor_wall = time.monotonic()
        self.ended = False

    # -- sending ---------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        self.ws.send(json.dumps(msg, separators=(",", ":")))

    def error(self, message: str, field: str = "") -> None:
        self.send({"type": "error", "error": message, "field": field})

    def send_until(self, index: int, limit: int = CHUNK_FRAMES) -> None:
        """Send frames up to ``index`` (exclusive), at most ``limit`` of them now."""
        run = self.run
        if run is None:
            return
        index = min(index, run.n, self.sent + limit)
        if index > self.sent:
            self.send(run.chunk(self.sent, index))
            self.sent = index
        if self.sent >= run.n and not self.ended:
            self.ended = True
            self.send({"type": "end", "n_frames": run.n})

    def frame_index(self, t: float) -> int:
        """How many frames are needed to show time ``t``."""
        assert self.run is not None
        return bisect.bisect_left(self.run.times, t - 1e-9) + 1

    def playhead(self) -> float:
        if not self.playing:
            return self.anchor_t
        return self.anchor_t + self.speed * (time.monotonic() - self.anchor_wall) * 1000.0

    def anchor(self, t: float | None) -> None:
        self.anchor_t = self.playhead() if t is None else t
        self.anchor_wall = time.monotonic()

    def pump(self) -> None:
        """Send what the playhead will need soon; called after every message and timeout."""
        if self.run is None or not self.playing or self.sent >= self.run.n:
            return
        if math.isinf(self.speed):
            self.send_until(self.run.n)
            return
        ahead = self.playhead() + self.speed * LEAD_S * 1000.0
        self.send_until(self.frame_index(ahead))

    @property
    def busy(self) -> bool:
        return self.run is not None and self.playing and self.sent < self.run.n

    # -- messages --------------------------------------------------------------------------
    def handle(self, text: Any) -> None:
        try:
            if not isinstance(text, str):
                raise ProtocolError("messages must be JSON text")
            try:
                msg = json.loads(text)
            except ValueError as exc:
                raise ProtocolError(f"message is not valid JSON: {exc}") from None
            if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
                raise ProtocolError('a message must be a JSON object with an "op" field', "op")
            op = msg["op"]
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise ProtocolError(
                    f"unknown op {op!r} (allowed: start, play, pause, seek, speed, step, "
                    "inspect)", "op")
            if op not in ("start",) and self.run is None:
                raise ProtocolError(f"{op!r} needs a run: send start first", "op")
            handler(msg)
        except ProtocolError as exc:
            self.error(str(exc), exc.field)
        except simulator.ScenarioError as exc:
            self.error(str(exc), exc.field)

    def op_start(self, msg: dict[str, Any]) -> None:
        speed = _speed(msg.get("speed", 1))
        start_t = _time(msg) or 0.0
        run = build(msg.get("scenario"), msg.get("seed"), self.max_frames, self.max_requests)
        self.run, self.sent, self.ended = run, 0, False
        self.speed = speed
        self.playing = bool(msg.get("play", False))
        resume = msg.get("resume")
        self.send(run.meta)
        if isinstance(resume, dict) and resume.get("key") == run.key:
            have = resume.get("have")
            if isinstance(have, int) and 0 <= have <= run.n:
                self.sent = have
        self.anchor(start_t)
        # Frames for the first moments go out at once, even paused: the page draws straight
        # away, and pressing play moves the playhead without waiting for the server.
        lead = 0.0 if math.isinf(speed) else speed * LEAD_S * 1000.0
        self.send_until(max(self.frame_index(start_t + lead), 1))
        self.pump()

    def op_play(self, msg: dict[str, Any]) -> None:
        self.anchor(_time(msg))
        self.playing = True
        self.pump()

    def op_pause(self, msg: dict[str, Any]) -> None:
        self.anchor(_time(msg))
        self.playing = False

    def op_speed(self, msg: dict[str, Any]) -> None:
        speed = _speed(msg.get("value"))
        self.anchor(_time(msg))
        self.speed = speed
        self.pump()

    def op_seek(self, msg: dict[str, Any]) -> None:
        t = _time(msg)
        if t is None:
            raise ProtocolError("seek needs t, a time in ms", "t")
        assert self.run is not None
        self.anchor(t)
        self.send_until(self.frame_index(t), limit=self.run.n)
        self.pump()

    def op_step(self, msg: dict[str, Any]) -> None:
        """Move to the next narrated moment after ``t``, sending frames up to it."""
        t = _time(msg)
        if t is None:
            raise ProtocolError("step needs t, a time in ms", "t")
        run = self.run
        assert run is not None
        i = bisect.bisect_right(run.line_times, t + 1e-6)
        target = run.line_times[i] if i < len(run.line_times) else run.times[-1]
        target = min(max(target, run.times[0]), run.times[-1])
        self.playing = False
        self.anchor(target)
        self.send_until(self.frame_index(target), limit=run.n)
        self.send({"type": "goto", "t": target})

    def op_inspect(self, msg: dict[str, Any]) -> None:
        from .views import render_inspector

        run = self.run
        assert run is not None
        rid = msg.get("id")
        if isinstance(rid, bool) or not isinstance(rid, int) or not (
            0 <= rid < len(run.trace.requests)
        ):
            raise ProtocolError(
                f"id must be a request number from 0 to {len(run.trace.requests) - 1} "
                f"(got {rid!r})", "id")
        self.send({"type": "inspect", "id": rid, "html": render_inspector(run.trace, rid)})


@sock.route("/ws")
def stream(ws: Any) -> None:
    """One browser's run: read messages, keep the frames flowing while playing."""
    session = Session(ws, current_app.config["MAX_FRAMES"], current_app.config["MAX_REQUESTS"])
    while True:
        if not session.busy:
            timeout = None  # nothing to send: sleep until the browser speaks
        elif math.isinf(session.speed):
            timeout = 0.0
        else:
            timeout = SEND_INTERVAL_S
        text = ws.receive(timeout=timeout)
        if text is not None:
            session.handle(text)
        session.pump()
