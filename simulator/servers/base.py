"""What every server model shares: :class:`Server`, the accept loop, lane slots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..context import Sim
from ..core import URGENT
from ..cpu import CPU, Step, Thread
from ..request import Request

#: Linux's base slice (``sysctl_sched_base_slice``) in ms, before it is scaled by
#: 1 + log2 of the CPUs (at most 8): 1.5 ms on two cores.
BASE_SLICE_MS = 0.75

#: ``handle(thread, request)``: what a thread does with a connection it has accepted.
Handler = Callable[[Thread, Request], None]


def wake_delay(sim: Sim) -> float:
    """How long a thread asleep in ``select``/``epoll`` takes to run once a connection wakes
    it, in ms: ``costs.wakeup_ms`` (a context switch and the return to Python) times a
    seeded jitter (0.5x, then an exponential tail; 1x on average), plus, when every core is
    busy, a wait for a core of up to one scheduler slice (then the running thread is
    preempted)."""
    base: float = sim.costs["wakeup_ms"]
    rng = sim.rng
    delay = base * (0.5 + rng.expovariate(2.0)) if base > 0.0 else 0.0
    cores = sim.cores
    if not cores.idle:
        slice_ms = BASE_SLICE_MS * (1 + (min(cores.cores, 8).bit_length() - 1))
        delay += rng.uniform(0.0, slice_ms)
    return delay


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
    later.

    Who wins a connection is a race. A thread that comes back to the loop while a
    connection is queued (it just finished a request, or a gthread main thread just handed
    one to its pool) is running already and calls ``accept()`` at once. A thread asleep in
    ``select``/``epoll`` is woken with every other sleeper on the listener (no
    ``EPOLLEXCLUSIVE``) and runs only after its :func:`wake_delay`. The losers find the
    queue empty (EAGAIN) and sleep again, so a running worker takes most of a burst while
    its siblings are still waking up."""

    __slots__ = ("sim", "th", "handle", "ready", "listen", "steps", "_woken_cb")

    def __init__(self, sim: Sim, th: Thread, handle: Handler,
                 ready: Callable[[], bool] | None = None) -> None:
        self.sim = sim
        self.th = th
        self.handle = handle
        self.ready = ready
        self.listen = sim.listen
        cost = sim.costs["accept_ms"]
        self.steps: list[Step] | None = [(CPU, cost, None)] if cost > 0 else None
        #: the bound method, made once: handed to the listener at every wait
        self._woken_cb: Callable[[], None] = self.woken

    def wait(self, _: Any = None) -> None:
        if not self.th.proc.alive:
            return
        if self.ready is not None and not self.ready():
            return
        if self.listen.queue:
            self._accept()  # running already: accept() before any sleeper wakes
        else:
            self.listen.wait_readable(self._woken_cb)

    def woken(self) -> None:
        """The kernel wakes this sleeping thread: it runs after its wake-up latency."""
        delay = wake_delay(self.sim)
        if delay > 0.0:
            self.sim.env.after(delay, self._awake, None, URGENT)
        else:
            self._awake(None)

    def _awake(self, _: Any) -> None:
        if self.th.proc.alive:
            self._accept()

    def _accept(self) -> None:
        if self.steps is None:
            self.accepted(self.th)
        else:
            self.th.run(self.steps, None, self.accepted)

    def accepted(self, _: Thread) -> None:
        if self.ready is not None and not self.ready():
            return  # it stopped accepting meanwhile (full, or leaving): the owner re-arms
        req = self.listen.take()
        if req is None:  # another thread won the race
            self.wait()
            return
        self.sim.accepted(req, self.th)
        self.handle(self.th, req)
