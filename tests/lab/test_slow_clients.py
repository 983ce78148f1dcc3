"""Slow clients, measured: a sync worker is held while a client sends its request; a gevent
worker is not, and cuts off a request that takes longer than keepalive to arrive."""

from __future__ import annotations

import pytest
from wsgiscope import simulator
from wsgiscope.app.lab.compare import compare
from wsgiscope.app.lab.measure import measure


def scenario(worker_class: str) -> dict:
    return {
        "name": f"slow client, {worker_class}",
        "server": {"kind": "gunicorn", "worker_class": worker_class, "workers": 1,
                   "keepalive_s": 1},
        "endpoints": {"/upload": [{"io_ms": 5}], "/ping": [{"io_ms": 5}]},
        "workload": [
            {"at_ms": 0, "count": 1, "path": "/upload", "send_ms": 1500},
            {"at_ms": 100, "count": 3, "path": "/ping", "spacing_ms": 100},
        ],
    }


@pytest.mark.lab
def test_a_slow_client_holds_a_sync_worker() -> None:
    sc = scenario("sync")
    measured = measure(sc)
    slow, *pings = measured.requests
    assert slow.status == "ok" and slow.send_ms == 1500
    assert all(r.status == "ok" and r.finished_ms > 1500 for r in pings)
    assert compare(simulator.run(sc), measured)["summary"]["agrees"]


@pytest.mark.lab
def test_gevent_serves_others_and_cuts_off_the_slow_client_at_keepalive() -> None:
    sc = scenario("gevent")
    measured = measure(sc)
    slow, *pings = measured.requests
    assert slow.status == "reset"
    assert slow.finished_ms == pytest.approx(1000, abs=150)
    assert all(r.status == "ok" and r.finished_ms - r.sent_ms < 100 for r in pings)
    assert compare(simulator.run(sc), measured)["summary"]["agrees"]
