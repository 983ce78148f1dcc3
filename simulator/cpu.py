"""Cores, processes, and threads that run programs of CPU and I/O steps.

* :class:`~.cores.Cores` (in :mod:`.cores`) -- the machine's cores, shared by every thread
  running bytecode.
* :class:`Process` -- a lane with its own :class:`~.gil.Gil` (or none when free-threaded)
  and its own module globals.
* :class:`Thread` -- runs a list of steps: ``(CPU, ms, stage)``, ``(IO, ms, stage)`` or
  ``(CALL, fn, stage)``; then calls its ``on_done`` callback, which may start the thread's
  next program.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Final, Protocol

from .core import URGENT, Env
from .cores import Cores
from .gil import Gil
from .request import Recorder, Request
from .runner import Below as Below  # the engine's listener draws with it too
from .runner import Runner

# Final: a compiled build inlines them (a plain module global is a dict lookup at each use)
CPU: Final = 0
IO: Final = 1
CALL: Final = 2

Step = tuple[int, Any, str | None]


class Host(Protocol):
    """What processes and threads use of a run: the clock, the recorder, the machine's
    settings, its cores and the run's random numbers (the engine's ``Sim`` provides them)."""

    env: Env
    rec: Recorder
    machine: dict[str, Any]
    cores: Cores
    rng: random.Random


class Process:
    """A process: its key (lane), its GIL (None when free-threaded) and its globals."""

    __slots__ = ("key", "gil", "globals", "alive", "label")

    def __init__(self, sim: Host, key: str, label: str, cooperative: bool = False) -> None:
        self.key = key
        self.label = label
        m = sim.machine
        if cooperative:
            self.gil: Gil | None = Gil(sim.env, sim.rec, key, 0.0, preemptive=False)
        elif m["gil"]:
            # A thread signalled for the GIL runs a context switch later; which waiter a
            # signal wakes is the run's (seeded) draw.
            self.gil = Gil(sim.env, sim.rec, key, m["switch_interval_ms"], preemptive=True,
                           wake_ms=m["context_switch_ms"], pick=Below(sim.rng))
        else:
            self.gil = None
        self.globals: dict[str, int] = {}
        self.alive = True


class Thread(Runner):
    """A thread (or greenlet) that runs a program of steps for a request or a loop; the
    cores and the GIL keep their fields on it (:class:`~.runner.Runner`)."""

    __slots__ = ("sim", "env", "rec", "cores", "proc", "req", "steps", "i", "on_done",
                 "token", "state", "stage", "wait_from", "cpu_scale", "_io_done_cb")

    def __init__(self, sim: Host, proc: Process, key: str) -> None:
        super().__init__(key)
        self.sim = sim
        # the run's clock, recorder and cores, held directly: read at every step
        self.env: Env = sim.env
        self.rec: Recorder = sim.rec
        self.cores: Cores = sim.cores
        self.proc = proc
        self.req: Request | None = None
        self.steps: list[Step] = []
        self.i = 0
        self.on_done: Callable[[Thread], None] | None = None
        self.token = 0
        self.state = ""
        self.stage: str | None = None
        self.wait_from = 0.0
        self.cpu_scale = 1.0 if (proc.gil is not None or sim.machine["gil"]) else \
            sim.machine["nogil_slowdown"]
        #: the bound method, made once: scheduled at every I/O step
        self._io_done_cb: Callable[[int], None] = self._io_done
        # The kernel counts a task made during the run as fully loaded
        # (init_entity_runnable_average); one there before it has long slept.
        if sim.env.now > 0.0:
            self.pelt = 1.0
            self.pelt_t = sim.env.now
        sim.rec.thread(key, "idle", None)

    # -- state --------------------------------------------------------------------------
    def _set(self, state: str) -> None:
        old = self.state
        if state != old:
            now = self.env.now
            req = self.req
            if req is not None:
                if old == "gil":
                    req.gil_wait_ms += now - self.wait_from
                elif old == "io":
                    req.io_ms += now - self.wait_from
            self.wait_from = now
            self.state = state
            self.rec.thread(self.key, state, req)

    # -- running a program ----------------------------------------------------------------
    def run(self, steps: list[Step], req: Request | None,
            on_done: Callable[[Thread], None]) -> None:
        """Run ``steps`` for ``req`` (None for server housekeeping), then ``on_done(self)``."""
        self.req = req
        self.steps = steps
        self.i = 0
        self.on_done = on_done
        self.stage = None
        self._advance()

    def _advance(self) -> None:
        steps = self.steps
        n = len(steps)
        req = self.req
        while self.i < n:
            kind, amount, stage = steps[self.i]
            if stage is not None and stage != self.stage:
                self.stage = stage
                if req is not None:
                    self.rec.stage(req, stage)
            if kind == CPU:
                ms: float = amount  # a compiled build: a machine float from here on
                if ms <= 0:
                    self.i += 1
                    continue
                work = ms * self.cpu_scale
                self.work = work
                if req is not None:
                    req.cpu_ms += work
                gil = self.proc.gil
                if gil is None or gil.holder is self or gil.acquire(self):
                    self._set("cpu")  # inlined for speed: _on_core
                    self.cores.add(self)
                else:
                    self._set("gil")
                return
            if kind == IO:
                gil = self.proc.gil
                if gil is not None and gil.holder is self:
                    gil.release(self)
                    req = self.req
                self.i += 1
                wait: float = amount
                if wait > 0:
                    self._set("io")
                    env = self.env
                    env.at(env.now + wait, self._io_done_cb, self.token, URGENT)
                    return
                continue
            # CALL: an instant action (it must not start another program on this thread,
            # but may end its request: read ``req`` again)
            self.i += 1
            amount(self)
            req = self.req
        self._finish()

    def _finish(self) -> None:
        gil = self.proc.gil
        if gil is not None and gil.holder is self:
            gil.release(self)
        on_done = self.on_done
        self.on_done = None
        self._set("idle")
        self.req = None
        if on_done is not None:
            on_done(self)

    def _on_core(self) -> None:
        self._set("cpu")
        self.cores.add(self)

    def cpu_done(self) -> None:
        """The cores say its CPU step is done (it is off its core already)."""
        self.i += 1
        self._advance()

    def cpu_next(self) -> float:
        i = self.i + 1
        steps = self.steps
        if i >= len(steps):
            return -1.0
        kind, amount, stage = steps[i]
        if kind != CPU:
            return -1.0
        ms: float = amount
        gil = self.proc.gil
        if ms <= 0 or (gil is not None and gil.holder is not self):
            return -1.0
        # what _advance does for this step, less the trip off the core and back
        self.i = i
        req = self.req
        if stage is not None and stage != self.stage:
            self.stage = stage
            if req is not None:
                self.rec.stage(req, stage)
        work = ms * self.cpu_scale
        self.work = work
        if req is not None:
            req.cpu_ms += work
        return work

    def _io_done(self, token: int) -> None:
        if token == self.token:
            self._advance()

    # -- GIL callbacks --------------------------------------------------------------------
    def preempt(self) -> None:
        """The GIL was taken away mid-burst: leave the core, wait for the GIL again."""
        self.cores.remove(self)
        self._set("gil")

    def gil_granted(self) -> None:
        """It has taken the GIL it waited for (the OS's wake-up came before, as time the
        GIL was free, not as work): back on a core."""
        self._on_core()

    # -- being killed -----------------------------------------------------------------------
    def kill(self) -> None:
        """The process died under this thread: drop everything it was doing."""
        self.token += 1
        if self.state == "cpu":
            self.cores.remove(self)
        gil = self.proc.gil
        if gil is not None:
            gil.release(self)
        self.on_done = None
        self.req = None
        self._set("dead")
