"""A large run in two parts: its head (the first moments, encoded while the rest is still
being simulated) and then the whole run.

The engine runs in time order, so what happened up to a time T is final when it reaches T
(:class:`wsgiscope.simulator.Simulation`). :func:`produce` plays a large run to a short
horizon, hands the page a :class:`~.runs.Prepared` head of it (frames, request spans,
finished requests and narration up to the horizon; ``meta.partial`` true, no summary), then
simulates the rest in the same engine and returns the whole run.

* One tick for both: chosen before the run from an estimate of its end (the last request's
  send time, known before the run, plus the slowest endpoint's mean time) and the lanes the
  server starts with, so the head's frames are the whole run's first frames. The whole run
  keeps that tick while its end allows it (:func:`.runs.shared_tick`); when the estimate
  was wrong it picks its own, and the page, which replaces the head with the whole run
  anyway, gets other frames, never inconsistent ones.
* What the head leaves to the whole run: the summary (totals, percentiles), requests still
  in flight at the horizon, the spans that start after it, the narration's progress
  checkpoints and closing lines, and the request inspector's data.
* A small run (under :data:`HEAD_MIN_REQUESTS`), or one whose increment loops are replayed
  after the run, comes in one part, exactly as before.
* The head is also a measure of the run's cost (:func:`check_pace`): the engine's estimate
  before a run counts about 12 events a request, but a request takes 14 to 30; a run whose
  head shows it would go past its event budget is refused before its first frame, in one
  line saying how many such requests fit, rather than stopped by the budget part way.

The whole run is a pure function of (scenario, seed, limits), whether or not its head was
asked for, so the run cache keeps only whole runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.budget import BudgetError, approx
from wsgiscope.simulator.scenario import Scenario
from wsgiscope.simulator.trace import Trace

from .runs import Lanes, Prepared, encode, pick_tick, prepare

#: Runs expected to have fewer requests than this come whole (a tenth of a second or so).
HEAD_MIN_REQUESTS = 500
#: The head covers about this many requests' arrivals, or this many engine events, whichever
#: comes first (a few tens of milliseconds of simulation), in whole ticks.
HEAD_REQUESTS = 250
HEAD_EVENTS = 5_000
#: A run whose head, projected, takes more than this share of its event budget is refused.
#: A head is a sample of a few hundred requests: a stream's projects its whole run within
#: about 15 % either way (most often 6 %), so the number of requests it says fit is
#: :data:`FIT_SHARE` of what the projection allows.
PACE_SHARE = 0.9
FIT_SHARE = 0.8

Head = Callable[[Prepared], None]


def _mean_ms(value: Any) -> float:
    if isinstance(value, dict):
        if "exp" in value:
            return float(value["exp"])
        if "uniform" in value:
            lo, hi = value["uniform"]
            return (float(lo) + float(hi)) / 2.0
        return 0.0
    return float(value) if isinstance(value, int | float) else 0.0


def estimate_end(sc: Scenario, last_sent_ms: float) -> float:
    """When a run probably ends: its last request is sent, plus the slowest endpoint's mean
    time (its segments' CPU and I/O), before queueing."""
    slowest = max((sum(_mean_ms(seg.get("cpu_ms", 0)) + _mean_ms(seg.get("io_ms", 0))
                       for seg in segs) for segs in sc.endpoints.values()), default=0.0)
    return last_sent_ms + slowest


def incremental(sc: Scenario) -> bool:
    """Whether a run comes in two parts (see the module docstring)."""
    if sc.expected_requests < HEAD_MIN_REQUESTS:
        return False
    return not any("increment" in seg for segs in sc.endpoints.values() for seg in segs)


def produce(scenario: Scenario, seed: int | None, max_events: int | None, max_frames: int,
            key: str, on_head: Head | None = None, head_only: bool = False) -> Prepared:
    """The run's whole :class:`~.runs.Prepared`; for a large run, first ``on_head(head)``
    (the same whole run whether or not a head is asked for). ``head_only``: a large run's
    head is the answer, and the rest is not simulated (a small run is still whole)."""
    if not incremental(scenario):
        trace = simulator.run(scenario, seed=seed, max_events=max_events)
        with simulator.no_gc():
            return prepare(trace, max_frames, key)
    run = simulator.Simulation(scenario, seed, max_events)
    sent = run.arrivals  # known before the run; its requests are made as they are sent
    end = estimate_end(scenario, sent.sent(len(sent) - 1) if len(sent) else 0.0)
    tick = pick_tick(end, Lanes(run.partial()).frame_cap(max_frames))
    with simulator.no_gc():
        horizon = _play_head(run, tick, max_frames)
    if horizon is not None:  # None: the run ended within its head, and is whole already
        check_pace(run, horizon)
        if head_only:
            with simulator.no_gc():
                return _head(run, end, tick, horizon, key)
        if on_head is not None:
            with simulator.no_gc():
                on_head(_head(run, end, tick, horizon, key))
    trace = run.finish()
    with simulator.no_gc():
        return prepare(trace, max_frames, key, tick_ms=tick)


def job(request: dict[str, Any], send_part: Callable[[bytes], None]) -> bytes:
    """A simulation process's ``prepare`` job (:mod:`.pool`): the whole run as bytes, after
    sending its head as a part (``H`` and its bytes) when the request asks for ``head``;
    only the head (a small run: the whole) when it asks for ``head_only``."""
    from .runs import load_for_web

    def head(run: Prepared) -> None:
        send_part(b"H" + run.to_bytes())

    scenario = load_for_web(request["scenario"], int(request["max_requests"]))
    return produce(scenario, request["seed"], request.get("max_events"),
                   int(request["max_frames"]), str(request["key"]),
                   head if request.get("head") else None,
                   bool(request.get("head_only"))).to_bytes()


def _play_head(run: simulator.Simulation, tick: float, max_frames: int) -> float | None:
    """Play ``run`` to the head's horizon (whole ticks) and return it; None when the run
    ended on the way."""
    sent = run.arrivals
    if not len(sent):
        return None
    reach = sent.sent(min(HEAD_REQUESTS, len(sent) - 1))
    frames = 0
    while True:
        frames += 1
        horizon = frames * tick  # the end of frame ``frames - 1``, as frames.sample has it
        if run.run_until(horizon + 1e-9):
            return None
        if horizon >= reach or run.events_run >= HEAD_EVENTS or frames >= max_frames:
            return horizon


def check_pace(run: simulator.Simulation, horizon: float) -> None:
    """Refuse ``run``, played to ``horizon``, when its events so far per request sent,
    times its requests, go past :data:`PACE_SHARE` of its event budget: a BudgetError
    naming the workload and how many requests like these fit.

    A head whose requests are mostly still waiting (a burst sent at once) cannot tell what a
    request costs: such a run is left to the engine's own estimate and budget."""
    sent = run.arrivals
    n, k = len(sent), len(sent.made_until(horizon))
    answered = sum(1 for r in sent.made if r.status)
    if k >= n or answered * 2 < k:
        return
    per = run.events_run / k
    limit = run.max_events * PACE_SHARE
    if per * n <= limit:
        return
    fits = max(1, int(limit * FIT_SHARE / per))
    step = 10 ** max(len(str(fits)) - 2, 0)
    raise BudgetError(
        "workload",
        f"its first {k:,} requests took ~{per:.3g} events each (simulation steps), so all "
        f"{n:,} would take ~{approx(per * n)}; a run here may take at most "
        f"{approx(run.max_events)} events: send at most about {fits // step * step:,} requests "
        "like these",
    )


def _head(run: simulator.Simulation, end: float, tick: float, horizon: float,
          key: str) -> Prepared:
    """What happened in ``run`` up to ``horizon``, encoded as the run's head."""
    sent = run.arrivals
    n = len(sent)
    partial = run.partial()
    paths = sent.path_names()
    lines = [line for line in head_narration(partial, n) if line[0] <= horizon + 1e-9]
    return encode(partial, Lanes(partial), tick, max(end, horizon), key, paths, n, lines,
                  summary=None, contexts=None, inspect=None, horizon=horizon,
                  extra={"partial": True, "horizon_ms": round(horizon, 3)})


def head_narration(partial: Trace, n_requests: int) -> list[tuple[float, str]]:
    """The narration of a run's head: what the narrator says about the events so far, told
    as for the whole run of ``n_requests`` (its opening line counts them all), without
    what only the whole run can say (progress checkpoints, the closing tally, lines about
    connections still queued at the end)."""
    from wsgiscope.simulator.narration import base, core
    from wsgiscope.simulator.narration.rules import RULES

    cap = base.DEFAULT_MAX_LINES
    story = base.Story(partial, cap)
    story.n_requests = n_requests
    story.detailed = (n_requests if n_requests <= cap // 3
                      else max(base.DETAILED_REQUESTS, cap // 4))
    rules = [rule(story) for rule in RULES]

    def nothing(*_: Any) -> None:
        return None

    for rule in rules:  # said once the whole run is known
        setattr(rule, "finish", nothing)  # noqa: B010
        setattr(rule, "checkpoint", nothing)  # noqa: B010
    core._tell(story, rules)
    kept = sorted(story.lines)[:cap - 2]  # as many as the whole run's, by importance
    return [(t, text) for _, t, _, text in sorted(kept, key=lambda x: (x[1], x[2]))]
