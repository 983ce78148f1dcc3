"""Shared by the web and browser tests: ``wsgiscope serve`` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The lab token the test server uses (``wsgiscope serve`` takes it from $WSGISCOPE_TOKEN).
LAB_TOKEN = "test-token-" + "0123456789abcdef" * 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(log: Path, limit_s: float = 20.0) -> Iterator[str]:
    """Run ``wsgiscope serve`` (gunicorn, gthread) in its own process group; yield
    ``127.0.0.1:PORT`` once it listens; always stop the whole group."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsgiscope.app.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "WSGISCOPE_TOKEN": LAB_TOKEN},
        )
    try:
        deadline = time.monotonic() + limit_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def live_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a live ``wsgiscope serve``, one per test module."""
    with serving(tmp_path_factory.mktemp("server") / "server.log") as address:
        yield address


@pytest.fixture(scope="session")
def lab_token() -> str:
    """The token of the live test server's lab (``?token=`` or ``X-Wsgiscope-Token``)."""
    return LAB_TOKEN
