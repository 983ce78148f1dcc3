"""Context locals over time: each thread's pushed contexts, and which value of a global, g
or threading.local each read got (simulator/contexts.py)."""

from __future__ import annotations

from wsgiscope import simulator
from wsgiscope.simulator import presets
from wsgiscope.simulator.contexts import context_view, locals_per_connection


def test_the_thread_pool_lesson_shows_who_read_what() -> None:
    trace = simulator.run(presets.get("context-locals").scenario)
    view = context_view(trace)
    assert view is not None and not view["per_connection"]
    keys = [t["key"] for t in view["threads"]]
    assert {"w1/t1", "w1/t2"} <= set(keys)
    # every request pushed its contexts on a pool thread and popped them before the write
    assert len(view["spans"]) == 7
    for thread, rid, pushed, popped, path, owner in view["spans"]:
        assert keys[thread] in ("w1/t1", "w1/t2") and pushed < popped
        assert path == trace.requests[rid].path and owner == keys[thread]
    scopes = [(w[1], w[3], w[4]) for w in view["writes"]]
    assert scopes[:2] == [("global", 0, "w1"), ("global", 1, "w1")]
    assert ("g", 2, "r2") in scopes
    wrong = [(r[1], r[4], r[3]) for r in view["reads"] if r[6]]
    # user 1 read user 2's global; /whoami read user 5's value from its pool thread
    assert wrong == [("global", 0, 1), ("local", 6, 4)]


def test_greenlets_and_new_threads_start_with_empty_locals() -> None:
    assert locals_per_connection({"kind": "werkzeug", "threaded": True})
    assert not locals_per_connection({"kind": "werkzeug", "threaded": False, "processes": 1})
    assert locals_per_connection({"kind": "gunicorn", "worker_class": "gevent"})
    assert not locals_per_connection({"kind": "gunicorn", "worker_class": "gthread"})
    trace = simulator.run(presets.get("context-locals-gevent").scenario)
    view = context_view(trace)
    assert view is not None and view["per_connection"]
    whoami = [r for r in view["reads"] if r[4] == 6]
    assert whoami and whoami[0][3] == -1  # read nothing: its greenlet never set it
    assert trace.requests[6].note == "read local 'user' and got nothing value"


def test_races_are_in_the_view_and_big_runs_have_none() -> None:
    trace = simulator.run(presets.get("lost-update-39").scenario)
    view = context_view(trace)
    assert view is not None and view["races"] and not view["stores"]
    assert context_view(trace, max_requests=2) is None
