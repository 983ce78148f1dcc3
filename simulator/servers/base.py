"""What every server model shares: :class:`Server`, the accept loop, lane slots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..context import Sim
from ..cpu import CPU, Step, Thread
from ..request import Request

#: ``handle(thread, request)``: what a thread does with a connection it has accepted.
Handler = Callable[[Thread, Request], None]


class Slots:
    """Lane names for things that come and go (threads per connection, forked children):
    a new one takes the lowest free number, so the timeline stays compact."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.free: list[int] = []
        self.next = 1

    def take(self) -> str:
        if self.free:
            self.free.sort()
            n = self.free.pop(0)
        else:
            n = self.next
            self.next += 1
        return f"{self.prefix}{n}"

    def give(self, name: str) -> None:
        self.free.append(int(name[len(self.prefix):]))


class Server:
    """A server model: :meth:`start` creates its processes and threads and sets their
    accept loops going; :meth:`Sim.serve` runs each accepted request's lifecycle."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.costs = sim.costs

    def start(self) -> None:
        raise NotImplementedError

    def acceptor(self, th: Thread, handle: Handler,
                 ready: Callable[[], bool] | None = None) -> Acceptor:
        return Acceptor(self.sim, th, handle, ready)


class Acceptor:
    """A thread's accept loop: wait until the listener is readable, ``accept()`` (a little
    CPU, so it needs the GIL), then ``handle(thread, request)``. ``ready()``, if given, says
    whether the thread may accept now; when it says no, the owner calls :meth:`wait` again
    later. Several acceptors may wake for one connection: the losers find the queue empty
    (EAGAIN) and wait again, like gunicorn workers on a shared socket."""

    __slots__ = ("sim", "th", "handle", "ready", "listen", "steps")

    def __init__(self, sim: Sim, th: Thread, handle: Handler,
                 ready: Callable[[], bool] | None = None) -> None:
        self.sim = sim
        self.th = th
        self.handle = handle
        self.ready = ready
        self.listen = sim.listen
        cost = sim.costs["accept_ms"]
        self.steps: list[Step] | None = [(CPU, cost, None)] if cost > 0 else None

    def wait(self, _: Any = None) -> None:
        if not self.th.proc.alive:
            return
        if self.ready is not None and not self.ready():
            return
        self.listen.wait_readable(self.woken)

    def woken(self) -> None:
        if self.th.proc.alive:
            if self.steps is None:
                self.accepted(self.th)
            else:
                self.th.run(self.steps, None, self.accepted)

    def accepted(self, _: Thread) -> None:
        req = self.listen.take()
        if req is None:  # another thread won the race
            self.wait()
            return
        self.sim.accepted(req, self.th)
        self.handle(self.th, req)
