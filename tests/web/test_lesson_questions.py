"""Every lesson's question is answered by its own run, and the tour goes through the lessons
in the teaching order."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest
from wsgiscope import simulator
from wsgiscope.simulator.trace import Trace

TOUR = [  # one thread, threads, processes, the GIL, convoy, gunicorn workers, gthread,
    "dev-single-thread", "dev-threaded", "dev-processes-4",  # gevent, backlog overflow,
    "gil-cpu-threads", "gil-cpu-processes", "gil-io-threads", "free-threaded",  # timeouts
    "convoy-threads", "convoy-two-hogs", "convoy-processes",  # recycling, inside Flask
    "gunicorn-sync-2", "too-many-workers", "right-sized-workers",
    "gunicorn-gthread-1x4", "gthread-hoarding", "gthread-poisson",
    "gevent-io", "gevent-cpu", "slow-clients-sync", "slow-clients-gevent",
    "backlog-overflow", "mm8-queue", "mm8-queue-long",
    "worker-timeout", "gthread-no-timeout", "max-requests",
    "flask-lifecycle", "globals-race",
]

PER_REQUEST = {
    "latency": lambda r: None if r.finished_ms is None else r.finished_ms - r.sent_ms,
    "finished": lambda r: r.finished_ms,
    "wait": lambda r: None if r.accepted_ms is None else r.accepted_ms - r.sent_ms,
    "gil_wait": lambda r: r.gil_wait_ms,
}


def evaluate(query: dict[str, Any], trace: Trace) -> float | None:
    """A lesson query on a Trace, as the page evaluates it on the frames it holds."""
    reqs = trace.requests
    if query["of"] in PER_REQUEST:
        get = PER_REQUEST[query["of"]]
        if "user" in query:
            return get(reqs[query["user"] - 1]) if query["user"] <= len(reqs) else None
        vals = [v for r in reqs if query.get("path") in (None, r.path) if (v := get(r)) is not None]
        if not vals:
            return None
        return {"mean": statistics.fmean, "median": statistics.median, "min": min,
                "max": max}[query["stat"]](vals)
    if query["of"] == "makespan":
        return max(r.finished_ms for r in reqs if r.finished_ms is not None)
    if query["of"] == "max_backlog":
        return float(trace.summary["max_backlog"])
    if query["of"] == "failed":
        return float(sum(r.status != "ok" for r in reqs))
    return float(sum(r.status == "ok" for r in reqs))


def test_the_tour_is_in_teaching_order() -> None:
    names = list(simulator.presets.PRESETS)
    assert [n for n in names if n in TOUR] == TOUR
    assert names[:len(TOUR)] == TOUR  # the tour comes first, newer lessons after


@pytest.mark.parametrize("name", TOUR)
def test_each_tour_lesson_asks_and_answers_from_its_run(name: str) -> None:
    lesson = simulator.presets.get(name)
    assert lesson.question and lesson.takeaway
    q = lesson.question
    trace = simulator.run(lesson.scenario)
    kind = q.get("kind", "discuss")
    if kind in ("number", "click"):
        value = evaluate(q["answer"], trace)
        assert value is not None and math.isfinite(value) and value >= 0
    elif kind == "choice":
        values = [evaluate(o["value"], trace) for o in q["options"]]
        assert all(v is not None for v in values)
        assert len(set(values)) == len(values)  # one right answer
    focus = lesson.focus or {}
    if "to_ms" in focus:
        assert focus["to_ms"] <= trace.end_ms  # the window is inside the run
    if "request" in focus:
        assert focus["request"] <= len(trace.requests)


def test_a_lesson_card_carries_its_question_focus_and_neighbours(client) -> None:
    page = client.get("/?preset=convoy-threads").get_data(as_text=True)
    assert 'data-name="convoy-threads"' in page
    assert 'data-prev="free-threaded"' in page and 'data-next="convoy-two-hogs"' in page
    assert "data-question=" in page and "&#34;kind&#34;: &#34;number&#34;" in page
    assert "&#34;from_ms&#34;: 190" in page
