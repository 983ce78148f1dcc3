"""Lab tests start real servers on 127.0.0.1. Every test runs with its run directories
under its own ``tmp_path`` and checks afterwards that nothing it started is still alive:
no server, worker, forked child or load driver, and no listening port of a run."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def lab_processes(root: Path) -> list[tuple[int, str]]:
    """Live processes started for runs under ``root`` (found by their config path or
    command line), as ``(pid, command line)``."""
    found = []
    needle = str(root).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            found.append((int(entry), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def listening_ports_of(pids: list[int]) -> set[int]:
    """TCP ports on which these processes hold a listening socket (the machine is shared:
    a port that opened meanwhile may be anyone's)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as fh:
            fh.readline()
            for line in fh:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
def lab_ports(lab_root: Path) -> Callable[[], set[int]]:
    """A function listing the ports this test's runs are listening on."""
    return lambda: listening_ports_of([pid for pid, _cmd in lab_processes(lab_root)])


@pytest.fixture
def lab_procs(lab_root: Path) -> Callable[[], list[tuple[int, str]]]:
    """A function listing the live processes of this test's runs."""
    return lambda: lab_processes(lab_root)


@pytest.fixture(autouse=True)
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    deadline = time.monotonic() + 5.0
    left = lab_processes(root)
    while left and time.monotonic() < deadline:  # a process may take a moment to vanish
        time.sleep(0.05)
        left = lab_processes(root)
    for pid, _cmd in left:  # fail loudly, but do not leak them into the next test
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    assert left == [], f"processes left behind: {left}"
