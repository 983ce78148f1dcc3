"""Nothing the lab starts outlives a run: not on success, not when the load driver is
killed mid-run, not when the caller goes away (an exception in its progress callback).
The autouse fixture in conftest.py checks for leftover processes after every test."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from wsgiscope.app.lab.launcher import LabError
from wsgiscope.app.lab.measure import measure
from wsgiscope.app.lab.sampler import listening_ports

Procs = Callable[[], list[tuple[int, str]]]

SLOW = {
    "name": "a slow staircase",
    "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
    "endpoints": {"/sleep": [{"io_ms": 400}]},
    "workload": [{"at_ms": 0, "count": 20, "path": "/sleep", "spacing_ms": 0}],
}


def _wait_for(pred: Any, what: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.lab
def test_killing_the_driver_mid_run_stops_everything(
    lab_procs: Procs, lab_ports: Callable[[], set[int]]
) -> None:
    outcome: dict[str, Any] = {}
    ports: list[int] = []

    def progress(fraction: float, message: str) -> None:
        outcome.setdefault("progress", []).append(fraction)

    def target() -> None:
        try:
            outcome["trace"] = measure(SLOW, progress=progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    runner = threading.Thread(target=target)
    before = listening_ports()
    runner.start()
    try:
        drivers = _wait_for(
            lambda: [p for p, cmd in lab_procs() if "wsgiscope.app.lab.driver" in cmd],
            "the load driver to start",
        )
        _wait_for(
            lambda: any(f > 0.1 for f in outcome.get("progress", [])),
            "the first requests to finish",
        )
        # only the run's own: other programs on the machine open ports meanwhile too
        ports.extend((listening_ports() - before) & lab_ports())
        assert ports  # the server's port
        for pid in drivers:
            os.kill(pid, signal.SIGKILL)
    finally:
        runner.join(timeout=60)
    assert not runner.is_alive()
    assert "trace" not in outcome
    error = outcome["error"]
    assert isinstance(error, LabError)
    assert "driver" in str(error) and "signal 9" in str(error)
    assert lab_procs() == []
    for port in ports:
        assert port not in listening_ports()


@pytest.mark.lab
def test_a_caller_that_goes_away_mid_run_leaves_nothing(lab_procs: Procs) -> None:
    class Gone(Exception):
        pass

    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        if fraction > 0.2:
            raise Gone("the page was closed")

    with pytest.raises(Gone):
        measure(SLOW, progress=progress)
    assert seen and max(seen) > 0.2
    assert lab_procs() == []


@pytest.mark.lab
def test_a_finished_run_leaves_no_process_and_no_port(lab_procs: Procs, lab_root: Path) -> None:
    sc = {
        "name": "two quick requests, processes=2",
        "server": {"kind": "werkzeug", "threaded": False, "processes": 2},
        "endpoints": {"/": []},
        "workload": [{"at_ms": 0, "count": 2, "path": "/"}],
    }
    trace = measure(sc)
    assert [r.status for r in trace.requests] == ["ok", "ok"]
    assert lab_procs() == []
    assert trace.summary["lab"]["port"] not in listening_ports()
    assert list(lab_root.iterdir()) == []  # the run's scratch directory is gone too


@pytest.mark.lab
def test_the_leftover_check_sees_a_running_server(lab_procs: Procs, lab_root: Path) -> None:
    from wsgiscope.app.lab.launcher import Server

    sc = {
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
        "endpoints": {"/": []},
    }
    with Server(sc, lab_root / "manual") as server:
        assert len(lab_procs()) == 3  # the arbiter and two workers
        assert server.port in listening_ports()
    assert lab_procs() == []
    assert server.port not in listening_ports()
