"""The machine's cores, shared by every thread that is running bytecode (it holds its
process's GIL, or there is no GIL): with more runnable threads than cores each gets
``cores / n`` of a core (processor sharing), less a context-switch cost.
"""

from __future__ import annotations

from typing import Protocol

from .core import Env


class Runner(Protocol):
    """What the cores need of a thread: the CPU work it still has to do, since when it was
    last charged, and a way to (re)schedule the end of its burst."""

    work: float
    since: float
    token: int

    def schedule_cpu_done(self, rate: float) -> None: ...


class Cores:
    """Processor sharing of ``cores`` among the threads running bytecode."""

    __slots__ = ("env", "cores", "switch_ms", "running", "rate")

    def __init__(self, env: Env, cores: int, context_switch_ms: float) -> None:
        self.env = env
        self.cores = cores
        self.switch_ms = context_switch_ms
        self.running: list[Runner] = []
        self.rate = 1.0

    def _rate_for(self, n: int) -> float:
        if n <= self.cores:
            return 1.0
        # Linux CFS: a time slice of 6 ms shared by the runnable threads of a core,
        # at least 0.75 ms; every slice costs one context switch.
        per_core = n / self.cores
        slice_ms = max(0.75, 6.0 / per_core)
        return (self.cores / n) * slice_ms / (slice_ms + self.switch_ms)

    def _account(self) -> None:
        """Charge every running thread for the work done since it was last charged."""
        now = self.env.now
        rate = self.rate
        for th in self.running:
            th.work -= (now - th.since) * rate
            th.since = now

    def add(self, th: Runner) -> None:
        self._account()
        self.running.append(th)
        th.since = self.env.now
        self._rerate(th)

    def remove(self, th: Runner) -> None:
        self._account()
        self.running.remove(th)
        th.token += 1  # cancels its pending completion
        self._rerate(None)

    def _rerate(self, new: Runner | None) -> None:
        rate = self._rate_for(len(self.running))
        if rate == self.rate:
            if new is not None:
                new.schedule_cpu_done(rate)
            return
        self.rate = rate
        for th in self.running:
            th.schedule_cpu_done(rate)
