"""Sample a listening socket's accept-queue depth from ``/proc/net/tcp``.

For a socket in LISTEN state the kernel reports the number of complete connections waiting
for ``accept()`` as ``rx_queue`` (``sk_ack_backlog``, what ``ss -lnt`` shows as Recv-Q; the
limit, ``ss``'s Send-Q, is not in this file). The kernel lists listening sockets before all
others, so a sample reads only the head of the file, however many connections are open.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .recorder import now_ms

_LISTEN = "0A"


def listen_queue(port: int) -> int | None:
    """Accept-queue depth of the listener on ``port`` (IPv4, then IPv6), or None."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                fh.readline()  # header
                for line in fh:
                    fields = line.split()
                    if len(fields) < 5 or fields[3] != _LISTEN:
                        break  # listeners come first: the rest are connections
                    if fields[1].endswith(want):
                        return int(fields[4].split(":")[1], 16)
        except OSError:
            continue
    return None


def listening_ports() -> set[int]:
    """Every TCP port with a socket in LISTEN state (IPv4 and IPv6)."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                fh.readline()
                for line in fh:
                    fields = line.split()
                    if len(fields) < 4 or fields[3] != _LISTEN:
                        break
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


class BacklogSampler:
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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backlog-sampler", daemon=True)

    def start(self) -> BacklogSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        last = -1
        while not self._stop.is_set():
            depth = listen_queue(self.port)
            self.polls += 1
            if depth is not None and depth != last:
                self.samples.append((self.clock(), depth))
                last = depth
            self._stop.wait(self.interval_ms / 1000.0)
        self.cpu_s = time.thread_time()
