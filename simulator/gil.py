"""CPython's GIL, one per process (``Python/ceval_gil.c``), and gevent's hub.

The GIL, as ``take_gil`` and ``drop_gil`` run it (CPython 3.11):

* A thread that wants the GIL takes it at once if it is free -- even while a thread that
  was signalled for it is still waking up (a thread back from I/O *barges* in).
* Otherwise it waits on a condition variable, each waiter with its *own* timed wait of the
  switch interval. When that wait times out, the GIL is still held and no switch happened
  during the wait (``switch_number`` unchanged), it sets the drop request; either way it
  waits again, a fresh interval from then. A wait that ends to find the GIL free takes it.
* The holder lets go at every blocking call, and at its next eval-breaker check once a
  drop request is set (at once, here). Letting go signals the condition variable: *one*
  waiter wakes, whichever the OS picks (here a seeded uniform choice, never the one that
  waited longest), and it takes the GIL only once the OS has run it, a context switch
  later. A thread that barged in meanwhile keeps it, and the woken thread waits again.
* A forced drop (``FORCE_SWITCHING``): the thread that let go waits until another thread
  has taken the GIL, and only then asks for it again, as a new waiter with a fresh timed
  wait. Its own signal never wakes it.
* ``switch_number`` counts takes by a thread other than the last holder; a take resets a
  pending drop request.

So beside one CPU-bound thread an I/O thread gets the GIL back about one interval after
each blocking call, but with two CPU-bound threads handing it to each other every interval,
the I/O thread's own timer always sees a switch and it gets the GIL only when the OS's pick
falls on it: its wait is a run of coin flips, many intervals long now and then.

Non-preemptive (``preemptive=False``), the same class is gevent's hub: a greenlet runs
until it blocks, and the greenlets ready to run get their turn in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from .core import URGENT, Env
from .request import Recorder
from .runner import Runner

#: ``timer_at`` while :meth:`Gil._expire` runs: it schedules the next timer itself.
_EXPIRING: Final = float("inf")


class Gil:
    """One process's GIL (or, with ``preemptive=False``, a gevent worker's hub).

    ``wake_ms`` is how long a signalled thread takes to run (a context switch); ``pick(n)``
    chooses which of ``n`` waiters a signal wakes.
    """

    __slots__ = ("env", "rec", "proc_key", "holder", "last_holder", "switches", "waiters",
                 "timers", "timer_at", "switch_waiter", "preemptive", "interval", "wake_ms",
                 "pick", "granted_at", "ready", "_expire_cb", "_woken_cb")

    def __init__(self, env: Env, rec: Recorder, proc_key: str, interval: float,
                 preemptive: bool, wake_ms: float = 0.0,
                 pick: Callable[[int], int] | None = None) -> None:
        self.env = env
        self.rec = rec
        self.proc_key = proc_key
        self.holder: Runner | None = None
        self.last_holder: Runner | None = None
        self.switches = 0  # switch_number
        #: threads in their timed wait on the condition variable (a signal wakes one)
        self.waiters: list[Runner] = []
        #: (deadline, thread, its ticket) of every timed wait, in deadline order
        self.timers: deque[tuple[float, Runner, int]] = deque()
        self.timer_at = -1.0  # when the one pending timer event fires (-1: none)
        #: the thread that was made to let go and waits for the switch (FORCE_SWITCHING)
        self.switch_waiter: Runner | None = None
        self.preemptive = preemptive
        self.interval = interval
        self.wake_ms = wake_ms
        self.pick = pick
        self.granted_at = 0.0
        #: gevent: greenlets ready to run, in order
        self.ready: deque[Runner] = deque()
        # the bound methods, made once: scheduled at every timed wait and wake-up
        self._expire_cb: Callable[[object], None] = self._expire
        self._woken_cb: Callable[[tuple[Runner, int]], None] = self._woken

    # -- take_gil --------------------------------------------------------------------------
    def acquire(self, th: Runner) -> bool:
        """Take the GIL if it is free (True); otherwise start waiting and return False
        (``th.gil_granted()`` is called when it gets it)."""
        if self.holder is None:
            self._take(th)
            return True
        if self.preemptive:
            self.waiters.append(th)
            self._timed_wait(th)
        else:
            self.ready.append(th)
        return False

    def _take(self, th: Runner) -> None:
        self.holder = th
        self.granted_at = self.env.now
        if th is not self.last_holder:
            self.last_holder = th
            self.switches += 1
        self.rec.gil(self.proc_key, th.key)
        sw = self.switch_waiter
        if sw is not None:
            # The thread forced to let go sees the switch and asks for the GIL again.
            self.switch_waiter = None
            self.waiters.append(sw)
            self._timed_wait(sw)

    def _timed_wait(self, th: Runner) -> None:
        """``th`` (already in ``waiters``) starts a timed wait of one interval."""
        th.gil_saved = self.switches
        th.gil_ticket += 1
        deadline = self.env.now + self.interval
        self.timers.append((deadline, th, th.gil_ticket))
        if self.timer_at < 0:
            # Deadlines come in the order the waits began: one pending event, for the
            # earliest, is enough.
            self.timer_at = deadline
            self.env.at(deadline, self._expire_cb, None, URGENT)

    def _expire(self, _: object) -> None:
        """Timed waits end: each one due takes a free GIL, or sets the drop request if no
        switch happened during its wait, and waits again."""
        self.timer_at = _EXPIRING
        timers = self.timers
        now = self.env.now
        while timers and timers[0][0] <= now:
            _, th, ticket = timers.popleft()
            if ticket != th.gil_ticket:
                continue  # that wait ended early (signalled, or the thread died)
            holder = self.holder
            if holder is None:
                # Free while a signalled thread is still waking up: this one takes it.
                self._leave(th)
                self._take(th)
                th.gil_granted()
            elif th.gil_saved == self.switches:
                # Drop request. The waiter waits again at once, so the signal may wake it.
                self._timed_wait(th)
                self._force(holder)
            else:
                self._timed_wait(th)
        while timers and timers[0][2] != timers[0][1].gil_ticket:
            timers.popleft()
        if timers:
            self.timer_at = timers[0][0]
            self.env.at(self.timer_at, self._expire_cb, None, URGENT)
        else:
            self.timer_at = -1.0

    def _force(self, old: Runner) -> None:
        """The holder saw the drop request: it lets go and waits for the switch."""
        old.preempt()
        self.holder = None
        self.rec.gil(self.proc_key, "")
        self.switch_waiter = old
        self._signal()

    # -- drop_gil --------------------------------------------------------------------------
    def release(self, th: Runner) -> None:
        """``th`` lets go (a blocking call, or it is done); a thread that does not hold it
        (it died while waiting) stops waiting."""
        if self.holder is not th:
            self._forget(th)
            return
        self.holder = None
        if self.preemptive:
            self.rec.gil(self.proc_key, "")
            if self.waiters:
                self._signal()
        elif self.ready:
            nxt = self.ready.popleft()
            self._take(nxt)
            nxt.gil_granted()
        else:
            self.rec.gil(self.proc_key, "")

    def _signal(self) -> None:
        """COND_SIGNAL: the OS wakes one waiter, which takes the GIL once it runs."""
        waiters = self.waiters
        n = len(waiters)
        i = self.pick(n) if n > 1 and self.pick is not None else 0
        th = waiters[i]
        waiters[i] = waiters[-1]
        waiters.pop()
        th.gil_ticket += 1  # its timed wait is over
        if self.wake_ms > 0:
            self.env.after(self.wake_ms, self._woken_cb, (th, th.gil_ticket), URGENT)
        else:
            self._woken((th, th.gil_ticket))

    def _woken(self, arg: tuple[Runner, int]) -> None:
        th, ticket = arg
        if ticket != th.gil_ticket:
            return  # it died meanwhile
        if self.holder is None:
            self._take(th)
            th.gil_granted()
        else:
            # Another thread barged in: wait again.
            self.waiters.append(th)
            self._timed_wait(th)

    def _leave(self, th: Runner) -> None:
        waiters = self.waiters
        i = waiters.index(th)
        waiters[i] = waiters[-1]
        waiters.pop()
        th.gil_ticket += 1

    def _forget(self, th: Runner) -> None:
        th.gil_ticket += 1  # cancels its timer and any wake-up under way
        if th in self.waiters:
            self._leave(th)
        if self.switch_waiter is th:
            self.switch_waiter = None
        if th in self.ready:
            self.ready.remove(th)
