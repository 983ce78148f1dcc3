"""Measured thread states and GIL holders, from the samples of :class:`.sampler.ThreadSampler`.

A thread of a multi-threaded server process (werkzeug ``threaded=True``, a gunicorn gthread
worker) that serves a request is, at any moment, in one of the simulator's states:

* ``cpu`` -- runnable (``running`` in ``/proc/.../syscall``): it runs Python, or waits for a
  core, holding the GIL;
* ``gil`` -- asleep in ``futex``: waiting for the GIL (the view's own code takes no lock);
* ``io`` -- asleep in any other system call (``clock_nanosleep``, ``recvfrom``, ``select``,
  ``sendto`` ...): a blocking call that released the GIL;
* ``unknown`` -- not sampled: before the sampler first saw the thread, or while the sampler
  itself did not run (a gap between two sweeps longer than ``gap_ms``), or asleep with no
  system call to tell why outside the view's own segments. Never drawn as running.

The GIL holder of a process at a moment is the one runnable thread among its known threads
(the one that held it before, if several are runnable: a thread just woken from a blocking
call is runnable until it blocks on the GIL); ``""`` when none is runnable, ``"?"`` when the
runnable thread is not one of the timeline's threads or nothing was sampled.

Single-threaded processes (gunicorn sync and gevent workers, werkzeug's forked children) are
not sampled: nothing can take their GIL from them, so their states come from the request
records alone.
"""

from __future__ import annotations

import bisect
import platform
from collections.abc import Sequence
from typing import Any

from wsgiscope.simulator import frames
from wsgiscope.simulator.trace import Event, Trace

from .sampler import IN_KERNEL, RUNNING, SLEEPING

#: ``futex`` by machine: where CPython's GIL wait sleeps (pthread_cond_timedwait).
_FUTEX_BY_MACHINE = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98, "riscv64": 98}
FUTEX = _FUTEX_BY_MACHINE.get(platform.machine().lower())

#: A gap between two sweeps longer than this (ms) is time when no state is known.
GAP_MS = 5.0

#: The GIL holder of a process when it cannot be told.
UNKNOWN_HOLDER = "?"

Changes = Sequence[tuple[float, int]]


def gaps(sweeps: Sequence[float], gap_ms: float = GAP_MS) -> list[tuple[float, float]]:
    """The intervals between consecutive sweeps longer than ``gap_ms``."""
    return [(a, b) for a, b in zip(sweeps, sweeps[1:], strict=False) if b - a > gap_ms]


def _in(intervals: Sequence[tuple[float, float]], starts: list[float], t: float) -> bool:
    i = bisect.bisect_right(starts, t) - 1
    return i >= 0 and intervals[i][0] <= t < intervals[i][1]


def state_of(code: int | None, segment: str) -> str:
    """The thread state for a sample ``code`` while the request is in ``segment`` (``cpu``,
    ``io`` or ``""`` outside the view's segments)."""
    if code is None:
        return "unknown"
    if code == RUNNING:
        return "cpu"
    if FUTEX is not None and code == FUTEX:
        return "gil"
    if code in (SLEEPING, IN_KERNEL) or FUTEX is None:
        # asleep, reason unknown: in a CPU segment only the GIL can stop it
        return {"cpu": "gil", "io": "io"}.get(segment, "unknown")
    return "io"


def thread_timeline(
    changes: Changes,
    holes: Sequence[tuple[float, float]],
    first_sweep: float,
    last_sweep: float,
    start: float,
    end: float,
    segments: Sequence[tuple[str, float, float]] = (),
) -> list[tuple[float, str]]:
    """``[(t, state)]`` of one thread over ``[start, end)``, one entry per change of state
    (times as in the samples). ``segments`` are the view's ``(kind, t0, t1)``."""
    times = [t for t, _c in changes]
    hole_starts = [a for a, _b in holes]
    cuts = {start}
    cuts.update(t for t in times if start < t < end)
    for a, b in holes:
        if a < end and b > start:
            cuts.update(x for x in (a, b) if start < x < end)
    for _k, a, b in segments:
        cuts.update(x for x in (a, b) if start < x < end)
    for x in (first_sweep, last_sweep):
        if start < x < end:
            cuts.add(x)
    out: list[tuple[float, str]] = []
    for t in sorted(cuts):
        i = bisect.bisect_right(times, t) - 1
        if i < 0 or t < first_sweep or t >= last_sweep or _in(holes, hole_starts, t):
            state = "unknown"
        else:
            seg = next((k for k, a, b in segments if a <= t < b), "")
            state = state_of(changes[i][1], seg)
        if not out or out[-1][1] != state:
            out.append((t, state))
    return out


def gil_timeline(
    threads: dict[str, Changes],
    holes: Sequence[tuple[float, float]],
    first_sweep: float,
    last_sweep: float,
    others: Sequence[Changes] = (),
) -> list[tuple[float, str]]:
    """``[(t, holder)]`` of one process: ``threads`` maps its known thread keys to their
    samples; ``others`` are its threads with no key (see the module docstring)."""
    marks: list[tuple[float, int, int]] = []  # (t, thread index, code)
    keys = list(threads)
    for i, key in enumerate(keys):
        marks.extend((t, i, c) for t, c in threads[key])
    for j, ch in enumerate(others):
        marks.extend((t, len(keys) + j, c) for t, c in ch)
    for a, b in holes:
        marks.append((a, -1, 1))
        marks.append((b, -1, 0))
    marks.sort(key=lambda m: m[0])
    running: set[int] = set()
    in_hole = False
    holder = ""
    out: list[tuple[float, str]] = [(first_sweep, "")]
    for n, (t, who, code) in enumerate(marks):
        if who == -1:
            in_hole = bool(code)
        elif code == RUNNING:
            running.add(who)
        else:
            running.discard(who)
        if n + 1 < len(marks) and marks[n + 1][0] == t:
            continue  # one sweep: decide once every thread's sample is in
        if in_hole:
            new = UNKNOWN_HOLDER
        else:
            known = [i for i in running if i < len(keys)]
            if holder in keys and keys.index(holder) in known:
                new = holder
            elif known:
                new = keys[min(known)]
            elif running:
                new = UNKNOWN_HOLDER
            else:
                new = ""
        if new != out[-1][1]:
            out.append((t, new))
        holder = new
    out.append((last_sweep, UNKNOWN_HOLDER))
    return out


def measured_events(
    samples: dict[str, Any],
    served: Sequence[dict[str, Any]],
    mains: dict[str, tuple[int, int, str]],
    t0: float,
) -> tuple[list[Event], set[int]]:
    """Thread and GIL events of the sampled processes.

    ``samples``: ``{"changes": {(pid, tid): [(t, code)]}, "sweeps": [t, ...]}``.
    ``served``: one dict per request on a sampled thread: ``{"req", "pid", "tid", "key",
    "start", "end", "segs"}`` (absolute times; ``segs`` as the app records them).
    ``mains``: process key -> ``(pid, tid, thread key)`` of its main thread.
    Returns the events (times relative to ``t0``) and the ids of the requests they cover.
    """
    sweeps = samples.get("sweeps") or []
    changes: dict[tuple[int, int], Changes] = samples.get("changes") or {}
    if not sweeps:
        return [], set()
    holes = gaps(sweeps)
    first, last = sweeps[0], sweeps[-1]
    events: list[Event] = []
    covered: set[int] = set()
    keys_of_pid: dict[int, dict[str, tuple[int, int]]] = {}
    proc_of_pid: dict[int, str] = {}
    for proc, (pid, tid, key) in mains.items():
        keys_of_pid.setdefault(pid, {})[key] = (pid, tid)
        proc_of_pid[pid] = proc
    for s in served:
        segs = [(seg[0], seg[1], seg[2]) for seg in s.get("segs") or [] if seg[0] in ("cpu", "io")]
        tl = thread_timeline(
            changes.get((s["pid"], s["tid"]), ()), holes, first, last, s["start"], s["end"], segs
        )
        for t, state in tl:
            events.append(Event(t - t0, "thread", s["key"], state, s["req"]))
        covered.add(s["req"])
        keys_of_pid.setdefault(s["pid"], {})[s["key"] + f"#{s['tid']}"] = (s["pid"], s["tid"])
    for pid, named in keys_of_pid.items():
        proc = proc_of_pid.get(pid)
        if proc is None:
            continue
        threads: dict[str, Changes] = {}
        tids = set()
        for name, (p, tid) in named.items():
            tids.add(tid)
            threads[name] = changes.get((p, tid), ())
        others = [ch for (p, tid), ch in changes.items() if p == pid and tid not in tids]
        before: str | None = ""
        for t, holder in gil_timeline(threads, holes, first, last, others):
            key = holder.split("#", 1)[0]
            if t < t0:  # before the first request was sent: only the state at 0 counts
                before = key
                continue
            if before is not None:
                events.append(Event(0.0, "gil", proc, before, -1))
                before = None
            events.append(Event(t - t0, "gil", proc, key, -1))
    return events, covered


def gil_waits(trace: Trace, covered: set[int]) -> dict[int, float]:
    """For each request in ``covered``, the time (ms) its thread was sampled waiting for the
    GIL while serving it (from the thread spans of :func:`.frames.spans`): the measured
    counterpart of the simulator's ``gil_wait_ms``, over every stage (the hand-over from the
    acceptor, reading, the view, writing), not the view's CPU alone. Time not sampled
    (``unknown``) is not counted."""
    out = dict.fromkeys(covered, 0.0)
    for _key, a, b, state, rid in frames.spans(trace)["threads"]:
        if state == "gil" and rid in out:
            out[rid] += b - a
    return {rid: round(ms, 3) for rid, ms in out.items()}
