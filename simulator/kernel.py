"""The kernel side of a listening socket: the accept queue and SYN retransmits."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any


def syn_offsets_ms(schedule: str, retries: int) -> list[float]:
    """When a client (re)sends its SYN, in ms after the first one, and when it gives up.

    Returns ``retries + 1`` offsets: the retransmits, then the moment ``connect()`` fails.
    ``linear`` is Linux >= 6.5 (``tcp_syn_linear_timeouts = 4``): 1, 2, 3, 4, 5 s, then
    doubling gaps (7, 11, 19 s ...). ``exponential`` is older kernels: 1, 3, 7, 15, 31 s ...
    """
    out: list[float] = []
    t = 0.0
    gap = 1000.0
    for i in range(retries + 1):
        if schedule == "linear":
            if i >= 5:
                gap *= 2
        elif i > 0:
            gap *= 2
        t += gap
        out.append(t)
    return out


def ack_retry_offsets_ms(rto_min_ms: float, synack_retries: int) -> list[float]:
    """When a connection whose final ACK was dropped (accept queue full) tries again, in ms
    after the handshake; the last entry is when the kernel gives up on it.

    Two things retry: the client, which thinks it is connected, retransmits its request
    (the first RTO is ``rto_min``, then it doubles: 200, 600, 1400 ms ...), and the server
    re-sends its SYN-ACK (1, 3, 7, 15, 31 s), which the client answers with a new ACK.
    Whichever finds room in the queue first completes the connection.
    """
    expires = 1000.0 * (2 ** (synack_retries + 1) - 1)
    times = set()
    t = gap = rto_min_ms
    while t < expires:
        times.add(t)
        gap *= 2
        t += gap
    times.update(1000.0 * (2 ** (k + 1) - 1) for k in range(synack_retries))
    return sorted(times) + [expires]


class ListenSocket:
    """A listening socket's accept queue.

    It holds ``min(backlog, somaxconn) + 1`` complete connections (Linux's
    ``sk_acceptq_is_full`` compares with ``>``). A SYN that finds it full is dropped, not
    refused: the client retransmits later.
    """

    __slots__ = ("capacity", "queue", "_waiting", "_on_depth", "_pick")

    def __init__(
        self,
        backlog: int,
        somaxconn: int,
        on_depth: Callable[[int], None],
        pick: Callable[[int], int],
    ) -> None:
        self.capacity = min(backlog, somaxconn) + 1
        self.queue: deque[Any] = deque()
        self._waiting: list[Callable[[], None]] = []
        self._on_depth = on_depth
        self._pick = pick

    def offer(self, conn: Any) -> bool:
        """A SYN arrives: queue the connection, or return False if the queue is full."""
        if len(self.queue) >= self.capacity:
            return False
        self.queue.append(conn)
        self._on_depth(len(self.queue))
        if self._waiting:
            waiting = self._waiting
            self._waiting = []
            m = len(waiting)
            # Which waiting acceptor wins is up to the kernel: start at a random one.
            k = self._pick(m) if m > 1 else 0
            for n in range(m):
                if not self.queue:
                    # Accepted already (at no cost): the rest would find EAGAIN and wait
                    # again at this same instant, so they simply keep waiting.
                    rest = self._waiting
                    for j in range(n, m):
                        rest.append(waiting[(k + j) % m])
                    break
                waiting[(k + n) % m]()
        return True

    def take(self) -> Any:
        """``accept()``: the oldest queued connection, or None (EAGAIN)."""
        if not self.queue:
            return None
        conn = self.queue.popleft()
        self._on_depth(len(self.queue))
        return conn

    def wait_readable(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` once when a connection is queued (now, if one already is)."""
        if self.queue:
            wake()
        else:
            self._waiting.append(wake)
