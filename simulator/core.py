"""The event core: a clock and a heap of ``(time, priority, sequence, callback, argument)``.

The sequence number makes events at the same time and priority run in the order they were
scheduled, so a run is deterministic. Cost grows with the number of events, not with the
length of simulated time, so :meth:`Env.run` stops at ``max_events`` with a
:class:`~.budget.BudgetError` (the budget itself is :mod:`.budget`'s business).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Final

from .budget import MAX_EVENTS, BudgetError, approx

#: Completions (a CPU burst ends, an I/O returns) run before new arrivals at the same instant.
URGENT: Final = 0
NORMAL: Final = 1


class Env:
    """Simulated time in milliseconds and the events still to come."""

    __slots__ = ("now", "_heap", "_seq", "events_run", "max_events", "_push")

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self.events_run = 0
        #: The most events :meth:`run` handles in all; past it, :class:`BudgetError`.
        self.max_events = max_events
        #: ``heappush``, held here: a compiled build would look the module's global up in
        #: a dict at every call
        self._push: Callable[[list[Any], Any], None] = heappush

    def at(self, t: float, fn: Callable[[Any], None], arg: Any = None, prio: int = NORMAL) -> None:
        """Call ``fn(arg)`` at time ``t`` (never earlier than now)."""
        self._seq += 1
        self._push(self._heap, (t if t > self.now else self.now, prio, self._seq, fn, arg))

    def after(
        self, delay: float, fn: Callable[[Any], None], arg: Any = None, prio: int = NORMAL
    ) -> None:
        """Call ``fn(arg)`` ``delay`` ms from now."""
        self.at(self.now + delay, fn, arg, prio)

    def run(self, until: float | None = None) -> None:
        """Run events in order until none are left (or, given ``until``, until the next one
        is later than ``until``: every event at or before it has run, and the run can carry
        on with another call); raise :class:`BudgetError` once ``max_events`` have run and
        more are due."""
        heap = self._heap
        pop = heappop
        count = 0
        room = self.max_events - self.events_run
        try:
            if until is None:
                while heap and count < room:  # inlined for speed
                    t, _, _, fn, arg = pop(heap)
                    self.now = t
                    fn(arg)
                    count += 1
            else:
                while heap and heap[0][0] <= until and count < room:
                    t, _, _, fn, arg = pop(heap)
                    self.now = t
                    fn(arg)
                    count += 1
        finally:
            self.events_run += count
        if heap and (until is None or heap[0][0] <= until):
            raise BudgetError(
                "scenario",
                f"the run took more than {approx(self.max_events)} events (simulation steps) "
                f"and was stopped at {self.now / 1000:,.3g} s of simulated time: make it "
                "smaller (fewer requests, less CPU work, a larger switch interval)",
            )
