"""A run as the page receives it: validated within the page's limits, encoded for the wire.

Shared by the WebSocket stream (:mod:`.stream`, which plays a run) and the pages
(:mod:`.web.pages`, which validate the form with the same limits and encode a measured
Trace for ``/api/timeline``). It reads only the Trace, so simulated and measured runs
encode the same way.

Frames go out columnar: :meth:`Prepared.chunk_text` gives a run of consecutive frames plus
every request span, finished request and narration line that starts at or before the
chunk's last frame, as the JSON text of one ``frames`` message.

A :class:`Prepared` run is compact on purpose: frame columns are typed arrays, spans,
records and narration lines are JSON text encoded once, and the request inspector's data is
kept as :class:`.runpack.Inspect` (records as JSON per batch of requests, each request's
events in typed arrays). It travels from a simulation process to the serving process,
and through a shared cache, as :meth:`Prepared.to_bytes` (no pickle), and decoding it
costs the serving process a few milliseconds even for a large run, so that one viewer's
run never stalls the frames of everyone else.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import math
from array import array
from dataclasses import dataclass, field
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.trace import Trace

from . import runpack
from .decimate import MAX_FRAME_VALUES as MAX_FRAME_VALUES
from .decimate import MAX_LANES as MAX_LANES
from .decimate import MAX_SPANS as MAX_SPANS
from .decimate import cap_lanes, decimate_spans, only_lanes

#: Request states, as numbered on the wire (``simulator.frames.REQUEST_STATES`` order).
REQUEST_STATES = ("connecting", "backlog", "pool", "gil", "cpu", "io", "write", "unknown")
#: Thread states on the wire; ``absent`` is a thread that has not started yet, ``unknown``
#: a measured thread whose state the lab could not tell.
THREAD_STATES = ("idle", "gil", "cpu", "io", "dead", "absent", "unknown")
#: A process's GIL holder on the wire: a thread index, -1 when free, -2 when not known.
GIL_UNKNOWN = -2
#: Request outcomes on the wire.
STATUSES = ("ok", "error", "reset", "timeout")
#: The per-frame counters, by their name on the wire and in ``simulator.frames.sample``.
COUNTERS = (("b", "backlog"), ("c", "busy_cores"), ("q", "in_flight"), ("d", "completed"),
            ("x", "failed"), ("k", "connecting"))

#: Encoded chunks a run keeps for the viewers that ask for the same ones, and the largest
#: kept (so a run's memo holds at most 2 MB).
CHUNK_MEMO, CHUNK_MEMO_TEXT = 256, 8192

_NICE = (1.0, 2.0, 5.0)
_JSON = json.JSONEncoder(separators=(",", ":"))


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


def _ints(values: list[Any]) -> array[Any]:
    """A typed array: 32-bit integers where they fit, else 64-bit, else doubles."""
    if not all(type(v) is int for v in values):
        return array("d", values)  # pragma: no cover - the engine's counters are ints
    try:
        return array("i", values)
    except OverflowError:  # pragma: no cover - a request number beyond 2**31
        return array("q", values)


@dataclass
class Prepared:
    """Everything one run sends, encoded once, in time order (see the module docstring)."""

    key: str
    tick_ms: float
    end_ms: float
    meta: dict[str, Any]
    times: array[float]
    counters: dict[str, array[Any]]  # wire name -> one value per frame
    th: array[int]  # per frame: [state, request] per thread
    g: array[int]  # per frame: the GIL holder's thread index per process, -1, -2
    span_starts: array[float]
    spans: list[str]  # "request,start,end,state" for the flat ``rs`` list
    done_times: array[float]
    done: list[str]  # one finished-request record as JSON
    line_times: array[float]
    narration: list[str]  # one ``[t, text]`` as JSON
    inspect: runpack.Inspect | None = None  # the request inspector's (None in a head)
    _chunks: dict[tuple[int, int], str] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.times)

    @property
    def n_requests(self) -> int:
        return int(self.meta["n_requests"])

    @property
    def partial(self) -> bool:
        """Whether this is a run's head (:mod:`.heads`): the whole run comes later."""
        return bool(self.meta.get("partial"))

    @functools.cached_property
    def meta_text(self) -> str:
        """The ``meta`` message as JSON, encoded once for every viewer of this run."""
        return json.dumps(self.meta, separators=(",", ":"))

    def cursor(self, have: int) -> list[int]:
        """Positions in the span/record/narration lists once ``have`` frames are out."""
        if have <= 0:
            return [0, 0, 0]
        if have >= self.n:
            return [len(self.spans), len(self.done), len(self.narration)]
        t = self.times[have - 1] + 1e-9
        return [
            bisect.bisect_right(self.span_starts, t),
            bisect.bisect_right(self.done_times, t),
            bisect.bisect_right(self.line_times, t),
        ]

    def chunk_text(self, a: int, b: int) -> str:
        """The JSON text of the ``frames`` message for frames ``a`` to ``b`` (exclusive).

        Sent to every playing viewer many times a second: viewers in step (the stream asks
        for chunks on a grid) share one encoding, kept in a small memo; the encoding itself
        is string joins over typed arrays (a number's ``repr`` is its JSON; the arrays hold
        no NaN or infinity)."""
        memo = self._chunks
        text = memo.get((a, b))
        if text is None:
            text = self._chunk_text(a, b)
            if len(text) <= CHUNK_MEMO_TEXT:  # a playing viewer's; not a seek's whole run
                if len(memo) >= CHUNK_MEMO:
                    memo.clear()
                memo[(a, b)] = text
        return text

    def _chunk_text(self, a: int, b: int) -> str:
        ca, cb = self.cursor(a), self.cursor(b)
        n = len(self.times)
        wt, wg = len(self.th) // max(n, 1), len(self.g) // max(n, 1)
        join = ",".join
        parts = ['{"type":"frames","i":', str(a), ',"t":[', join(map(repr, self.times[a:b]))]
        for name, column in self.counters.items():
            parts += ['],"', name, '":[', join(map(repr, column[a:b]))]
        parts += ['],"th":[', join(map(repr, self.th[a * wt:b * wt])),
                  '],"g":[', join(map(repr, self.g[a * wg:b * wg])),
                  '],"rs":[', join(self.spans[ca[0]:cb[0]]),
                  '],"done":[', join(self.done[ca[1]:cb[1]]),
                  '],"n":[', join(self.narration[ca[2]:cb[2]]),
                  '],"last":', "true" if b >= n and not self.partial else "false", "}"]
        return "".join(parts)

    def chunk(self, a: int, b: int) -> dict[str, Any]:
        """The ``frames`` message for frames ``a`` to ``b`` (exclusive), as an object."""
        return json.loads(self.chunk_text(a, b))  # type: ignore[no-any-return]

    def whole(self) -> dict[str, Any]:
        """Meta and every frame in one object (for a measured trace drawn all at once)."""
        return {"meta": self.meta, "frames": self.chunk(0, self.n)}

    def inspect_view(self, rid: int) -> Any:
        """What the request inspector needs of request ``rid`` (0 <= rid < n_requests)."""
        return runpack.inspect_view(self, rid)

    def to_bytes(self) -> bytes:
        """This run as bytes, for a pipe or a shared cache (:mod:`.runpack`)."""
        return runpack.to_bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Prepared:
        """The run :meth:`to_bytes` wrote; ValueError if it is not one (or another format)."""
        return runpack.from_bytes(cls, data)


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 3)


class Lanes:
    """A run's thread lanes as the wire numbers them (capped at MAX_LANES)."""

    def __init__(self, trace: Trace) -> None:
        procs, keys = _thread_keys(trace)
        self.procs, self.keys, self.hidden = cap_lanes(procs, keys, MAX_LANES)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.proc_index = {p["key"]: i for i, p in enumerate(self.procs)}

    @property
    def values(self) -> int:
        """Lane values per frame: a state and a request per thread, a holder per process."""
        return 2 * len(self.keys) + len(self.procs)

    def frame_cap(self, max_frames: int) -> int:
        """The most frames a run with these lanes sends (MAX_FRAME_VALUES in all)."""
        return max(1, min(max_frames, MAX_FRAME_VALUES // max(self.values, 1)))

    def same(self, other: Lanes) -> bool:
        return self.procs == other.procs and self.keys == other.keys


def shared_tick(tick_ms: float | None, end_ms: float, lanes: Lanes, max_frames: int) -> bool:
    """Whether a run ending at ``end_ms`` keeps a tick chosen before it ran (from an
    estimate of its end): up to twice ``max_frames`` frames (within MAX_FRAME_VALUES) and
    at least a quarter of them; otherwise the estimate was wrong and the tick is chosen
    again."""
    if not tick_ms:
        return False
    n = math.ceil(max(end_ms, 1.0) / tick_ms - 1e-9)
    cap = lanes.frame_cap(max_frames)
    return cap // 4 <= n <= min(2 * max_frames, MAX_FRAME_VALUES // max(lanes.values, 1))


def prepare(trace: Trace, max_frames: int = 4000, key: str = "",
            tick_ms: float | None = None) -> Prepared:
    """Encode a Trace for the wire: frames, spans, finished requests, narration.

    ``tick_ms`` is the tick a run's head was sent with (:mod:`.heads`): kept when the run's
    end allows it (:func:`shared_tick`), so the head's frames are this run's first frames."""
    from wsgiscope.simulator import narration as sim_narrate
    from wsgiscope.simulator.contexts import context_view

    lanes = Lanes(trace)
    end = trace.end_ms
    if not shared_tick(tick_ms, end, lanes, max_frames):
        tick_ms = pick_tick(end, lanes.frame_cap(max_frames))
    assert tick_ms is not None
    paths = sorted({r.path for r in trace.requests})
    narration = [(float(t), str(text)) for t, text in sim_narrate.narrate(trace)]
    return encode(trace, lanes, tick_ms, end, key, paths, len(trace.requests), narration,
                  summary=trace.summary, contexts=context_view(trace),
                  inspect=runpack.inspect_data(trace))


def encode(trace: Trace, lanes: Lanes, tick: float, end: float, key: str, paths: list[str],
           n_requests: int, narration: list[tuple[float, str]], summary: Any,
           contexts: Any, inspect: runpack.Inspect | None, horizon: float | None = None,
           extra: dict[str, Any] | None = None) -> Prepared:
    """The Prepared run of ``trace``'s frames up to ``end`` at ``tick``; with a
    ``horizon`` (a run's head), frames stop there, and spans and records that start later,
    or requests not finished by then, are left for the whole run."""
    from wsgiscope.simulator import frames as sim_frames

    procs, keys, hidden, index = lanes.procs, lanes.keys, lanes.hidden, lanes.index
    stop = end if horizon is None else horizon
    raw = sim_frames.sample(only_lanes(trace, keys) if hidden[0] else trace, tick,
                            end_ms=stop)
    absent = THREAD_STATES.index("absent")
    tcode = {s: i for i, s in enumerate(THREAD_STATES)}
    times: list[float] = []
    th: list[int] = []
    gil: list[int] = []
    counters: dict[str, list[Any]] = {wire: [] for wire, _ in COUNTERS}
    blank = [absent, -1] * len(keys)
    for f in raw:
        row = blank.copy()
        for k, (state, req) in f["threads"].items():
            i = index.get(k)
            if i is not None:
                row[2 * i] = tcode.get(state, 0)
                row[2 * i + 1] = req
        th.extend(row)
        g = [-1] * len(procs)
        for pk, holder in f["gil"].items():
            pi = lanes.proc_index.get(pk)
            if pi is not None and holder:
                g[pi] = GIL_UNKNOWN if holder == "?" else index.get(holder, -1)
        gil.extend(g)
        times.append(round(f["t"], 4))
        for wire, name in COUNTERS:
            counters[wire].append(f.get(name, 0))

    # Thread lanes are drawn from the frames (one state per tick); only request spans go out
    # as intervals, so a run with heavy GIL ping-pong does not flood the socket.
    raw_spans = sim_frames.spans(trace, threads=False)["requests"]
    if horizon is not None:  # a head: spans still open run to its horizon, as far as known
        last, open_reqs = trace.end_ms, {r.id for r in trace.requests if r.finished_ms is None}
        raw_spans = [(r, a, horizon if r in open_reqs and b >= last else b, st)
                     for r, a, b, st in raw_spans if a <= horizon + 1e-9]
    if len(raw_spans) > MAX_SPANS:  # sorted as below (each request's spans in time order)
        raw_spans = decimate_spans(raw_spans, tick, MAX_SPANS)
    else:  # by start (to the ns, so float noise cannot reorder ties), then by request
        raw_spans.sort(key=lambda s: (round(s[1], 6), s[0]))
    rs = REQUEST_STATES
    req_spans = [
        (a, [int(r), round(a, 3), round(b, 3), rs.index(st)])
        for r, a, b, st in raw_spans
        if st in rs
    ]
    path_index = {p: i for i, p in enumerate(paths)}
    done = []
    for r in trace.requests:
        if horizon is not None and (r.finished_ms is None or r.finished_ms > horizon + 1e-9):
            continue  # still in flight at the head's horizon
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
    meta = {
        "type": "meta",
        "key": key,
        "source": trace.source,
        "name": trace.scenario.get("name", ""),
        "seed": trace.seed,
        "tick_ms": tick,
        "n_frames": math.ceil(max(end, 1.0) / tick - 1e-9) if horizon is not None
        else len(times),
        "end_ms": round(end, 3),
        "cores": trace.cores,
        "backlog_limit": trace.backlog_limit,
        "processes": procs,
        "threads": keys,
        "hidden_threads": hidden[0],
        "hidden_processes": hidden[1],
        "n_requests": n_requests,
        "paths": paths,
        "request_states": REQUEST_STATES,
        "thread_states": THREAD_STATES,
        "statuses": STATUSES,
        "summary": summary,
        # what each thread had pushed and what globals, g and locals held, for small runs
        "contexts": contexts,
        **(extra or {}),
    }
    return Prepared(
        key, tick, end, meta, array("d", times),
        {wire: _ints(values) for wire, values in counters.items()},
        _ints(th), _ints(gil),
        array("d", [a for a, _ in req_spans]), [_JSON.encode(s)[1:-1] for _, s in req_spans],
        array("d", [k for k, _ in done]), [_JSON.encode(r) for _, r in done],
        array("d", [t for t, _ in narration]),
        [_JSON.encode([round(t, 3), text]) for t, text in narration],
        inspect,
    )


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
