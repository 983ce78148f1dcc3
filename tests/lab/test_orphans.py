"""No orphans, ever: every process the lab starts dies with its parent, however the parent
goes, and a run's scratch directory does not outlive the run for long.

* SIGKILL of ``wsgiscope measure`` mid-run (gunicorn sync -w 2, long requests in flight):
  within seconds no process of the run is left and its port is closed; the scratch
  directory it could not remove goes at the next lab start.
* SIGTERM / SIGINT of ``wsgiscope measure``: it stops its servers and driver, removes its
  scratch directory at once, and exits with the conventional status.
* A gunicorn arbiter (sync, gthread, gevent) or a werkzeug ``processes=2`` server killed
  outright takes its workers / forked children with it, even busy ones.

The measure process runs in its own session (its own process group); only that one
process is signalled, never the group. Everything binds 127.0.0.1 and is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from wsgiscope.app.lab.launcher import OWNER_FILE, RUN_DIR_PREFIX, Server, group_members
from wsgiscope.app.lab.measure import measure
from wsgiscope.app.lab.recorder import now_ms, read_records
from wsgiscope.app.lab.sampler import listening_ports

Procs = Callable[[], list[tuple[int, str]]]

LONG_SLEEP = {
    "name": "two sync workers busy with long requests",
    "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
    "endpoints": {"/sleep": [{"io_ms": 20_000}]},
    "workload": [{"at_ms": 0, "count": 4, "path": "/sleep"}],
    "client": {"timeout_s": 30},
}

QUICK = {
    "name": "one quick request",
    "server": {"kind": "werkzeug", "threaded": True},
    "endpoints": {"/": []},
    "workload": [{"count": 1, "path": "/"}],
}


def _wait_for(pred: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


@contextlib.contextmanager
def _measure_process(tmp_path: Path, lab_root: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``wsgiscope measure`` of LONG_SLEEP in its own session, run directory under
    ``lab_root``; killed (that process only) if the test leaves it running."""
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(LONG_SLEEP))
    env = dict(os.environ, TMPDIR=str(lab_root))
    with open(tmp_path / "measure.out", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsgiscope.app.cli", "measure", str(scenario),
             "--format", "json"],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _mid_run(lab_root: Path, proc: subprocess.Popen[bytes]) -> tuple[Path, int, set[int]]:
    """Wait until both workers are busy with requests; return the run directory, the
    server's port and the pids the run recorded (arbiter and workers)."""

    def state() -> tuple[Path, int, set[int]] | None:
        assert proc.poll() is None, "the measure process ended early"
        dirs = [p for p in lab_root.iterdir() if p.name.startswith(RUN_DIR_PREFIX)]
        if not dirs:
            return None
        run_dir = dirs[0]
        records = list(read_records(run_dir / "records")) if (run_dir / "records").is_dir() else []
        ports = [r["port"] for r in records if r.get("kind") == "ready"]
        workers = [r for r in records if r.get("kind") == "worker_ready"]
        try:
            start = json.loads((run_dir / "driver.jsonl").read_text().splitlines()[0])["start"]
        except (OSError, IndexError, ValueError, KeyError):
            return None
        if not ports or len(workers) < 2 or now_ms() < start + 500:
            return None  # requests leave at ``start``; give the workers time to pick two up
        return run_dir, int(ports[0]), {int(r["pid"]) for r in records}

    found: tuple[Path, int, set[int]] = _wait_for(state, "the run to be in flight")
    return found


def _nothing_left(lab_procs: Procs, pids: set[int], port: int, timeout_s: float = 5.0) -> None:
    _wait_for(
        lambda: not lab_procs() and not any(_alive(p) for p in pids),
        f"the run's processes to exit (left: {lab_procs()})",
        timeout_s,
    )
    _wait_for(lambda: port not in listening_ports(), f"port {port} to close", timeout_s)


@pytest.mark.lab
def test_sigkill_of_measure_mid_run_leaves_no_process_no_port_and_no_directory(
    tmp_path: Path, lab_root: Path, lab_procs: Procs
) -> None:
    with _measure_process(tmp_path, lab_root) as proc:
        run_dir, port, recorded = _mid_run(lab_root, proc)
        started = {pid for pid, _cmd in lab_procs() if pid != proc.pid}
        assert len(started) == 4, lab_procs()  # arbiter, two workers, load driver
        assert len(recorded) == 3  # arbiter and workers wrote records
        assert port in listening_ports()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        _nothing_left(lab_procs, started | recorded, port)
    owner = json.loads((run_dir / OWNER_FILE).read_text())
    assert owner["pid"] == proc.pid  # the directory says whose it was ...
    trace = measure(QUICK)  # ... so the next lab start removes it
    assert [r.status for r in trace.requests] == ["ok"]
    assert list(lab_root.iterdir()) == []


@pytest.mark.lab
@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_stopped_measure_cleans_up_at_once(
    tmp_path: Path, lab_root: Path, lab_procs: Procs, signum: int, status: int
) -> None:
    with _measure_process(tmp_path, lab_root) as proc:
        _run_dir, port, recorded = _mid_run(lab_root, proc)
        started = {pid for pid, _cmd in lab_procs() if pid != proc.pid}
        os.kill(proc.pid, signum)
        # killed by SIGTERM after cleaning up (a shell shows 143); Ctrl-C exits with 130
        assert proc.wait(timeout=20) == status
        assert list(lab_root.iterdir()) == []  # the scratch directory is gone already
        assert not any(_alive(p) for p in started | recorded)
        assert lab_procs() == []
        assert port not in listening_ports()


def _busy(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /sleep HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        socks.append(sock)
    return socks


@pytest.mark.lab
@pytest.mark.parametrize(
    "server",
    [
        {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
        {"kind": "gunicorn", "worker_class": "gthread", "workers": 2, "threads": 2},
        {"kind": "gunicorn", "worker_class": "gevent", "workers": 2},
        {"kind": "werkzeug", "threaded": False, "processes": 2},
    ],
    ids=["sync", "gthread", "gevent", "werkzeug-processes"],
)
def test_workers_and_forked_children_die_with_their_parent(
    lab_root: Path, lab_procs: Procs, server: dict[str, Any]
) -> None:
    sc = {"server": server, "endpoints": {"/sleep": [{"io_ms": 20_000}]}}
    with Server(sc, lab_root / "run") as srv:
        assert srv.proc is not None
        socks = _busy(srv.port, 4)
        try:
            # every worker / forked child is busy in a 20 s sleep
            children = _wait_for(
                lambda: (
                    set(group_members(srv.pgid)) - {srv.pgid}
                    if len(group_members(srv.pgid)) >= 3
                    else None
                ),
                "two workers or children besides the server",
            )
            time.sleep(0.3)
            os.kill(srv.proc.pid, signal.SIGKILL)
            _nothing_left(lab_procs, children | {srv.pgid}, srv.port)
        finally:
            for sock in socks:
                sock.close()
