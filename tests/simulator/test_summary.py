"""The summary of a Trace is what the one loop over every request it replaced gave, and the
event log's remembered deepest backlog is what reading every event gives, however the log
was written (the run's recorder, ``append``, ``extend``, slice assignment).

The replaced implementations are kept here as the references.
"""

from __future__ import annotations

import math
import random
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.core import Env
from wsgiscope.simulator.request import Recorder, Request
from wsgiscope.simulator.trace import (
    STATUSES,
    Event,
    EventLog,
    RequestRecord,
    Trace,
    percentile,
    summarise,
)


def reference_max_backlog(log: EventLog) -> Any:
    backlog = log.code("backlog")
    return max((what for code, what in zip(log.codes, log.what, strict=True) if code == backlog),
               default=0)


def reference_summary(trace: Trace) -> dict[str, Any]:
    """``summarise`` as it was: one interpreted pass over the requests, one over the events."""
    reqs = trace.requests
    ok: list[float] = []
    counts = dict.fromkeys(STATUSES, 0)
    makespan = cpu = gil = on_thread = queue = 0.0
    syn = 0
    for r in reqs:
        counts[r.status] = counts.get(r.status, 0) + 1
        fin = r.finished_ms
        if fin is not None:
            if fin > makespan:
                makespan = fin
            if r.status == "ok":
                ok.append(fin - r.sent_ms)
            if r.accepted_ms is not None:
                on_thread += fin - r.accepted_ms
        cpu += r.cpu_ms
        gil += r.gil_wait_ms
        queue += r.queue_ms
        syn += r.syn_retries
    ok.sort()
    completed = len(ok)
    return {
        "requests": len(reqs), "completed": completed, "failed": len(reqs) - completed,
        "errors": counts["error"], "timeouts": counts["timeout"], "resets": counts["reset"],
        "makespan_ms": round(makespan, 3),
        "throughput_rps": round(completed / (makespan / 1000.0), 3) if makespan > 0 else 0.0,
        "latency_ms": {
            "mean": round(sum(ok) / len(ok), 3) if ok else 0.0,
            "p50": round(percentile(ok, 50), 3), "p95": round(percentile(ok, 95), 3),
            "p99": round(percentile(ok, 99), 3), "max": round(ok[-1], 3) if ok else 0.0,
        },
        "max_backlog": reference_max_backlog(trace.events),
        "syn_retries": syn,
        "mean_queue_ms": round(queue / len(reqs), 3) if reqs else 0.0,
        "gil_wait_pct": round(100.0 * gil / on_thread, 2) if on_thread > 0 else 0.0,
        "cpu_utilisation": (
            round(cpu / (trace.cores * makespan), 4) if makespan > 0 and trace.cores else 0.0
        ),
    }


def _random_records(rng: random.Random, n: int) -> list[RequestRecord]:
    out = []
    for i in range(n):
        sent = rng.uniform(0, 1000)
        acc = None if rng.random() < 0.2 else sent + rng.expovariate(0.1)
        fin = None if rng.random() < 0.2 else sent + rng.expovariate(0.01)
        out.append(RequestRecord(
            i, "/x", sent, acc, acc, fin, rng.choice([*STATUSES, "ok", "ok", "odd"]),
            200, "w1", "w1/t1", rng.randrange(3), rng.choice([0, 0.0, rng.random()]),
            rng.random() / 3, rng.choice([0, rng.random() * 1e-9, rng.expovariate(1.0)])))
    return out


def test_the_summary_is_the_one_loop_s_to_the_bit() -> None:
    rng = random.Random(7)
    for n in (0, 1, 2, 17, 500):
        events = [Event(float(i), rng.choice(["backlog", "req", "thread"]), "listen",
                        rng.randrange(50), -1) for i in range(rng.randrange(200))]
        trace = Trace(scenario={}, source="simulated", events=events,
                      requests=_random_records(rng, n), cores=rng.choice([0, 1, 8]))
        got, want = summarise(trace), reference_summary(trace)
        assert got == want
        # to the bit, not only equal: the same floats, in the same places
        assert repr(got) == repr(want)


def test_a_run_s_summary_is_the_one_loop_s() -> None:
    for name in ("mm8-queue", "backlog-overflow", "gil-cpu-threads"):
        from wsgiscope.simulator import presets
        lesson = next(x for x in presets.all() if x.name == name)
        trace = simulator.run(lesson.scenario, seed=3)
        want = reference_summary(trace)
        got = {k: v for k, v in trace.summary.items() if k in want}
        assert got == want


def test_the_deepest_backlog_is_remembered_through_every_way_of_writing() -> None:
    rng = random.Random(3)
    env = Env()
    rec = Recorder(env)
    req = Request(1, "/", 0.0)
    log = rec.events
    assert log.max_backlog() == 0
    for step in range(30_000):  # several of the recorder's batches
        env.now = float(step)
        roll = rng.random()
        if roll < 0.3:
            rec.backlog(rng.randrange(40 + step // 1000))
        elif roll < 0.6:
            rec.req(req, "stage", "view")
        elif roll < 0.62:
            rec.events.append(Event(env.now, "backlog", "listen", rng.randrange(90), -1))
        elif roll < 0.63:
            rec.events.append(Event(env.now, "core", "w1/t1", 0, "x"))
        else:
            rec.thread("w1/t1", "io", req)
        if step % 4999 == 0:
            log = rec.events
            assert log.max_backlog() == reference_max_backlog(log)
    log = rec.events
    assert log.max_backlog() == reference_max_backlog(log)
    # history rewritten: the memory starts over
    log[:] = [e for e in log if not (e.kind == "backlog" and e.what > 30)]
    assert log.max_backlog() == reference_max_backlog(log) <= 30
    log.extend([Event(1e9, "backlog", "listen", 1000, -1)])
    assert log.max_backlog() == 1000
    log[:] = []
    assert log.max_backlog() == 0
    assert EventLog([Event(0.0, "req", 1, "syn", "0")]).max_backlog() == 0
    assert EventLog([Event(0.0, "backlog", "listen", 0, -1)]).max_backlog() == 0
    assert math.isinf(EventLog([Event(0.0, "backlog", "listen", math.inf, -1)]).max_backlog())
