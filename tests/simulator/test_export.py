"""Exports of a Trace: slide table, CSV, Chrome Trace Event JSON, result JSON."""

from __future__ import annotations

import csv
import io
import json
import random
import re

import pytest
from handmade import dropped_syn, gil_pair, single_thread
from wsgiscope import simulator
from wsgiscope.simulator import export, export_chrome, frames, presets
from wsgiscope.simulator.trace import RESULT_FIELDS, Trace


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_one_row_per_request_with_the_result_fields() -> None:
    trace = dropped_syn()
    rows = _rows(export.to_csv(trace))
    assert [int(r["id"]) for r in rows] == [0, 1, 2]
    for field in (*RESULT_FIELDS, "latency_ms"):
        assert field in rows[0]
    assert rows[2]["syn_retries"] == "1"
    assert float(rows[2]["latency_ms"]) == 1100.0
    assert rows[1]["queue_ms"] == "100.000"


def test_csv_leaves_unreached_times_empty() -> None:
    trace = simulator.run(
        {
            "server": {"kind": "gunicorn", "workers": 1, "backlog": 0},
            "endpoints": {"/slow": [{"io_ms": 5000}]},
            "workload": [{"at_ms": 0, "count": 4, "path": "/slow"}],
            "client": {"timeout_s": 2},
        }
    )
    rows = _rows(export.to_csv(trace))
    timed_out = [r for r in rows if r["status"] == "timeout"]
    assert timed_out, rows
    assert any(r["accepted_ms"] == "" for r in timed_out)


def test_json_is_the_result_format() -> None:
    trace = single_thread(n=2)
    data = json.loads(json.dumps(export.to_json(trace)))
    assert set(data) >= {"requests", "summary"}
    assert data["summary"]["completed"] == 2
    assert data["requests"][1]["finished_ms"] == 2002.0


def _chrome(trace: Trace) -> dict:
    data = export.to_chrome_trace(trace)
    return json.loads(json.dumps(data))  # JSON-ready


def test_chrome_trace_has_lanes_spans_and_the_backlog_counter() -> None:
    data = _chrome(gil_pair())
    events = data["traceEvents"]
    names = {
        (e["pid"], e.get("tid")): e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] in ("process_name", "thread_name")
    }
    assert names[(0, None)].startswith("kernel")
    assert names[(1, None)] == "server"
    assert names[(1, 0)] == "GIL"
    assert {names[(1, 1)], names[(1, 2)]} == {"w1/t1", "w1/t2"}
    spans = [e for e in events if e["ph"] == "X" and e["tid"] != 0]
    t1 = sorted(
        (e["ts"], e["dur"], e["name"])
        for e in spans
        if names[(e["pid"], e["tid"])] == "w1/t1" and e["cat"] != "dead"
    )
    assert t1 == [
        (0.0, 5000.0, "user 1 view (cpu)"),
        (5000.0, 5000.0, "user 1 view (gil)"),
        (10000.0, 5000.0, "user 1 view (cpu)"),
    ]
    gil = sorted(
        (e["ts"], e["dur"], e["args"]["holder"]) for e in events if e["ph"] == "X" and e["tid"] == 0
    )
    assert gil == [
        (0.0, 5000.0, "w1/t1"),
        (5000.0, 5000.0, "w1/t2"),
        (10000.0, 5000.0, "w1/t1"),
        (15000.0, 5000.0, "w1/t2"),
    ]
    counters = [e for e in events if e["ph"] == "C"]
    assert {c["name"] for c in counters} == {"in flight"}  # no backlog events in this trace
    assert [c["args"]["requests"] for c in counters] == [1, 2, 1, 0]


def test_chrome_trace_backlog_counter_follows_the_queue() -> None:
    events = _chrome(single_thread(n=3))["traceEvents"]
    depth = [
        (e["ts"], e["args"]["depth"]) for e in events if e["ph"] == "C" and e["name"] == "backlog"
    ]
    assert [d for _, d in depth] == [1, 0, 1, 2, 1, 0]
    assert all(e["dur"] > 0 for e in events if e["ph"] == "X")


def test_chrome_trace_of_every_preset_is_well_formed() -> None:
    for name in ("dev-processes-4", "gthread-hoarding", "worker-timeout", "backlog-overflow"):
        trace = simulator.run(presets.get(name).scenario)
        events = _chrome(trace)["traceEvents"]
        lanes = {
            (e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"
        }
        xs = [e for e in events if e["ph"] == "X"]
        assert xs and all((e["pid"], e["tid"]) in lanes for e in xs), name
        assert any(e["ph"] == "C" and e["name"] == "backlog" for e in events), name
        assert all(e["ts"] >= 0 and e["dur"] >= 0 for e in xs)
        served = {e["args"]["request"] for e in xs if "request" in e["args"]}
        assert served == {r.id for r in trace.requests if r.started_ms is not None}, name


def test_table_shows_the_staircase() -> None:
    trace = simulator.run(presets.get("dev-single-thread").scenario)
    text = export.to_table(trace)
    lines = text.splitlines()
    assert lines[0] == trace.scenario["name"]
    header = next(i for i, line in enumerate(lines) if line.startswith("T="))
    assert re.match(r"T= +\| client +\| kernel backlog +\| server", lines[header])
    rows = [line for line in lines[header + 2 :] if re.match(r"\d+\.\d{3} s ", line)]
    assert rows[0].split("|")[1].strip() == "users 1-10 -> GET /sleep"
    assert rows[0].split("|")[2].strip() == "[2 3 4 5 ... 10] (9)"
    # one response per second, the queue shrinking by one each time: the staircase
    finished = [float(r.split("|")[0].split()[0]) for r in rows[1:]]
    assert [round(f) for f in finished] == list(range(1, 11))
    for k, row in enumerate(rows[1:], start=1):
        assert f"user {k} <- 200" in row
    assert "What happened" in text and "because the only thread is busy" in text
    assert "Summary" in text and "10: 10 ok" in text


def test_table_rows_are_capped_for_big_runs() -> None:
    trace = simulator.run(presets.get("gthread-poisson").scenario)
    text = export.to_table(trace)
    assert "more rows (use --format csv or trace for all of them)" in text
    assert "more requests (use --format csv for all of them)" in text
    assert len(text.splitlines()) < 200


def test_table_groups_dropped_syns() -> None:
    trace = simulator.run(presets.get("backlog-overflow").scenario)
    text = export.to_table(trace)
    assert "SYN dropped" in text and "resend SYN" in text


def _reference_values(col: list) -> list[str]:
    return [json.dumps(round(v, 3) if type(v) is float else v) for v in col]


def test_json_columns_are_written_as_json_dumps_writes_each_value() -> None:
    """The result's requests are encoded a column at a time (``"%.3f"`` with its trailing
    zeros dropped, or each distinct value once): each value as ``json.dumps`` of it rounded."""
    rng = random.Random(5)
    floats = [rng.uniform(-1e4, 1e4) for _ in range(3000)]
    floats += [rng.expovariate(1 / 1000) for _ in range(3000)]
    floats += [k / 1000 for k in range(-3000, 3000)]  # every tail of zeros
    floats += [k / 1000 + 0.0005 for k in range(-2000, 2000)]  # ties, as the binary value has them
    floats += [rng.uniform(1e10, 1e11) * rng.choice((1, -1)) for _ in range(500)]
    floats += [0.0, -0.0, 1e-7, -1e-7, 0.0004, -0.0004, 99999999999.9999, 123456789012.5]
    cases: list[list] = [
        floats,
        floats + [float("nan"), float("inf"), -float("inf")],
        [0.0] * 100 + [-0.0] + [0.5] * 100,  # few values, one a negative zero
        [0.0, 0.25, 1.5] * 100,
        [None if k % 7 == 0 else v for k, v in enumerate(floats)],
        [None] * 10,
        list(range(-50, 5000)),
        [0, 1, 2] * 100,
        [True, False, 1, 0] * 30,
        [1, 1.0, True, None, "1"] * 30,
        ["ok", "w1/t1", 'quo"te', "é\u2028\x00", "%s %d %%"] * 30,
    ]
    for col in cases:
        assert export._column(col, set(map(type, col))) == _reference_values(col)


def _reference_chrome_text(trace: Trace) -> str:
    """The Chrome trace as it was first written: :func:`frames.thread_spans_with_stage`'s spans
    and the GIL and counter events as dicts, each through ``json.dumps``."""
    lanes = export_chrome._Lanes(trace)
    paths = {r.id: r.path for r in trace.requests}
    events: list[dict] = []
    for key, start, end, state, req, stage in frames.thread_spans_with_stage(trace):
        a, b = int(start * 1e6 + 0.5), int(end * 1e6 + 0.5)
        if state == "idle" or b <= a:
            continue
        pid, tid = lanes.tid_of(key)
        if req >= 0:
            name = f"user {req + 1}{' ' + stage if stage else ''} ({state})"
            args: dict = {"request": req, "path": paths.get(req, ""), "stage": stage,
                          "state": state}
        else:
            name, args = ("accept loop" if state in ("gil", "cpu") else state), {"state": state}
        events.append({"name": name, "cat": state, "ph": "X", "ts": a / 1e3,
                       "dur": (b - a) / 1e3, "pid": pid, "tid": tid, "args": args})
    held: dict[str, tuple[float, str]] = {}
    depth, in_flight, started = None, 0, set()

    def gil_span(proc: str, since: float, holder: str, t: float) -> None:
        a, b = int(since * 1e6 + 0.5), int(t * 1e6 + 0.5)
        if t > since and b > a:
            events.append({"name": f"held by {holder}", "cat": "gil", "ph": "X", "ts": a / 1e3,
                           "dur": (b - a) / 1e3, "pid": lanes.pid_of(proc), "tid": 0,
                           "args": {"holder": holder}})

    for t, kind, who, what, _ in trace.events.rows():
        ts = int(t * 1e6 + 0.5) / 1e3
        if kind == "gil":
            prev = held.pop(str(who), None)
            if prev is not None:
                gil_span(str(who), prev[0], prev[1], t)
            if what:
                held[str(who)] = (t, str(what))
        elif kind == "backlog" and int(what) != depth:
            depth = int(what)
            events.append({"name": "backlog", "ph": "C", "ts": ts, "pid": 0,
                           "args": {"depth": depth}})
        elif kind == "req" and (what == "done" or (what == "syn" and who not in started)):
            started.add(who)
            in_flight += 1 if what == "syn" else -1
            events.append({"name": "in flight", "ph": "C", "ts": ts, "pid": 0,
                           "args": {"requests": in_flight}})
    for proc, (since, holder) in held.items():
        gil_span(proc, since, holder, trace.end_ms)
    other = {"scenario": str(trace.scenario.get("name", "")), "source": trace.source,
             "seed": trace.seed}
    return ('{"traceEvents": [' + ", ".join(lanes.meta() + [json.dumps(e) for e in events])
            + '], "displayTimeUnit": "ms", "otherData": ' + json.dumps(other) + "}\n")


@pytest.mark.parametrize("name", ("gthread-poisson", "mm8-queue", "gil-cpu-threads",
                                  "dev-threaded", "worker-timeout", "backlog-overflow",
                                  "gevent-io", "flask-error-path", "max-requests"))
def test_chrome_trace_is_the_spans_of_the_frames_sweep(name: str) -> None:
    """The Chrome trace sweeps the events itself, reading only what a thread's span needs,
    and writes each event from fixed parts: the same text as the spans of
    :func:`frames.thread_spans_with_stage` and the events written through ``json.dumps``."""
    for seed in (None, 3):
        trace = simulator.run(presets.get(name).scenario, seed=seed)
        text = _reference_chrome_text(trace)
        assert "".join(export.iter_chrome_trace(trace)) == text, (name, seed)
        assert "".join(export.iter_chrome_trace(trace, 5)) == text, (name, seed)


def test_chrome_trace_of_handmade_traces_is_the_reference() -> None:
    for trace in (gil_pair(), single_thread(n=3), dropped_syn()):
        assert "".join(export.iter_chrome_trace(trace)) == _reference_chrome_text(trace)


def test_microseconds_are_written_as_repr_writes_them() -> None:
    rng = random.Random(3)
    values = [*range(0, 3000), *(rng.randrange(10**15) for _ in range(20000)),
              10**15 - 1, 10**15, 10**15 + 1, 10**17, 10**19 + 7, -1, -999, -1000, -123456]
    assert [export_chrome._us(ns) for ns in values] == [repr(ns / 1e3) for ns in values]
