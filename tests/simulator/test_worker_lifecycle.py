"""gunicorn workers killed and replaced: what the client sees, and how long the gap lasts."""

from __future__ import annotations

import statistics

import pytest
from wsgiscope import simulator
from wsgiscope.simulator.scenario import COSTS, GUNICORN


def worker_events(trace: simulator.Trace) -> list[tuple[float, str, str]]:
    return [(e.t, e.who, e.what) for e in trace.events if e.kind == "worker" and e.t > 0]


def killed_at(trace: simulator.Trace) -> float:
    return next(t for t, _, what in worker_events(trace) if what == "killed")


def hog(worker_class: str, **server: float) -> simulator.Trace:
    return simulator.run({
        "server": {"kind": "gunicorn", "worker_class": worker_class, "timeout_s": 2,
                   **server},
        "endpoints": {"/crunch": [{"cpu_ms": 10_000}], "/ping": [{"io_ms": 5}]},
        "workload": [
            {"at_ms": 0, "count": 1, "path": "/crunch"},
            {"at_ms": 100, "count": 1, "path": "/ping"},
        ],
    })


def test_a_killed_sync_worker_answers_500_at_once() -> None:
    """Measured: handle_abort's SystemExit reaches sync's handle(), handle_error writes a
    500 two milliseconds after the SIGABRT."""
    trace = hog("sync")
    crunch, ping = trace.requests
    assert crunch.status == "error" and crunch.http_status == 500
    assert crunch.finished_ms == pytest.approx(killed_at(trace))
    assert ping.status == "ok"


@pytest.mark.parametrize("keepalive_s", [2, 5, 0])
def test_a_killed_gevent_worker_closes_the_connection_without_a_response(
        keepalive_s: float) -> None:
    """gevent's handle_request swallows the SystemExit; the keep-alive loop's next(parser)
    stops at once for a request that said Connection: close (every client here does), so
    the connection is closed at the signal whatever keepalive is (measured: within 1 ms)."""
    trace = hog("gevent", keepalive_s=keepalive_s)
    crunch, ping = trace.requests
    assert crunch.status == "reset" and crunch.http_status is None
    assert crunch.finished_ms == pytest.approx(killed_at(trace))
    assert "no response" in crunch.note
    # the aborted worker accepted nothing more: the replacement serves /ping
    assert ping.status == "ok" and ping.accepted_ms > crunch.finished_ms


def test_an_aborted_gevent_worker_finishes_its_other_greenlets() -> None:
    trace = simulator.run({
        "server": {"kind": "gunicorn", "worker_class": "gevent", "timeout_s": 2},
        "endpoints": {"/crunch": [{"cpu_ms": 10_000}], "/wait": [{"io_ms": 4000}]},
        "workload": [
            {"at_ms": 0, "count": 1, "path": "/wait"},
            {"at_ms": 10, "count": 1, "path": "/crunch"},
        ],
    })
    wait, crunch = trace.requests
    killed = killed_at(trace)
    assert crunch.status == "reset"
    assert wait.status == "ok" and wait.finished_ms > killed
    # it exits at its loop's next one-second tick once both are done
    last = max(wait.finished_ms, crunch.finished_ms)
    exit_t = next(t for t, _, what in worker_events(trace) if what == "exit")
    assert last <= exit_t <= last + 1000
    assert (exit_t - killed) % 1000 == pytest.approx(0, abs=1e-6)


def test_a_second_timeout_after_sigabrt_is_sigkill() -> None:
    """The greenlet that ran before the hog takes the hub next and burns it too: the
    arbiter's next check kills the worker outright, and its client gets nothing."""
    trace = simulator.run({
        "server": {"kind": "gunicorn", "worker_class": "gevent", "timeout_s": 2},
        "endpoints": {"/crunch": [{"cpu_ms": 10_000}],
                      "/later": [{"io_ms": 50}, {"cpu_ms": 10_000}]},
        "workload": [
            {"at_ms": 0, "count": 1, "path": "/later"},
            {"at_ms": 10, "count": 1, "path": "/crunch"},
        ],
    })
    later, crunch = trace.requests
    kills = [(t, what) for t, _, what in worker_events(trace) if what == "killed"]
    assert len(kills) == 2
    assert later.status == "reset" and "SIGKILL" in later.note
    assert later.finished_ms == pytest.approx(kills[1][0])


def recycled(costs: dict[str, float] | None = None, seed: int = 1,
             **server: float) -> simulator.Trace:
    return simulator.run({
        "server": {"kind": "gunicorn", "workers": 1, "max_requests": 1, **server},
        "costs": costs or {},
        "endpoints": {"/a": [{"io_ms": 10}]},
        "workload": [{"count": 3, "path": "/a"}],
        "seed": seed,
    })


def replacement(trace: simulator.Trace) -> tuple[float, float, float]:
    """The first replacement's exit -> fork (reap and fork), fork -> ready (boot), and the
    old worker's response -> the next accept."""
    first, second, _ = trace.requests
    events = worker_events(trace)
    exit_t = next(t for t, _, what in events if what == "exit")
    boot_t = next(t for t, _, what in events if what == "boot")
    ready_t = next(t for t, _, what in events if what == "ready")
    assert exit_t == pytest.approx(first.finished_ms)
    gap = second.accepted_ms - first.finished_ms
    assert ready_t - exit_t <= gap <= ready_t - exit_t + 1  # and wake-up, accept()
    return boot_t - exit_t, ready_t - boot_t, gap


def test_a_recycled_worker_is_replaced_as_measured() -> None:
    """Exit, reap (77 ms), fork (3.7 ms), import Flask and the app (130 ms): about 210 ms
    without a worker, as measured here (gunicorn 27, --max-requests 1): single recycles
    took 169-282 ms (reap 48-112, boot 103-217), so each one's reap and boot vary."""
    reap, fork = COSTS["reap_ms"][0], COSTS["fork_ms"][0]
    boot = GUNICORN["boot_ms"][0]
    got = [replacement(recycled(seed=seed)) for seed in range(40)]
    reaps = [r - fork for r, _, _ in got]
    boots = [b for _, b, _ in got]
    gaps = [g for _, _, g in got]
    for typical, drawn in ((reap, reaps), (boot, boots)):
        assert min(drawn) >= 0.75 * typical
        assert 0.85 * typical <= statistics.mean(drawn) <= 1.15 * typical
        assert max(drawn) >= 1.3 * typical  # a tail, as measured
    assert 150 <= statistics.median(gaps) <= 260
    assert replacement(recycled(seed=7)) == replacement(recycled(seed=7))


def test_the_replacement_gap_comes_from_the_scenario() -> None:
    reap_fork, boot, gap = replacement(recycled({"reap_ms": 10, "fork_ms": 1}, boot_ms=20))
    assert reap_fork >= 1 + 7.5 and boot >= 15 and gap >= 0.75 * 31
