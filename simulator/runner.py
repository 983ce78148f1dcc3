"""What the cores and the GIL hold of a thread, and a core's run queue: the classes below both.

:class:`Runner` is the base of :class:`~.cpu.Thread`: the fields :mod:`.cores` and
:mod:`.gil` keep for a thread, and the three calls they make back to it. It is a concrete
class, not a protocol, so that a compiled build reads those fields and makes those calls
natively (a protocol's attributes are looked up by name at every use).
:class:`Core` lives here for the same reason: a thread keeps the core it is on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .request import Request


class Core:
    """One core: its run queue, virtual clock and pending completion (see :mod:`.cores`)."""

    __slots__ = ("index", "run", "heap", "v", "t", "rate", "token", "firing")

    def __init__(self, index: int) -> None:
        self.index = index
        self.run: list[Runner] = []
        self.heap: list[tuple[float, int, Runner]] = []  # (vfin, seat, thread), lazily pruned
        self.v = 0.0  # virtual time: CPU ms each thread of this core has had
        self.t = 0.0  # when v was last brought up to date
        self.rate = 1.0  # CPU ms per ms each of its threads gets
        self.token = 0  # the pending completion event that still counts
        self.firing = False  # completing bursts: reschedule once, at the end


class Runner:
    """A thread as the cores and the GIL see it.

    The cores keep ``core``, ``seat``, ``vfin``, ``last_core``, ``left_at`` and the load
    signal ``pelt`` (as of ``pelt_t``); ``work`` is
    the CPU time (ms) its burst still needs: set before :meth:`.Cores.add`, brought up to
    date by :meth:`.Cores.remove`. The GIL keeps ``gil_ticket`` (bumped whenever the
    thread's timed wait or wake-up is over: stale timers check it) and ``gil_saved``
    (``switch_number`` when its current timed wait began).
    """

    __slots__ = ("key", "work", "core", "last_core", "left_at", "seat", "vfin", "gil_ticket",
                 "gil_saved", "job", "job_done", "job_responds", "pelt", "pelt_t")

    def __init__(self, key: str) -> None:
        self.key = key
        self.work = 0.0
        self.core: Core | None = None
        self.last_core: Core | None = None
        self.left_at = -1.0
        self.seat = 0
        self.vfin = 0.0
        self.gil_ticket = 0
        self.gil_saved = 0
        #: the kernel's runnable average of the thread (PELT: the share of recent time it was
        #: runnable, each millisecond weighing 2^(-1/32) as much as the next), as it was at
        #: ``pelt_t``; the cores keep it (:meth:`.Cores.runnable`)
        self.pelt = 0.0
        self.pelt_t = 0.0
        #: the request the engine's ``serve`` gave it, what to call when it is served and
        #: whether the client has its response then (see ``engine.Sim.serve``)
        self.job: Request | None = None
        self.job_done: Callable[[Any], None] | None = None
        self.job_responds = True

    def cpu_done(self) -> None:
        """Its burst is done (it has already left the core)."""
        raise NotImplementedError

    def cpu_next(self) -> float:
        """Its burst is done and it is alone on its core: if what it does next is another
        CPU burst it starts at once (it keeps the GIL), start it and return its work, the
        thread staying on the core; otherwise -1.0, nothing done (:meth:`cpu_done` follows)."""
        return -1.0

    def preempt(self) -> None:
        """The GIL was taken away mid-burst (a drop request)."""
        raise NotImplementedError

    def gil_granted(self) -> None:
        """This waiting thread has taken the GIL."""
        raise NotImplementedError


class Scripted(Runner):
    """A :class:`Runner` whose three calls are the functions it is given (each called with
    the runner; None: nothing happens), to drive the cores or a GIL on their own.

    A compiled build's cores and GIL take only a :class:`Runner` or a subclass compiled
    with it, and interpreted code cannot subclass a compiled class: a stand-in thread made
    in Python is one of these.
    """

    __slots__ = ("on_cpu_done", "on_preempt", "on_granted")

    def __init__(self, key: str, work: float = 0.0,
                 on_cpu_done: Callable[[Scripted], None] | None = None,
                 on_preempt: Callable[[Scripted], None] | None = None,
                 on_granted: Callable[[Scripted], None] | None = None) -> None:
        super().__init__(key)
        self.work = work
        self.on_cpu_done = on_cpu_done
        self.on_preempt = on_preempt
        self.on_granted = on_granted

    def cpu_done(self) -> None:
        if self.on_cpu_done is not None:
            self.on_cpu_done(self)

    def preempt(self) -> None:
        if self.on_preempt is not None:
            self.on_preempt(self)

    def gil_granted(self) -> None:
        if self.on_granted is not None:
            self.on_granted(self)


class Below:
    """``rng.randrange(n)`` for an ``n > 0``, the same number drawn the same way, as compiled
    code when the build is (``random.py`` is interpreted: about a microsecond a draw, and
    the GIL, the cores and the listener draw at most wake-ups).

    That way is ``Random._randbelow_with_getrandbits`` (CPython 3.11 to 3.13): ``getrandbits``
    of ``n``'s bit length until the number is below ``n``. A generator that draws another way
    (a subclass with its own ``random()`` and no ``getrandbits``) is asked itself.
    """

    __slots__ = ("rng", "same")

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.same = getattr(type(rng), "_randbelow", None) is getattr(
            random.Random, "_randbelow_with_getrandbits", False)

    def __call__(self, n: int) -> int:
        rng = self.rng
        if not self.same or n <= 0:
            return rng.randrange(n)  # (and its error for an empty range)
        k = n.bit_length()
        r = rng.getrandbits(k)
        while r >= n:
            r = rng.getrandbits(k)
        return r
