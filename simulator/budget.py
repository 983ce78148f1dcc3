"""A run's cost: estimated before it starts, capped while it runs.

A run's time and memory grow with the number of events the engine handles (each is a
callback, and most leave a record in the Trace). Some valid scenarios are cheap to write
and very costly to run, so every run has an *event budget*:

* :func:`check` estimates the events before the run and refuses a scenario whose estimate
  is above the budget with a :class:`BudgetError` naming the field that makes it
  expensive, e.g. ``machine.switch_interval_ms: 0.05 ms with 120 s of contended CPU needs
  ~2.4 M GIL hand-overs ...``. The estimate counts what dominates: GIL hand-overs
  (contended CPU / switch interval, several events each), requests (about a dozen events
  each) and simulated threads (a gunicorn gthread server's ``workers x threads``).
* :func:`run_within` runs the event loop with a hard cap (:attr:`Env.max_events
  <wsgiscope.simulator.core.Env.max_events>`), the backstop for what the estimate misses:
  the run stops with a :class:`BudgetError` instead of growing without end.

Budgets: :data:`MAX_EVENTS` events (a caller may ask for less, e.g. a shared web server)
and :data:`MAX_SIM_THREADS` simulated threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .validation import ScenarioError

if TYPE_CHECKING:
    from .scenario import Scenario


class EventLoop(Protocol):
    """What :func:`run_within` needs of :class:`~.core.Env` (which imports this module)."""

    max_events: int

    def run(self) -> None: ...

#: The default event budget of a run: about a minute and 1 GB of memory at most.
MAX_EVENTS = 4_000_000
#: Simulated threads a run may create in all its processes (``workers x threads``).
MAX_SIM_THREADS = 32_768

#: Events per request, at the low end of what the bundled lessons take (12 to 30).
EVENTS_PER_REQUEST = 12
#: Events per GIL hand-over: the drop request, the wake-up, the core's switch, plus each
#: waiter's own timed wait running out (counted up to this many waiters).
EVENTS_PER_HANDOVER = 2
MAX_TIMED_WAITERS = 6

#: The per-request CPU costs (ms) that run as Python in every request's lifecycle.
_LIFECYCLE_CPU = ("parse_ms", "context_ms", "match_ms", "before_request_ms",
                  "after_request_ms", "teardown_ms")


class BudgetError(ScenarioError):
    """A run that would cost (or did cost) more events than its budget allows: one line,
    naming the field that makes it expensive."""


@dataclass(frozen=True)
class Cost:
    """One part of a run's estimated cost: the events it takes, the field that drives it,
    and the words that say so."""

    events: float
    field: str
    why: str


def approx(n: float) -> str:
    """A count as people say it: 950, 12,000, 2.4 M."""
    if n >= 1e6:
        return f"{n / 1e6:.2g} M" if n < 1e7 else f"{n / 1e6:,.0f} M"
    return f"{round(n):,}"


def _mean(value: Any) -> float:
    if isinstance(value, dict):
        if "exp" in value:
            return float(value["exp"])
        lo, hi = value["uniform"]
        return (float(lo) + float(hi)) / 2.0
    return float(value)


def _cpu_ms(sc: Scenario, path: str) -> float:
    """Mean Python CPU of one request to ``path``: its view's CPU plus the lifecycle's."""
    view = sum(_mean(seg["cpu_ms"]) for seg in sc.endpoints[path] if "cpu_ms" in seg)
    return view + sum(float(sc.costs[k]) for k in _LIFECYCLE_CPU)


def sim_threads(sc: Scenario) -> int:
    """Threads the server model creates up front (gunicorn gthread: a main thread and a
    pool per worker; others: one per worker or process)."""
    s = sc.server
    if s["kind"] == "gunicorn":
        per = s["threads"] + 1 if s["worker_class"] == "gthread" else 1
        return int(s["workers"]) * per
    return int(s["processes"]) if not s["threaded"] else 1


def _contention(sc: Scenario) -> tuple[int, int] | None:
    """(processes sharing the requests, threads per process) when threads of one process
    contend for its GIL; None when they cannot (no GIL, one thread, gevent's hub)."""
    if not sc.machine["gil"]:
        return None
    s = sc.server
    if s["kind"] == "werkzeug":
        return (1, 1 << 30) if s["threaded"] else None
    if s["worker_class"] == "gthread" and s["threads"] >= 2:
        return int(s["workers"]), int(s["threads"])
    return None


def gil_cost(sc: Scenario) -> Cost | None:
    """GIL hand-overs: each interval of CPU run while another thread of the process waits
    for the GIL ends in a forced switch.

    Contended CPU is estimated per workload item: a burst whose requests overlap (spacing
    under one request's CPU) with more of them in flight than processes, or a stream whose
    offered CPU load per process (rate x CPU) is high, counts in full or in part.
    """
    shape = _contention(sc)
    if shape is None:
        return None
    procs, threads = shape
    contended = 0.0
    peak = 1.0
    top_path, top_ms = "", -1.0
    for item in sc.workload:
        weights = item["paths"]
        total_w = sum(weights.values())
        cpu = sum(_cpu_ms(sc, p) * w for p, w in weights.items()) / total_w
        if "poisson" in item or "constant" in item:
            spec = item.get("poisson") or item["constant"]
            n = spec["rate_per_s"] * spec["duration_s"]
            in_flight = spec["rate_per_s"] * cpu / 1000.0
            share = min(1.0, in_flight / procs)
        else:
            n = item["count"]
            spacing = item["spacing_ms"]
            in_flight = n if spacing <= 0 else min(n, max(1.0, cpu / spacing))
            share = min(1.0, max(0.0, (in_flight - procs) / procs))
        peak = max(peak, in_flight / procs)
        ms = n * cpu * share
        contended += ms
        for p in weights:
            if ms > 0 and _cpu_ms(sc, p) > top_ms:
                top_path, top_ms = p, _cpu_ms(sc, p)
    if contended <= 0:
        return None
    interval = float(sc.machine["switch_interval_ms"])
    handovers = contended / interval
    waiters = min(max(1.0, min(peak, threads) - 1), MAX_TIMED_WAITERS)
    events = handovers * (EVENTS_PER_HANDOVER + waiters)
    what = (f"with {contended / 1000:,.3g} s of contended CPU needs ~{approx(handovers)} GIL "
            f"hand-overs (~{approx(events)} events)")
    if interval < 5.0 or not top_path:
        return Cost(events, "machine.switch_interval_ms",
                    f"{interval:g} ms {what}")
    return Cost(events, f"endpoints.{top_path}",
                f"CPU work {what} at a switch interval of {interval:g} ms")


def estimate(sc: Scenario) -> list[Cost]:
    """The run's main costs, largest first."""
    costs = [Cost(sc.expected_requests * EVENTS_PER_REQUEST, "workload",
                  f"asks for ~{approx(sc.expected_requests)} requests "
                  f"(~{approx(sc.expected_requests * EVENTS_PER_REQUEST)} events)")]
    gil = gil_cost(sc)
    if gil is not None:
        costs.append(gil)
    return sorted(costs, key=lambda c: -c.events)


def check(sc: Scenario, max_events: int | None = None) -> int:
    """Refuse a scenario whose estimated cost is above the budget; return the budget.

    ``max_events`` defaults to :data:`MAX_EVENTS` and cannot exceed it. Raises
    :class:`BudgetError` naming the field that makes the run expensive.
    """
    limit = MAX_EVENTS if max_events is None else max(1, min(int(max_events), MAX_EVENTS))
    threads = sim_threads(sc)
    if threads > MAX_SIM_THREADS:
        s = sc.server
        raise BudgetError(
            "server.threads",
            f"{s['workers']} workers x {s['threads']} threads makes {threads:,} threads; a run "
            f"may have at most {MAX_SIM_THREADS:,} in all (use fewer workers or threads)",
        )
    costs = estimate(sc)
    total = sum(c.events for c in costs)
    if total > limit:
        top = costs[0]
        raise BudgetError(
            top.field,
            f"{top.why}; a run here may take at most {approx(limit)} events "
            f"(simulation steps){_advice(top.field)}",
        )
    return limit


def _advice(field: str) -> str:
    if field == "machine.switch_interval_ms":
        return ": use a larger switch interval or less CPU work"
    if field.startswith("endpoints."):
        return ": use less CPU work, fewer requests, or processes instead of threads"
    return ": send fewer requests"


def run_within(env: EventLoop, sc: Scenario, max_events: int) -> None:
    """Run ``env`` to the end within ``max_events``; past it, a :class:`BudgetError`
    naming the field the estimate blames most."""
    env.max_events = max_events
    try:
        env.run()
    except BudgetError as exc:
        raise BudgetError(estimate(sc)[0].field, exc.message) from None
