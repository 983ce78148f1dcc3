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
    """Simulated time in milliseconds and the events still to come.

    The pending events are a binary heap ordered by ``(time, priority, sequence)``. Pure
    Python keeps it as ``heapq`` tuples. A compiled build keeps :class:`Pending` objects in a
    heap of its own (below), which compares two machine floats where ``heapq`` compares
    tuples item by item through the generic comparison. The order is the same total order
    either way (the sequence number is unique), so both run the very same events in the
    very same order.
    """

    __slots__ = ("now", "_heap", "_seq", "events_run", "max_events", "_heappush", "_native")

    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.now = 0.0
        #: ``(t, prio, seq, fn, arg)`` tuples, or (compiled) :class:`Pending` objects
        self._heap: list[Any] = []
        self._seq = 0
        self.events_run = 0
        #: The most events :meth:`run` handles in all; past it, :class:`BudgetError`.
        self.max_events = max_events
        #: ``heappush``, held here: a compiled build would look the module's global up in
        #: a dict at every call
        self._heappush: Callable[[list[Any], Any], None] = heappush
        self._native = COMPILED

    def at(self, t: float, fn: Callable[[Any], None], arg: Any = None, prio: int = NORMAL) -> None:
        """Call ``fn(arg)`` at time ``t`` (never earlier than now)."""
        self._seq += 1
        if not t > self.now:
            t = self.now
        if self._native:
            _push(self._heap, Pending(t, prio * _PRIO + self._seq, fn, arg))
        else:
            self._heappush(self._heap, (t, prio, self._seq, fn, arg))

    def after(
        self, delay: float, fn: Callable[[Any], None], arg: Any = None, prio: int = NORMAL
    ) -> None:
        """Call ``fn(arg)`` ``delay`` ms from now."""
        self.at(self.now + delay, fn, arg, prio)

    def next_time(self) -> float:
        """When the next pending event is due (``inf``: none is)."""
        heap = self._heap
        if not heap:
            return _INF
        if self._native:
            first: Pending = heap[0]
            return first.t
        t: float = heap[0][0]
        return t

    def run(self, until: float | None = None) -> None:
        """Run events in order until none are left (or, given ``until``, until the next one
        is later than ``until``: every event at or before it has run, and the run can carry
        on with another call); raise :class:`BudgetError` once ``max_events`` have run and
        more are due."""
        count = 0
        room = self.max_events - self.events_run
        end = _INF if until is None else until
        try:
            if self._native:
                count = self._run_native(end, room)
            else:
                heap = self._heap
                pop = heappop
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
        if self._heap and (until is None or self.next_time() <= until):
            raise BudgetError(
                "scenario",
                f"the run took more than {approx(self.max_events)} events (simulation steps) "
                f"and was stopped at {self.now / 1000:,.3g} s of simulated time: make it "
                "smaller (fewer requests, less CPU work, a larger switch interval)",
            )

    def _run_native(self, end: float, room: int) -> int:
        """:meth:`run` on :class:`Pending` objects (the compiled build's heap); returns how
        many ran. The count is kept on the Env as they run, in case one raises."""
        heap: list[Pending] = self._heap
        count = 0
        try:
            while heap and count < room:
                if heap[0].t > end:
                    break
                ev = _pop(heap)
                self.now = ev.t
                ev.fn(ev.arg)
                count += 1
        except BaseException:
            self.events_run += count
            count = 0
            raise
        return count


class Pending:
    """A pending event of a compiled build's heap: due at ``t``, ordered among events due
    together by ``key`` (priority, then the order they were scheduled in)."""

    __slots__ = ("t", "key", "fn", "arg")

    def __init__(self, t: float, key: int, fn: Callable[[Any], None], arg: Any) -> None:
        self.t = t
        self.key = key
        self.fn = fn
        self.arg = arg


def _before(a: Pending, b: Pending) -> bool:
    return a.t < b.t or (a.t == b.t and a.key < b.key)


def _push(heap: list[Pending], ev: Pending) -> None:
    """``heapq.heappush`` for :class:`Pending` objects."""
    heap.append(ev)
    pos = len(heap) - 1
    while pos > 0:
        up = (pos - 1) >> 1
        parent = heap[up]
        if not _before(ev, parent):
            break
        heap[pos] = parent
        pos = up
    heap[pos] = ev


def _pop(heap: list[Pending]) -> Pending:
    """``heapq.heappop`` for :class:`Pending` objects."""
    last = heap.pop()
    if not heap:
        return last
    top = heap[0]
    n = len(heap)
    pos = 0
    child = 1
    while child < n:
        right = child + 1
        if right < n and _before(heap[right], heap[child]):
            child = right
        low = heap[child]
        if not _before(low, last):
            break
        heap[pos] = low
        pos = child
        child = 2 * pos + 1
    heap[pos] = last
    return top


def _compiled() -> bool:
    """True when this module runs compiled: its functions are then not Python code."""
    return not hasattr(_compiled, "__code__")


#: Whether the :class:`Env` uses its own heap (compiled) or ``heapq`` (pure Python).
COMPILED: Final = _compiled()
#: ``Pending.key`` is ``prio * _PRIO + seq``: a run schedules far fewer than 2**40 events.
_PRIO: Final = 1 << 40
_INF: Final = float("inf")
