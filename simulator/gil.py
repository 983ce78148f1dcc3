"""CPython's GIL, one per process (and, non-preemptive, a gevent worker's hub).

A thread that wants it while another holds it waits; if the holder has not let go within
the switch interval, a drop request forces the holder to hand it over at its next check,
and the holder queues behind (CPython's ``FORCE_SWITCHING``). A thread lets go of it at
every blocking call. Non-preemptive, it also models gevent's hub: a greenlet runs until it
blocks.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from .core import URGENT, Env
from .request import Recorder


class Waiter(Protocol):
    """What the GIL needs of a thread: its name, and two callbacks."""

    @property
    def key(self) -> str: ...

    def preempt(self) -> None:
        """The GIL was taken away mid-burst."""

    def gil_granted(self) -> None:
        """The GIL was handed to this waiting thread."""


class Gil:
    """One process's GIL (or, with ``preemptive=False``, a gevent worker's hub)."""

    __slots__ = ("env", "rec", "proc_key", "holder", "waiters", "switches", "_timer_for",
                 "preemptive", "interval", "granted_at")

    def __init__(self, env: Env, rec: Recorder, proc_key: str, interval: float,
                 preemptive: bool) -> None:
        self.env = env
        self.rec = rec
        self.proc_key = proc_key
        self.holder: Waiter | None = None
        self.waiters: deque[Waiter] = deque()
        self.switches = 0
        self._timer_for = -1
        self.preemptive = preemptive
        self.interval = interval
        self.granted_at = 0.0

    def acquire(self, th: Waiter) -> bool:
        """Take the GIL if free (True); otherwise queue and return False."""
        if self.holder is None:
            self._grant(th)
            return True
        self.waiters.append(th)
        self._arm()
        return False

    def _grant(self, th: Waiter) -> None:
        self.holder = th
        self.switches += 1
        self.granted_at = self.env.now
        self.rec.gil(self.proc_key, th.key)
        if self.waiters:
            self._arm()

    def _arm(self) -> None:
        if self.preemptive and self._timer_for != self.switches:
            self._timer_for = self.switches
            self.env.after(self.interval, self._timeout, self.switches, URGENT)

    def _timeout(self, switches: int) -> None:
        # A waiter waited a whole interval without seeing a switch: drop request.
        if switches != self.switches or self.holder is None or not self.waiters:
            return
        old = self.holder
        old.preempt()
        self.waiters.append(old)
        self.holder = None
        self._grant_next(forced=True)

    def release(self, th: Waiter) -> None:
        """The holder lets go (a blocking call, or the thread is done)."""
        if self.holder is not th:
            if th in self.waiters:
                self.waiters.remove(th)
            return
        self.holder = None
        if self.waiters:
            self._grant_next(forced=False)
        else:
            self.rec.gil(self.proc_key, "")

    def _grant_next(self, forced: bool) -> None:
        th = self.waiters.popleft()
        self._grant(th)
        th.gil_granted()
