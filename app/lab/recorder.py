"""The lab's record channel: one append-only JSON-lines file per process.

Every process of a lab server (the werkzeug server and its forked children, the gunicorn
arbiter and each worker) appends one JSON object per line to ``rec-<pid>.jsonl`` in the
run's record directory. A line is written with a single ``os.write`` on a file opened with
``O_APPEND`` and no buffering, so records of concurrent threads never interleave, a
process that dies loses at most the record it had not written yet, and records of
different processes never share a file.

Times are ``time.monotonic_ns()`` in milliseconds: one clock for every process on the
machine, the driver included.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Where the app keeps a request's record in its WSGI environ (the server hooks read it).
ENVIRON_KEY = "wsgiscope.lab"

ENV_CONFIG = "WSGISCOPE_LAB_CONFIG"


def now_ms() -> float:
    """The lab's clock: CLOCK_MONOTONIC in milliseconds (shared by all processes)."""
    return time.monotonic_ns() / 1e6


def thread_cpu_ms() -> float:
    """CPU time consumed by the calling thread, in milliseconds."""
    return time.thread_time_ns() / 1e6


class RecordSink:
    """Appends records to ``<directory>/rec-<pid>.jsonl`` (reopened after a fork)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._pid = -1
        self._fd = -1
        self._lock = threading.Lock()

    def _ensure_open(self) -> int:
        pid = os.getpid()
        if pid != self._pid:
            # A forked child inherits the parent's descriptor: never write through it.
            self._lock = threading.Lock()
            path = self.directory / f"rec-{pid}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._pid = pid
        return self._fd

    def close(self) -> None:
        if self._pid == os.getpid() and self._fd >= 0:
            os.close(self._fd)
        self._fd, self._pid = -1, -1

    def write(self, record: dict[str, Any]) -> None:
        record.setdefault("pid", os.getpid())
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        fd = self._ensure_open()
        os.write(fd, line)


def read_records(directory: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every complete record of a run, file by file (a torn last line is skipped)."""
    for path in sorted(Path(directory).glob("rec-*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    continue
                try:
                    yield json.loads(line)
                except ValueError:
                    continue


def load_config() -> dict[str, Any]:
    """The run configuration the launcher wrote (path in ``$WSGISCOPE_LAB_CONFIG``)."""
    path = os.environ.get(ENV_CONFIG)
    if not path:
        raise RuntimeError(f"{ENV_CONFIG} is not set: start lab servers with app.lab.launcher")
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data
