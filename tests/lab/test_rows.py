"""The measured table of docs/ARCHITECTURE.md, measured again on this machine (1 s sleeps
scaled to 0.5 s).

Ten simultaneous clients each ``GET /sleep``: the staircase (one thread), all at once (a
thread each, or greenlets), and waves (4 processes, 2 sync workers, 1 worker x 4 threads).
For each row the completion times are checked for the row's shape, and ``compare`` must
find the simulation of the same scenario within 10 % (or 30 ms) of every measured request.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from wsgiscope import simulator
from wsgiscope.app.lab.compare import compare
from wsgiscope.app.lab.measure import measure
from wsgiscope.app.lab.sampler import listening_ports

SLEEP_MS = 500.0

ROWS = {
    # row: (server, completion times in units of the sleep, as a multiset)
    "app.run(threaded=False)": (
        {"kind": "werkzeug", "threaded": False},
        {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 1, 9: 1, 10: 1},
    ),
    "app.run(threaded=True)": ({"kind": "werkzeug", "threaded": True}, {1: 10}),
    "app.run(threaded=False, processes=4)": (
        {"kind": "werkzeug", "threaded": False, "processes": 4},
        {1: 4, 2: 4, 3: 2},
    ),
    "gunicorn -w 2 (sync)": (
        {"kind": "gunicorn", "worker_class": "sync", "workers": 2},
        {1: 2, 2: 2, 3: 2, 4: 2, 5: 2},
    ),
    "gunicorn -w 1 --threads 4": (
        {"kind": "gunicorn", "worker_class": "gthread", "workers": 1, "threads": 4},
        {1: 4, 2: 4, 3: 2},
    ),
    "gunicorn -k gevent": (
        {"kind": "gunicorn", "worker_class": "gevent", "workers": 1},
        {1: 10},
    ),
}


def scenario(server: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "ten users hit /sleep",
        "server": server,
        "endpoints": {"/sleep": [{"io_ms": SLEEP_MS}]},
        "workload": [{"at_ms": 0, "count": 10, "path": "/sleep", "spacing_ms": 0}],
    }


@pytest.mark.lab
@pytest.mark.parametrize("row", list(ROWS))
def test_measured_row_has_its_shape_and_matches_the_simulation(row: str) -> None:
    server, shape = ROWS[row]
    sc = scenario(server)
    measured = measure(sc)

    assert measured.source == "measured"
    assert [r.status for r in measured.requests] == ["ok"] * 10
    assert all(r.http_status == 200 for r in measured.requests)
    # wave k finishes after k sleeps plus small overheads (werkzeug adds ~10 ms a request)
    waves = Counter(int(r.finished_ms // SLEEP_MS) for r in measured.requests)
    assert dict(waves) == shape
    # every request was seen by the server, with its thread and stages
    assert measured.summary["lab"]["server_records"] == 10
    stages = {e.ref for e in measured.events if e.kind == "req" and e.what == "stage"}
    assert {"recv", "parse", "context", "match", "view", "write"} <= stages
    assert measured.summary["lab"]["port"] not in listening_ports()

    result = compare(simulator.run(sc), measured)
    bad = [r for r in result["rows"] if not r["within"]]
    assert bad == [], f"{row}: simulation off: {bad}"
    assert result["summary"]["status_mismatches"] == 0
    assert result["summary"]["agrees"]
