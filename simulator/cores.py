"""The machine's cores: a run queue per core, shared within the core, balanced between cores.

Every thread that is running bytecode (it holds its process's GIL, or there is no GIL) sits
on one core's run queue, as Linux's scheduler keeps it (``kernel/sched/fair.c``):

* **Placement** (``select_task_rq_fair``): a thread that keeps running (one CPU step after
  another, no blocking call between) stays on its core. A thread that wakes goes to its
  previous core if that core is idle, else to an idle core. With no core idle the kernel
  does not look for the shortest queue at a wake-up: it picks the waker's core or the
  thread's previous one (``wake_affine``); the waker is not modelled, so that is a seeded
  draw among the cores. A thread that never ran (a forked child) goes to the shortest
  queue (``sched_balance_find_dst_cpu``; ties drawn from the seed).
* **Sharing within a core**: the ``k`` threads of a core each run at ``1/k`` of it, less a
  context switch per time slice (CFS: a 6 ms period shared by the core's threads, at least
  0.75 ms each).
* **Balancing** (``sched_balance_newidle``, ``sched_balance_rq``): a core that goes idle
  pulls a thread at once from the longest queue. While every core is busy, a core balances
  only every ``max(2, cores) * BUSY_FACTOR`` ms (the domain's interval ``sd->balance_interval``
  times ``sd->busy_factor``: 32 ms on two cores), doubled after a pass that moved nothing
  (up to ``sd->max_interval``, twice that: 64 ms), reset once a pass moves a thread. A pass
  moves nothing until the longest queue is *overloaded* (``group_is_overloaded``): more
  threads than cores, and its threads' runnable averages (PELT: the share of recent time
  each was runnable, a millisecond ago weighing ``2^(-1/32)`` of now) add up to more than
  ``imbalance_pct`` (117 %) of a core. Then it moves a thread while the load it carries is
  no more than the imbalance, half the two queues' difference (``calculate_imbalance``),
  a thread's load counting half as much after each failed pass (``nr_balance_failed``).
  So a thread that slept a long while (a worker waiting for connections) wakes with a load
  near nothing, and a 3-1 split of four such workers on two cores lasts until the first
  pass after their loads have grown: the first pass, at the next tick, finds nothing
  overloaded and doubles the interval, so the lone thread has its core to itself for about
  64 ms and finishes well before the others, though the last one finishes when even sharing
  would have. Two on one core and one on the other trade places now and then (a pass after
  a failed one moves one of the two).

Each core keeps a virtual clock that advances at the rate each of its threads gets, so a
thread's burst ends at a fixed virtual time (``vfin``) that no later arrival or departure
changes: a core has one pending completion event, its earliest, and a change on one core
reschedules only that core.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappop as _heappop
from heapq import heappush as _heappush
from math import exp, log
from typing import Final

from .core import URGENT, Env
from .request import Recorder
from .runner import Below, Core, Runner
from .trace import Event

#: Linux's ``sd->busy_factor``: a busy core balances its queue against the others this
#: many times less often than an idle one (every ``max(2, cores) * 16`` ms here).
BUSY_FACTOR = 16
#: ``sd->imbalance_pct`` of a core's own domain: a queue is overloaded past 117 % runnable.
OVERLOADED = 1.17
#: PELT's decay: a signal halves in 32 ms (``exp(-PELT_RATE * ms)`` of it is left).
PELT_RATE: Final = log(2.0) / 32.0
#: The scheduler tick (HZ=250): the first balance pass of a busy spell comes within one.
TICK_MS = 4.0

# Final: a compiled build holds them in C variables (an imported name is a dict lookup)
heappush: Final = _heappush
heappop: Final = _heappop


def _runnable_at(th: Runner, now: float) -> float:
    """``th``'s runnable average at ``now``, it having been runnable since ``pelt_t``."""
    return 1.0 - (1.0 - th.pelt) * exp(-PELT_RATE * (now - th.pelt_t))


def _ran(th: Runner, now: float) -> None:
    """``th`` was runnable from ``th.pelt_t`` to ``now``: bring its average up to date."""
    if now != th.pelt_t:
        th.pelt = _runnable_at(th, now)
        th.pelt_t = now


class Cores:
    """The machine's ``cores``, each with its run queue (see the module docstring)."""

    __slots__ = ("env", "rec", "core", "cores", "switch_ms", "rng", "draw", "balance_ms", "n",
                 "idle", "_seat", "_balance_token", "_balancing", "_interval", "_failed",
                 "_fire_cb")

    def __init__(self, env: Env, cores: int, context_switch_ms: float,
                 rng: random.Random, rec: Recorder | None = None) -> None:
        self.env = env
        self.rec = rec
        self.core = [Core(i) for i in range(cores)]
        self.cores = cores
        self.switch_ms = context_switch_ms
        self.rng = rng
        #: ``rng.randrange``, compiled when the build is
        self.draw = Below(rng)
        self.balance_ms = float(max(2, cores) * BUSY_FACTOR)
        self.n = 0  # threads on cores
        self.idle = cores  # cores with nothing to run
        self._seat = 0
        self._balance_token = 0
        self._balancing = False
        self._interval = self.balance_ms  # the busy balance interval now (doubles, resets)
        self._failed = 0  # nr_balance_failed
        #: the bound method, made once: scheduled at every burst
        self._fire_cb: Callable[[tuple[Core, int]], None] = self._fire

    def _rate_for(self, k: int) -> float:
        if k <= 1:
            return 1.0
        # Linux CFS: a time slice of 6 ms shared by the runnable threads of a core,
        # at least 0.75 ms; every slice costs one context switch.
        slice_ms = max(0.75, 6.0 / k)
        return slice_ms / (k * (slice_ms + self.switch_ms))

    # -- one core ---------------------------------------------------------------------------
    def _sync(self, c: Core) -> None:
        now = self.env.now
        c.v += (now - c.t) * c.rate
        c.t = now

    def _join(self, c: Core, th: Runner) -> None:
        """Put ``th`` (with ``th.work`` left to do) on ``c``; ``c`` must be up to date."""
        if not c.run:
            self.idle -= 1
        c.run.append(th)
        self.n += 1
        th.core = c
        self._seat += 1
        th.seat = self._seat
        th.vfin = c.v + (th.work if th.work > 0.0 else 0.0)
        heappush(c.heap, (th.vfin, th.seat, th))
        c.rate = self._rate_for(len(c.run))

    def _busy_period(self, c: Core, th: Runner, work: float) -> None:
        """``c`` starts a new busy period with ``th`` alone on it, ``work`` ms to do: its
        virtual clock from zero, ``th``'s burst its one completion."""
        now = self.env.now
        c.v = 0.0
        c.t = now
        c.rate = 1.0
        self._seat += 1
        th.seat = seat = self._seat
        th.vfin = work
        c.heap = [(work, seat, th)]
        if not c.firing:
            c.token += 1
            self.env.at(now + work, self._fire_cb, (c, c.token), URGENT)

    def _leave(self, c: Core, th: Runner) -> None:
        """Take ``th`` off ``c`` (its heap entry goes stale); ``c`` must be up to date."""
        c.run.remove(th)
        self.n -= 1
        if not c.run:
            self.idle += 1
        th.core = None
        th.last_core = c
        th.left_at = self.env.now
        _ran(th, self.env.now)
        th.work = th.vfin - c.v
        c.rate = self._rate_for(len(c.run))

    def _schedule(self, c: Core) -> None:
        """(Re)schedule ``c``'s one completion event: its earliest burst's end."""
        heap = c.heap
        while heap:
            vfin, seat, th = heap[0]
            if th.core is c and th.seat == seat:
                c.token += 1
                delay = (vfin - c.v) / c.rate
                self.env.at(c.t + (delay if delay > 0.0 else 0.0), self._fire_cb,
                            (c, c.token), URGENT)
                return
            heappop(heap)
        c.token += 1  # nothing to run: no completion counts

    def _fire(self, arg: tuple[Core, int]) -> None:
        c, token = arg
        if token != c.token:
            return
        run = c.run
        if len(run) == 1:  # inlined for speed: a thread alone on its core is done
            th = run[0]
            work = th.cpu_next()
            if work >= 0.0:
                # Straight into its next burst on this core: as if it had left and come
                # back (a new busy period), without the trip.
                now = self.env.now
                th.left_at = now
                _ran(th, now)
                self._busy_period(c, th, work)
                return
            run.clear()
            c.heap.clear()
            self.n -= 1
            self.idle += 1
            now = self.env.now
            c.v = th.vfin
            c.t = now
            th.core = None
            th.last_core = c
            th.left_at = now
            _ran(th, now)
            th.work = 0.0
            c.firing = True
            th.cpu_done()  # it may come straight back, to this same core
            c.firing = False
            if run:
                self._schedule(c)
            elif self.n > self.cores - self.idle:
                self._pull(c)
            return
        self._sync(c)
        heap = c.heap
        done: list[Runner] = []
        limit = c.v
        while heap:
            vfin, seat, th = heap[0]
            if th.core is not c or th.seat != seat:
                heappop(heap)
                continue
            if done and vfin > limit + 1e-9:
                break
            heappop(heap)
            if vfin > limit:  # the earliest is due now, whatever rounding says
                limit = c.v = vfin
            done.append(th)
        for th in done:
            self._leave(c, th)
            th.work = 0.0
        c.firing = True
        for th in done:
            th.cpu_done()  # it may come straight back, to this same core
        c.firing = False
        self._settle(c)

    def _settle(self, c: Core) -> None:
        """After a change on ``c``: reschedule it, let idle cores pull, watch the balance."""
        if not c.run and self.n > self.cores - self.idle:
            self._pull(c)
        if not c.firing:
            self._schedule(c)
        if self.n > self.cores and not self._balancing:
            # A busy spell begins: the next pass is due at the next tick or so.
            self._balancing = True
            self._balance_token += 1
            self.env.after(self.rng.random() * TICK_MS, self._balance, self._balance_token,
                           URGENT)

    # -- the scheduler's entry points ---------------------------------------------------------
    def add(self, th: Runner) -> None:
        """``th`` starts a CPU burst of ``th.work`` ms."""
        last = th.last_core
        now = self.env.now
        if th.pelt_t != now:  # it slept (a thread that never left its core has pelt_t now)
            th.pelt *= exp(-PELT_RATE * (now - th.pelt_t))
            th.pelt_t = now
        stayed = last is not None and th.left_at == now
        if last is not None and (stayed or not last.run):
            c = last  # it never left (a CPU step right after another), or its core is idle
        elif self.idle:
            c = next(x for x in self.core if not x.run)
        elif last is not None:
            # No idle core: the kernel wakes it on its waker's core or its own previous
            # one, whichever wake_affine prefers, without comparing queue lengths; the
            # waker is not modelled, so the core is a seeded draw.
            c = self.core[self.draw(self.cores)]
        else:
            c = self._shortest()
        if not c.run:  # an idle core starts a new busy period
            c.run.append(th)
            self.n += 1
            self.idle -= 1
            th.core = c
            self._busy_period(c, th, th.work if th.work > 0.0 else 0.0)
            return
        self._sync(c)
        self._join(c, th)
        if len(c.run) > 1 and not stayed and self.rec is not None:
            self._record(th, c, ",".join(x.key for x in c.run if x is not th))
        self._settle(c)

    def remove(self, th: Runner) -> None:
        """``th`` leaves its core before its burst is done (it lost the GIL, or died);
        ``th.work`` is what it still had to do."""
        c = th.core
        if c is None:
            return
        self._sync(c)
        if len(c.run) == 1:  # inlined for speed: its core goes idle
            c.run.clear()
            c.heap.clear()
            self.n -= 1
            self.idle += 1
            th.core = None
            th.last_core = c
            th.left_at = self.env.now
            _ran(th, self.env.now)
            th.work = th.vfin - c.v
            c.token += 1  # its completion no longer counts
            if self.n > self.cores - self.idle:
                self._pull(c)
            return
        self._leave(c, th)
        self._settle(c)

    # -- balancing ------------------------------------------------------------------------------
    def _shortest(self) -> Core:
        best = min(len(x.run) for x in self.core)
        ties = [x for x in self.core if len(x.run) == best]
        return ties[self.draw(len(ties))] if len(ties) > 1 else ties[0]

    def _move(self, src: Core, dst: Core, th: Runner | None = None) -> None:
        """Migrate ``th`` (default: a seeded pick) from ``src`` to ``dst``."""
        if th is None:
            th = src.run[self.draw(len(src.run))] if len(src.run) > 1 else src.run[0]
        self._sync(src)
        self._sync(dst)
        self._leave(src, th)
        self._join(dst, th)
        if self.rec is not None:
            self._record(th, dst, f"moved from core {src.index}")
        if not src.firing:
            self._schedule(src)
        if not dst.firing:
            self._schedule(dst)

    def _pull(self, idle: Core) -> None:
        """``idle`` has nothing to run: it pulls a thread from the longest queue."""
        busiest = max(self.core, key=lambda x: len(x.run))
        if len(busiest.run) >= 2:
            self._move(busiest, idle)

    def runnable(self, th: Runner) -> float:
        """``th``'s runnable average now, in cores (it is on a core)."""
        return _runnable_at(th, self.env.now)

    def _balance(self, token: int) -> None:
        """A periodic pass (see the module docstring): the shortest queue pulls from the
        longest if that one is overloaded and a thread's load fits the imbalance."""
        if token != self._balance_token:
            return
        self._balancing = False
        moved = False
        while True:
            longest = max(self.core, key=lambda x: len(x.run))
            shortest = min(self.core, key=lambda x: len(x.run))
            if len(longest.run) - len(shortest.run) < 1 or len(longest.run) < 2:
                self._failed = 0  # balanced
                break
            busiest = sum(self.runnable(th) for th in longest.run)
            if busiest <= OVERLOADED:
                self._failed = 0  # not overloaded yet: nothing to do
                break
            local = sum(self.runnable(th) for th in shortest.run)
            th = longest.run[self.draw(len(longest.run))]
            # (equal loads are a knife-edge, as in the kernel: whose is a hair larger)
            if self.runnable(th) / (1 << min(self._failed, 16)) > (busiest - local) / 2 + 1e-9:
                self._failed += 1
                break
            self._move(longest, shortest, th)
            self._failed = 0
            moved = True
        self._interval = self.balance_ms if moved else min(self._interval * 2,
                                                           self.balance_ms * 2)
        if self.n > self.cores:
            self._balancing = True
            self._balance_token += 1
            self.env.after(self._interval, self._balance, self._balance_token, URGENT)

    def _record(self, th: Runner, c: Core, ref: str) -> None:
        """A ``core`` event: ``th`` now shares core ``c`` with ``ref`` (the other threads'
        keys, comma-separated), or was moved there (``"moved from core i"``)."""
        assert self.rec is not None
        self.rec.events.append(Event(self.env.now, "core", th.key, c.index, ref))
