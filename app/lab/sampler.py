"""Samplers that watch a lab server from outside, through netlink and ``/proc``.

:class:`BacklogSampler` samples a listening socket's accept-queue depth: the number of
complete connections waiting for ``accept()`` (``sk_ack_backlog``, what ``ss -lnt`` shows
as Recv-Q), asked of the kernel over sock_diag (:mod:`.sockdiag`: about 0.05 ms of CPU a
sample; reading ``/proc/net/tcp`` cost 3-7 ms, half a core taken from the server measured).

:class:`ThreadSampler` samples what every thread of the server's processes is doing, about
once a millisecond, from ``/proc/<pid>/task/<tid>/syscall``: ``running`` when the thread is
runnable (on a core, or waiting for one), else the number of the system call it sleeps in
-- ``futex`` for a thread waiting for the GIL (or another lock), ``clock_nanosleep``,
``recvfrom``, ``select``... for a blocking call. Where that file cannot be read it falls
back to the state letter of ``/proc/<pid>/task/<tid>/stat`` (R or not, with no reason).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .recorder import now_ms
from .sockdiag import Listeners


def listen_queue(port: int) -> int | None:
    """Accept-queue depth of the listener on ``port`` (IPv4, then IPv6), or None."""
    with Listeners() as listeners:
        found = listeners.query().get(port)
    return None if found is None else found[0]


def listening_ports() -> set[int]:
    """Every TCP port with a socket in LISTEN state (IPv4 and IPv6)."""
    with Listeners() as listeners:
        return set(listeners.query())


class _Poller:
    """A daemon thread running ``_run`` until :meth:`stop` (what both samplers share)."""

    def _init_thread(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._idle_run, name=name, daemon=True)

    def _idle_run(self) -> None:
        # An instrument must not take a core from the server it watches: as SCHED_IDLE it
        # runs only where no server thread wants the core, and a server thread woken onto
        # its core preempts it at once. At normal priority the two samplers slowed four
        # CPU-bound requests under one GIL by 6 % (their wake-ups, a thousand a second,
        # delay the GIL's hand-overs); as SCHED_IDLE by 1-5 % (tests/bench/bench_observer.py).
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        self._run()

    def _pause(self) -> None:
        """Sleep one interval (``time.sleep``: a third less CPU than ``Event.wait``)."""
        time.sleep(self.interval_ms / 1000.0)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> Any:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)


class BacklogSampler(_Poller):
    """A thread recording ``(t_ms, depth)`` each time the accept queue's depth changes.

    ``interval_ms`` is the polling period; depths that last less than that may be missed,
    which the recorded series says nothing about (it is a sample, not a log).
    """

    def __init__(
        self, port: int, interval_ms: float = 2.0, clock: Callable[[], float] = now_ms
    ) -> None:
        self.port = port
        self.interval_ms = interval_ms
        self.clock = clock
        self.samples: list[tuple[float, int]] = []
        self.polls = 0
        self.cpu_s = 0.0
        self._init_thread("backlog-sampler")

    def _run(self) -> None:
        last = -1
        with Listeners() as listeners:
            while not self._stop.is_set():
                found = listeners.query().get(self.port)
                self.polls += 1
                if found is not None and found[0] != last:
                    last = found[0]
                    self.samples.append((self.clock(), last))
                self._pause()
        self.cpu_s = time.thread_time()


#: Codes of a thread sample (other values are the system call a sleeping thread is in).
RUNNING = -2  # runnable: on a core or waiting for one
SLEEPING = -3  # not runnable, system call unknown (the ``stat`` fallback)
IN_KERNEL = -1  # blocked, but not in a system call (e.g. a page fault)


def parse_syscall(text: bytes) -> int:
    """The code of one ``/proc/<pid>/task/<tid>/syscall`` reading."""
    if text.startswith(b"running"):
        return RUNNING
    head = text.split(b" ", 1)[0]
    try:
        return int(head)
    except ValueError:
        return IN_KERNEL


def parse_stat_state(text: bytes) -> int:
    """The code of one ``/proc/<pid>/task/<tid>/stat`` reading (R or not)."""
    state = text.rsplit(b")", 1)[-1].split()[:1]
    return RUNNING if state == [b"R"] else SLEEPING


class ThreadSampler(_Poller):
    """A thread recording, for each thread of the watched processes, each change of what it
    is doing (see the module docstring).

    The watched processes are ``pids`` plus, when ``record_dir`` is given, every process
    that has written a record file there (``rec-<pid>.jsonl``: gunicorn workers write one
    when they boot), except ``exclude``. After :meth:`stop`: ``changes[(pid, tid)]`` is a
    list of ``(t_ms, code)``, ``sweeps`` the time of every sweep (a gap between two sweeps
    is time when no thread's state is known), ``cpu_s`` the sampler's own CPU time.
    """

    def __init__(
        self,
        pids: list[int],
        record_dir: str | os.PathLike[str] | None = None,
        exclude: tuple[int, ...] = (),
        interval_ms: float = 1.0,
        clock: Callable[[], float] = now_ms,
    ) -> None:
        self.pids = list(pids)
        self.record_dir = Path(record_dir) if record_dir is not None else None
        self.exclude = set(exclude)
        self.interval_ms = interval_ms
        self.clock = clock
        self.changes: dict[tuple[int, int], list[tuple[float, int]]] = {}
        self.sweeps: list[float] = []
        self.cpu_s = 0.0
        self.fallback = False
        self._fds: dict[tuple[int, int], tuple[int, bool]] = {}
        self._last: dict[tuple[int, int], int] = {}
        self._init_thread("thread-sampler")

    def _discover(self) -> None:
        if self.record_dir is not None:
            with contextlib.suppress(OSError):
                for entry in os.listdir(self.record_dir):
                    if entry.startswith("rec-") and entry.endswith(".jsonl"):
                        pid = int(entry[4:-6])
                        if pid not in self.exclude and pid not in self.pids:
                            self.pids.append(pid)
        for pid in self.pids:
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for name in tids:
                key = (pid, int(name))
                if key not in self._fds:
                    self._open(key)

    def _open(self, key: tuple[int, int]) -> None:
        pid, tid = key
        base = f"/proc/{pid}/task/{tid}/"
        try:
            fd = os.open(base + "syscall", os.O_RDONLY)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                os.pread(fd, 128, 0)  # permission is checked on read
                self._fds[key] = (fd, True)
                return
            except OSError:
                os.close(fd)
        with contextlib.suppress(OSError):
            self._fds[key] = (os.open(base + "stat", os.O_RDONLY), False)
            self.fallback = True

    def _sweep(self) -> None:
        t = self.clock()
        gone = []
        for key, (fd, syscall) in self._fds.items():
            try:
                text = os.pread(fd, 128 if syscall else 512, 0)
            except OSError:
                gone.append(key)
                continue
            if not text:
                gone.append(key)
                continue
            code = parse_syscall(text) if syscall else parse_stat_state(text)
            if self._last.get(key) != code:
                self._last[key] = code
                self.changes.setdefault(key, []).append((t, code))
        for key in gone:
            os.close(self._fds.pop(key)[0])
        self.sweeps.append(t)

    def _run(self) -> None:
        n = 0
        try:
            while not self._stop.is_set():
                if n % 4 == 0:  # threads come and go (one per connection on werkzeug)
                    self._discover()
                n += 1
                self._sweep()
                self._pause()
        finally:
            for fd, _syscall in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
            self.cpu_s = time.thread_time()
