"""Narration: the run told in plain words, with the reason for every wait."""

from __future__ import annotations

import re

import pytest
from handmade import dropped_syn, gil_pair, single_thread
from wsgiscope import simulator
from wsgiscope.simulator.narration import DEFAULT_MAX_LINES, fmt_dur, fmt_t, narrate

LINE = re.compile(r"^T=\d+\.\d{3} s — \S")


def _check_shape(lines: list[tuple[float, str]]) -> None:
    times = [t for t, _ in lines]
    assert times == sorted(times)
    for t, text in lines:
        assert LINE.match(text), text
        assert text.startswith(fmt_t(t))


def test_formatting() -> None:
    assert fmt_t(1000.0) == "T=1.000 s"
    assert fmt_t(12.5) == "T=0.013 s"
    assert fmt_dur(4.25) == "4.2 ms"
    assert fmt_dur(2500.0) == "2.500 s"


def test_single_thread_says_why_users_wait() -> None:
    lines = narrate(single_thread(n=3))
    _check_shape(lines)
    text = [t for _, t in lines]
    assert text[0].startswith("T=0.000 s — Users hit /sleep on a single-threaded dev server")
    assert "one thread (threaded=False)" in text[0]
    assert any("user 1 sends GET /sleep and thread w1/t1 accepts it at once" in t for t in text)
    assert any(
        "user 2 sends GET /sleep; the connection is complete and waits in the kernel backlog "
        "(depth 1) because the only thread is busy" in t
        for t in text
    )
    assert any(t.startswith("T=1.001 s — thread w1/t1 accepts user 2 after 1.001 s") for t in text)
    assert text[-1] == (
        "T=3.003 s — all done: 3 of 3 requests answered; latency mean 2.002 s, "
        "slowest 3.003 s; the backlog peaked at 2"
    )


def test_gil_hand_over_names_the_holder_and_the_switch_interval() -> None:
    lines = narrate(gil_pair())
    _check_shape(lines)
    text = "\n".join(t for _, t in lines)
    assert (
        "T=0.000 s — user 2 needs the GIL to run Python code, but thread w1/t1 (serving user 1) "
        "holds it; it waits 5.0 ms" in text
    )
    assert "T=0.005 s — the GIL of w1 is handed over after the 5.0 ms switch interval" in text
    # the waiting thread is told who holds the GIL *during* the wait, not who dropped it
    assert "but thread w1/t2 (serving user 2) holds it" in text
    assert "the GIL was taken away from a running thread 2 times" in text


def test_dropped_syn_says_when_the_client_retries() -> None:
    text = [t for _, t in narrate(dropped_syn())]
    dropped = [t for t in text if "dropped" in t]
    assert len(dropped) == 1
    assert dropped[0].startswith("T=0.000 s — user 3 sends GET /work, but the kernel's accept")
    assert "full (1 of 1)" in dropped[0] and "retries at T=1.000 s" in dropped[0]
    assert any(
        "user 3 retransmits its SYN (#2) and worker w1 accepts it at once" in t for t in text
    )
    assert any("user 2" in t and "because the only worker is busy" in t for t in text)


def test_the_cap_keeps_the_opening_and_the_summary() -> None:
    full = narrate(single_thread(n=10))
    short = narrate(single_thread(n=10), max_lines=6)
    assert len(short) == 6
    assert short[0] == full[0]
    assert short[-1] == full[-1]
    assert re.search(r"…and \d+ more events? not told here", short[-2][1])
    _check_shape(short)


def _run(data: dict) -> simulator.Trace:
    return simulator.run(data)


def test_worker_timeout_is_told() -> None:
    trace = _run(
        {
            "server": {"kind": "gunicorn", "workers": 1, "timeout_s": 2},
            "endpoints": {"/slow": [{"io_ms": 10_000}], "/quick": [{"io_ms": 10}]},
            "workload": [
                {"at_ms": 0, "count": 1, "path": "/slow"},
                {"at_ms": 100, "count": 1, "path": "/quick"},
            ],
        }
    )
    text = "\n".join(t for _, t in narrate(trace))
    assert re.search(r"worker w1 is killed.*the arbiter will start a replacement", text)
    assert "user 1 gets HTTP 500" in text
    assert "user 2 sends GET /quick; the connection is complete and waits" in text
    assert "because the only worker is busy" in text
    assert "1 failed" in text


def test_gthread_pool_wait_is_told() -> None:
    trace = _run(
        {
            "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 1, "threads": 2},
            "endpoints": {"/q": [{"io_ms": 100}]},
            "workload": [{"at_ms": 0, "count": 4, "path": "/q", "spacing_ms": 1}],
        }
    )
    text = "\n".join(t for _, t in narrate(trace))
    assert "worker w1 has accepted user 3, but all its threads are busy" in text
    assert "in a worker's queue" in text


def test_a_large_run_is_summarised() -> None:
    trace = _run(
        {
            "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 2, "threads": 4},
            "endpoints": {"/q": [{"io_ms": {"exp": 50}}], "/c": [{"cpu_ms": {"exp": 5}}]},
            "workload": [
                {"poisson": {"rate_per_s": 200, "duration_s": 10}, "paths": {"/q": 3, "/c": 1}}
            ],
        }
    )
    lines = narrate(trace)
    _check_shape(lines)
    assert len(lines) <= DEFAULT_MAX_LINES
    text = [t for _, t in lines]
    assert sum("progress:" in t for t in text) >= 5
    assert "switch interval" in "\n".join(text)
    assert re.search(r"…and [\d,]+ more events? not told here", text[-2])
    assert f"all done: {trace.summary['completed']} of {len(trace.requests)}" in text[-1]
    # a bigger budget tells more requests in full
    assert 100 < len(narrate(trace, max_lines=200)) <= 200


@pytest.mark.parametrize("n", [2, 3, 50])
def test_max_lines_is_respected(n: int) -> None:
    assert len(narrate(single_thread(n=30, sleep_ms=10), max_lines=n)) <= n


def test_presets_tell_their_lessons() -> None:
    from wsgiscope.simulator import presets

    def told(name: str) -> str:
        return "\n".join(t for _, t in narrate(simulator.run(presets.get(name).scenario)))

    assert "gets user 2's value: every thread of a process shares its module globals" in told(
        "globals-race"
    )
    assert "flask.g belongs to one request" in told("globals-race")
    assert "but the machine has 2 cores: the operating system shares the cores" in told(
        "too-many-workers"
    )
    free = told("free-threaded")
    assert "free-threaded Python (no GIL)" in free and "needs the GIL" not in free
    assert "cannot run its accept" in told("gevent-cpu")
    assert "while w2 has idle threads" in told("gthread-hoarding")
    assert "because all 4 child processes are busy" in told("dev-processes-4")
    assert "must first get the GIL" in told("convoy-threads")


def test_every_preset_narrates_in_time_order() -> None:
    from wsgiscope.simulator import presets

    for preset in presets.PRESETS.values():
        lines = narrate(simulator.run(preset.scenario))
        _check_shape(lines)
        assert len(lines) <= DEFAULT_MAX_LINES
        assert "all done" in lines[-1][1]


def test_a_measured_trace_without_gil_events_is_told() -> None:
    trace = single_thread(n=3)
    trace.events = [e for e in trace.events if e.kind != "gil"]
    trace.source = "measured"
    lines = narrate(_roundtrip(trace))
    _check_shape(lines)
    assert any("because the only thread is busy" in t for _, t in lines)


def _roundtrip(trace: simulator.Trace) -> simulator.Trace:
    import json

    return simulator.Trace.from_dict(json.loads(json.dumps(trace.to_dict())))
