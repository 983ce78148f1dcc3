"""The lost update: ``counter += 1`` from several threads, at the granularity of bytecode.

``counter += 1`` on a module global is several instructions: load the global, add, store
it back. A thread switched out after its load and before its store holds a stale value;
the other threads go on incrementing, and when it runs again it stores its stale value plus
one over all of their updates. Whether that can happen depends on *where* CPython lets a
thread go: a drop request (``gil.py``) is only honoured where the interpreter checks its
*eval breaker*.

* CPython 3.9 (``Python/ceval.c``): the check sits at the top of the dispatch loop, before
  almost every instruction; only the few that end with ``FAST_DISPATCH`` (``LOAD_FAST``,
  ``LOAD_CONST``, ``STORE_FAST``, ...) go straight to the next one. So there are checks
  between the load and the store.
* CPython 3.10 and later: instructions dispatch without the check; it is made at a
  function's start (``RESUME``), on a loop's back edge (``JUMP_BACKWARD``) and after calls
  into C. A plain ``counter += 1`` has none between ``LOAD_GLOBAL`` and ``STORE_GLOBAL``,
  so it is never split; ``counter = counter + f()`` calls ``f`` in between, and ``f``'s
  ``RESUME`` is a check. The classic demo stopped losing updates in 3.10; the version
  with a call still does (measured on this machine: see ``docs/ARCHITECTURE.md``).

The model: a drop request arrives while some instruction of the loop runs (each equally
likely) and is honoured at the next check; :func:`switch_in_window` is the chance that this
check lies between the load and the store, from the instruction listings in :data:`LOOPS`.

The engine runs an increment loop as one CPU step (``times`` iterations) and notes when it
began and ended (:class:`Loop`). After the run, :func:`replay` reads the thread's slices on
the GIL during each loop from the event log, spreads the iterations over them by CPU time,
replays every loop of a process in time order on its counter and, at each switch, draws
whether it fell inside the window. With ``lock`` the window is the lock's: another thread
that wants the counter waits for the lock, so no update is lost (that wait is not timed).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from heapq import merge
from typing import Any

from .trace import Event

#: Which CPython's rules a ``machine.python`` follows.
BREAKER_RULES = {"3.9": "3.9", "3.10": "3.10+", "3.11": "3.10+", "3.12": "3.10+",
                 "3.13": "3.10+"}

# One iteration of ``for _ in range(n): ...``, as ``dis`` lists it, each instruction with
# whether the eval breaker is checked *before* it runs; "load" and "store" mark the global's.
# 3.9: every instruction but those after a FAST_DISPATCH one (STORE_FAST, LOAD_CONST) is
# preceded by a check (PREDICT is a no-op with computed gotos). 3.10+: only RESUME (before
# the next instruction) and JUMP_BACKWARD (before FOR_ITER) check.
LOOPS: dict[tuple[str, bool], tuple[tuple[str, bool], ...]] = {
    ("3.9", False): (
        ("FOR_ITER", True), ("STORE_FAST", True), ("LOAD_GLOBAL counter load", False),
        ("LOAD_CONST 1", True), ("INPLACE_ADD", False), ("STORE_GLOBAL counter store", True),
        ("JUMP_ABSOLUTE", True),
    ),
    ("3.9", True): (
        ("FOR_ITER", True), ("STORE_FAST", True), ("LOAD_GLOBAL counter load", False),
        ("LOAD_GLOBAL f", True), ("CALL_FUNCTION", True), ("f: LOAD_CONST 1", True),
        ("f: RETURN_VALUE", False), ("BINARY_ADD", True), ("STORE_GLOBAL counter store", True),
        ("JUMP_ABSOLUTE", True),
    ),
    ("3.10+", False): (
        ("FOR_ITER", True), ("STORE_FAST", False), ("LOAD_GLOBAL counter load", False),
        ("LOAD_CONST 1", False), ("BINARY_OP +=", False),
        ("STORE_GLOBAL counter store", False), ("JUMP_BACKWARD", False),
    ),
    ("3.10+", True): (
        ("FOR_ITER", True), ("STORE_FAST", False), ("LOAD_GLOBAL counter load", False),
        ("LOAD_GLOBAL f", False), ("PRECALL", False), ("CALL", False), ("f: RESUME", False),
        ("f: LOAD_CONST 1", True), ("f: RETURN_VALUE", False), ("BINARY_OP +", False),
        ("STORE_GLOBAL counter store", False), ("JUMP_BACKWARD", False),
    ),
}
#: ``with lock:`` adds this many instruction-times per iteration (the with statement, the
#: lock's acquire and release: about 4x a plain iteration, measured here).
LOCK_INSTRUCTIONS = 20


def rules(python: str) -> str:
    """``"3.9"`` or ``"3.10+"``: the eval-breaker rules of CPython ``python``."""
    return BREAKER_RULES.get(python, "3.10+")


def instructions(python: str, call: bool, lock: bool) -> int:
    """Instruction-times one iteration of the loop takes."""
    return len(LOOPS[rules(python), call]) + (LOCK_INSTRUCTIONS if lock else 0)


def switch_in_window(python: str, call: bool) -> float:
    """The chance that a thread switched out during the loop is between its load and its
    store: a drop request arriving during instruction ``j`` is honoured at the first check
    after it, which is inside the window when the load has run and the store has not."""
    listing = LOOPS[rules(python), call]
    n = len(listing)
    load = next(i for i, (name, _) in enumerate(listing) if name.endswith(" load"))
    store = next(i for i, (name, _) in enumerate(listing) if name.endswith(" store"))
    inside = 0
    for j in range(n):
        k = next((k % n for k in range(j + 1, j + n + 1) if listing[k % n][1]), None)
        if k is not None and load < k <= store:
            inside += 1
    return inside / n


@dataclass
class Loop:
    """One run of an increment segment by one request on one thread."""

    req: int
    thread: str
    proc: Any  # the Process object: a forked child is a new one even under an old key
    name: str
    times: int
    lock: bool
    window: float  # switch_in_window for its code
    start: float
    first_state: str  # the thread's state when the loop began
    i0: int  # the event log's length when it began
    end: float | None = None
    i1: int = 0
    cpu: float = 0.0  # time on a core during the loop
    slices: list[tuple[float, float, bool]] = field(default_factory=list)


@dataclass
class Replay:
    """What :func:`replay` found: events to add, per-request lost updates, the summary."""

    events: list[Event]
    lost_by_req: dict[int, int]
    summary: dict[str, dict[str, int]]


def _slices(loop: Loop, events: Sequence[Event]) -> None:
    """The loop's stretches on a core (holding the GIL): (start, end, switched out?)."""
    state, since = loop.first_state, loop.start
    end = loop.end if loop.end is not None else loop.start
    for e in events[loop.i0:loop.i1]:
        if e.kind != "thread" or e.who != loop.thread:
            continue
        if state == "cpu" and e.what != "cpu" and e.t > since:
            loop.slices.append((since, e.t, True))
        if e.what == "cpu" and state != "cpu":
            since = e.t
        state = str(e.what)
    if state == "cpu" and end >= since:
        loop.slices.append((since, end, False))


def replay(loops: list[Loop], events: Sequence[Event], seed: int) -> Replay:
    """Replay every finished loop on its process's counter (see the module docstring)."""
    rng = random.Random(f"races-{seed}")
    new: list[Event] = []
    lost_by_req: dict[int, int] = {}
    summary: dict[str, dict[str, int]] = {}
    runs: dict[tuple[int, str], list[tuple[float, float, bool, Loop]]] = {}
    for loop in loops:
        if loop.end is None:
            continue  # its thread died with its process, and the counter with it
        _slices(loop, events)
        loop.cpu = sum(b - a for a, b, _ in loop.slices)
        if not loop.slices:  # a loop that took no time at all
            loop.slices.append((loop.start, loop.end, False))
        runs.setdefault((id(loop.proc), loop.name), []).extend(
            (a, b, out, loop) for a, b, out in loop.slices)
        row = summary.setdefault(loop.name, {"increments": 0, "counted": 0, "lost": 0})
        row["increments"] += loop.times
    for (_, name), slices in runs.items():
        counter = 0
        done: dict[int, int] = {}
        held: dict[int, int] = {}
        used: dict[int, float] = {}
        for a, b, out, loop in sorted(slices, key=lambda s: (s[0], s[1])):
            key = id(loop)
            n_done = done.get(key, 0)
            if key in held:
                stale = held.pop(key)
                lost = counter - stale
                if lost > 0:
                    lost_by_req[loop.req] = lost_by_req.get(loop.req, 0) + lost
                    why = f"{lost} update{'s' if lost != 1 else ''} by other threads lost"
                elif lost < 0:  # another stale store had set it back meanwhile
                    why = "higher than it was: another thread's stale store had set it back"
                else:
                    why = "no other thread stored in between, this time"
                new.append(Event(a, "req", loop.req, "race",
                                 f"{name}: stores {stale + 1} over {counter}: {why}"))
                counter = stale + 1
                n_done += 1
            total = loop.cpu
            used[key] = used.get(key, 0.0) + (b - a)
            if not out:
                target = loop.times
            else:
                target = int(loop.times * used[key] / total) if total > 0 else 0
                target = min(target, loop.times - 1)
            if target > n_done:
                counter += target - n_done
                n_done = target
            if out and n_done < loop.times and not loop.lock and rng.random() < loop.window:
                held[key] = counter
                new.append(Event(b, "req", loop.req, "race",
                                 f"{name}: switched out after loading {counter}, before "
                                 "storing"))
            done[key] = n_done
        summary[name]["counted"] += counter
    for row in summary.values():
        # Each store of a stale value v sets the counter from c to v + 1 instead of c + 1:
        # the counter ends short by the sum of (c - v), which is this.
        row["lost"] = row["increments"] - row["counted"]
    merged = list(merge(events, sorted(new, key=lambda e: e.t), key=lambda e: e.t))
    return Replay(merged, lost_by_req, summary)
