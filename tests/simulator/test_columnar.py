"""The columnar event log and the streamed outputs hold exactly what the tuple-per-event log
and the whole-document outputs they replace held.

Each test keeps the replaced implementation as its reference: a recorder appending an
``Event`` tuple per event, ``dataclasses.asdict`` and ``json.dumps(..., indent=2)`` for the
result, ``json.dumps`` of the whole Chrome trace.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import pytest
from handmade import gil_pair, single_thread
from wsgiscope import simulator
from wsgiscope.app.cli import main
from wsgiscope.simulator import engine, export, presets
from wsgiscope.simulator.trace import Event, EventLog, RequestRecord, Trace, summarise

PRESETS = ("dev-single-thread", "gthread-poisson", "backlog-overflow", "worker-timeout",
           "mm8-queue", "lost-update-311")


class TupleRecorder:
    """The recorder the columnar one replaced: one ``Event`` tuple per event, in a list."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.events: list[Event] = []

    def thread(self, key: str, state: str, req: Any) -> None:
        self.events.append(Event(self.env.now, "thread", key, state,
                                 req.id if req is not None else -1))

    def gil(self, proc: str, holder: str) -> None:
        self.events.append(Event(self.env.now, "gil", proc, holder, -1))

    def backlog(self, depth: int) -> None:
        self.events.append(Event(self.env.now, "backlog", "listen", depth, -1))

    def req(self, req: Any, phase: str, detail: str = "") -> None:
        self.events.append(Event(self.env.now, "req", req.id, phase, detail))

    def stage(self, req: Any, stage: str) -> None:
        self.events.append(Event(self.env.now, "req", req.id, "stage", stage))

    def worker(self, key: str, what: str, detail: str) -> None:
        self.events.append(Event(self.env.now, "worker", key, what, detail))


def reference_result_text(trace: Trace) -> str:
    """``wsgiscope simulate --format json`` as it was written before: asdict, rounding,
    ``json.dumps(indent=2)``."""

    def rounded(d: dict[str, Any]) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()}

    result = {
        "source": trace.source,
        "scenario": trace.scenario.get("name", ""),
        "seed": trace.seed,
        "requests": [rounded(asdict(r)) for r in trace.requests],
        "summary": trace.summary,
    }
    return json.dumps(result, indent=2) + "\n"


@pytest.mark.parametrize("name", PRESETS)
def test_columnar_log_holds_what_the_tuple_log_held(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = presets.get(name).scenario
    new = simulator.run(scenario)
    monkeypatch.setattr(engine, "Recorder", TupleRecorder)
    old = simulator.run(scenario)
    assert isinstance(new.events, EventLog) and isinstance(old.events, EventLog)
    rows = [tuple(e) for e in old.events]
    assert len(new.events) == len(rows)
    assert list(new.events.rows()) == rows
    assert list(new.events) == rows and all(type(e) is Event for e in new.events)
    assert [type(v) for row in new.events.rows() for v in row[1:]] == [
        type(v) for row in rows for v in row[1:]
    ]
    assert new.to_dict() == old.to_dict()
    assert new.summary == old.summary


@pytest.mark.parametrize("name", PRESETS)
def test_json_output_is_byte_identical_to_the_whole_document(name: str) -> None:
    trace = simulator.run(presets.get(name).scenario)
    assert "".join(export.iter_json(trace)) == reference_result_text(trace)
    assert trace.to_result() == json.loads(reference_result_text(trace))


def test_json_output_of_the_cli_is_the_reference_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "gthread-poisson", "--format", "json"]) == 0
    out = capsys.readouterr().out
    trace = simulator.run(presets.get("gthread-poisson").scenario)
    assert out == reference_result_text(trace)


def test_json_output_of_awkward_records_is_byte_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = single_thread(n=3)
    trace.scenario["name"] = 'quotes " and \\ and \u00e9\n'
    trace.requests[0].note = 'a note, "quoted", with {braces}, [brackets], é and \t tab'
    trace.requests[1].thread = None
    trace.requests[1].finished_ms = float("nan")
    trace.requests[2].cpu_ms = 1e-7
    trace.requests[2].http_status = True  # type: ignore[assignment]

    @dataclass
    class Odd(RequestRecord):
        extra: Any = None

    odd = Odd(3, "/odd", 1.23456789, extra={"nested": [1, "two, \"three\""]})
    trace.requests.append(odd)
    trace.summary = summarise(trace)
    assert "".join(export.iter_json(trace)) == reference_result_text(trace)
    monkeypatch.setattr(export, "JSON_CHUNK", 1)
    assert "".join(export.iter_json(trace)) == reference_result_text(trace)
    trace.requests = []
    assert "".join(export.iter_json(trace)) == reference_result_text(trace)


def test_event_log_reads_like_the_list_it_replaced() -> None:
    events = [
        Event(0.0, "req", 0, "syn", "1"),
        Event(0.5, "thread", "w1/t1", "cpu", 0),
        Event(1.0, "backlog", "listen", 3, -1),
        Event(1.5, "lab-note", "w1", 2.5, None),  # a kind and values the engine never writes
    ]
    log = EventLog(events)
    assert len(log) == 4 and log and not EventLog()
    assert log[0] == events[0] and type(log[0]) is Event and log[-1] == events[-1]
    assert log[1].kind == "thread" and log[-1].what == 2.5 and log[-1].ref is None
    assert log[1:3] == events[1:3] and log[::-1] == events[::-1]
    assert list(log) == events and log == events and events == log
    assert log == EventLog(events) and log != EventLog(events[:3])
    assert list(log.kind_column()) == [e.kind for e in events]
    with pytest.raises(IndexError):
        log[4]
    log.append(Event(2.0, "req", 0, "done", "ok"))
    log.extend([(2.5, "gil", "w1", "", -1)])
    assert [e.t for e in log] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    columns = (log.t, log.codes, log.who, log.what, log.ref)
    log[1:2] = []
    assert [e.t for e in log] == [0.0, 1.0, 1.5, 2.0, 2.5]
    assert (log.t, log.codes, log.who, log.what, log.ref) == columns  # the same objects
    assert all(a is b for a, b in zip((log.t, log.codes, log.who, log.what, log.ref), columns,
                                      strict=True))
    with pytest.raises(TypeError):
        log.append((3.0, None, "w1", "x", -1))
    assert len(log) == 5  # a bad event leaves the log as it was


def test_trace_stores_any_events_as_a_log() -> None:
    trace = single_thread(n=2)
    assert isinstance(trace.events, EventLog)
    before = list(trace.events)
    trace.events = [e for e in before if e.kind != "gil"]
    assert isinstance(trace.events, EventLog)
    assert all(e.kind != "gil" for e in trace.events)
    assert trace.end_ms == before[-1].t
    assert Trace(scenario={}, source="x").end_ms == 0.0


def test_decoded_log_shares_equal_strings_and_ints() -> None:
    trace = simulator.run(presets.get("gthread-poisson").scenario)
    back = Trace.from_dict(json.loads(json.dumps(trace.to_dict())))
    assert back.to_dict() == json.loads(json.dumps(trace.to_dict()))
    keys = {id(who) for code, who in zip(back.events.codes, back.events.who, strict=True)
            if code == back.events.code("thread")}
    assert len(keys) <= sum(len(p["threads"]) for p in trace.processes)


# -- the Chrome trace -------------------------------------------------------------------------


def _nesting_faults(events: list[dict[str, Any]]) -> int:
    """Slices that overlap the slice they started inside without ending in it, with times
    read the way Perfetto reads them (``llround(us * 1000)`` ns, ``ts`` and ``dur`` apart)."""
    tracks: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            start = round(e["ts"] * 1000)
            tracks[(e["pid"], e["tid"])].append((start, start + round(e["dur"] * 1000)))
    faults = 0
    for slices in tracks.values():
        slices.sort(key=lambda s: (s[0], -s[1]))
        open_ends: list[int] = []
        for start, end in slices:
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
            if open_ends and end > open_ends[-1]:
                faults += 1
            open_ends.append(end)
    return faults


@pytest.mark.parametrize("name", ("gthread-poisson", "mm8-queue", "gil-cpu-threads",
                                  "too-many-workers", "worker-timeout"))
def test_every_track_of_the_chrome_trace_nests(name: str) -> None:
    trace = simulator.run(presets.get(name).scenario)
    events = export.to_chrome_trace(trace)["traceEvents"]
    assert any(e["ph"] == "X" for e in events)
    assert _nesting_faults(events) == 0
    # back to back: a slice that follows another within a nanosecond starts where it ended
    tracks: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            assert e["dur"] > 0
            start = round(e["ts"] * 1000)
            tracks[(e["pid"], e["tid"])].append((start, start + round(e["dur"] * 1000)))
    for slices in tracks.values():
        slices.sort()
        for (_, end), (start, _) in zip(slices, slices[1:], strict=False):
            assert not 0 < abs(start - end) <= 1, (end, start)


def test_nesting_check_sees_an_overlap() -> None:
    slices = [{"ph": "X", "pid": 1, "tid": 1, "ts": 0.0, "dur": 1.001},
              {"ph": "X", "pid": 1, "tid": 1, "ts": 1.0, "dur": 1.0}]
    assert _nesting_faults(slices) == 1


@pytest.mark.parametrize("trace", [gil_pair(), single_thread(n=3)], ids=["gil", "single"])
def test_streamed_chrome_trace_is_the_document(trace: Trace) -> None:
    for chunk in (1, 3, 4096):
        text = "".join(export.iter_chrome_trace(trace, chunk))
        assert text == json.dumps(export.to_chrome_trace(trace)) + "\n"


def test_streamed_chrome_trace_of_a_run_is_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    trace = simulator.run(presets.get("gthread-poisson").scenario)
    text = "".join(export.iter_chrome_trace(trace, 100))
    data = json.loads(text)
    assert text == json.dumps(data) + "\n"
    assert main(["simulate", "gthread-poisson", "--format", "trace"]) == 0
    assert capsys.readouterr().out == text
    buf = io.StringIO()
    for piece in export.iter_chrome_trace(trace):
        buf.write(piece)
    assert buf.getvalue() == text


def test_only_an_event_log_is_an_event_log() -> None:
    """Compiled, the log's class has an ABC registry of its own: a list or a tuple is not
    an EventLog (a Trace given a list of events makes it one), and asking leaves
    ``Sequence``'s answers as they were."""
    from collections.abc import Sequence

    for _ in range(2):  # the second time from the caches
        assert not isinstance([], EventLog) and not isinstance((), EventLog)
        assert isinstance([], Sequence) and isinstance((), Sequence)
        assert isinstance(EventLog(), Sequence)
    trace = Trace(scenario={}, source="simulated", events=[Event(0.0, "req", 1, "syn", "0")])
    assert type(trace.events) is EventLog
