"""The lab blueprint: refused when disabled or given a bad scenario (before anything
starts), one run at a time, status and result of a real run."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from wsgiscope.app.lab.web import bp

Procs = Callable[[], list[tuple[int, str]]]

QUICK = {
    "name": "three quick requests",
    "server": {"kind": "werkzeug", "threaded": True},
    "endpoints": {"/sleep": [{"io_ms": 50}]},
    "workload": [{"at_ms": 0, "count": 3, "path": "/sleep"}],
}


def make_client(enabled: bool) -> FlaskClient:
    app = Flask(__name__)
    app.config.update(TESTING=True, LAB_ENABLED=enabled)
    app.register_blueprint(bp)
    return app.test_client()


def wait_done(client: FlaskClient, run_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/lab/status/{run_id}").get_json()
        assert 0.0 <= status["progress"] <= 1.0
        if status["state"] != "running":
            return status  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("the lab run did not finish")


def test_lab_is_refused_when_disabled(lab_procs: Procs) -> None:
    client = make_client(enabled=False)
    resp = client.post("/lab/run", data={"scenario": json.dumps(QUICK)})
    assert resp.status_code == 403
    assert "--allow-lab" in resp.get_json()["error"]
    assert lab_procs() == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "scenario", "missing"),
        ({"scenario": "{not json"}, "scenario", "not valid JSON"),
        (
            {"scenario": json.dumps({**QUICK, "server": {"kind": "gunicorn", "workers": 0}})},
            "server.workers",
            "between 1 and",
        ),
        ({"scenario": json.dumps({**QUICK, "endpoints": {}})}, "endpoints", "at least one"),
        (
            {"scenario": json.dumps({**QUICK, "workload": [{"count": 3000, "path": "/sleep"}]})},
            "workload",
            "at most 2,000",
        ),
        (
            {
                "scenario": json.dumps(
                    {
                        **QUICK,
                        "workload": [
                            {"constant": {"rate_per_s": 1, "duration_s": 300}, "path": "/sleep"}
                        ],
                    }
                )
            },
            "workload",
            "at most 120 s",
        ),
    ],
)
def test_a_bad_scenario_is_refused_before_anything_starts(
    body: dict[str, Any], field: str, words: str, lab_procs: Procs
) -> None:
    client = make_client(enabled=True)
    for resp in (client.post("/lab/run", data=body), client.post("/lab/run", json=body)):
        assert resp.status_code == 422
        data = resp.get_json()
        assert data["field"] == field
        assert words in data["error"]
        assert lab_procs() == []


@pytest.mark.lab
def test_a_run_reports_progress_and_returns_trace_and_comparison(lab_procs: Procs) -> None:
    client = make_client(enabled=True)
    resp = client.post("/lab/run", json={"scenario": json.dumps(QUICK)})
    assert resp.status_code == 202
    run_id = resp.get_json()["run_id"]
    # one run at a time per instance
    busy = client.post("/lab/run", json={"scenario": QUICK})
    assert busy.status_code == 409
    assert run_id in busy.get_json()["error"]
    status = wait_done(client, run_id)
    assert status["state"] == "done", status
    assert status["progress"] == 1.0
    result = client.get(f"/lab/result/{run_id}").get_json()
    trace = result["trace"]
    assert trace["source"] == "measured"
    assert [r["status"] for r in trace["requests"]] == ["ok"] * 3
    assert trace["events"] and trace["processes"]
    comparison = result["comparison"]
    assert len(comparison["rows"]) == 3
    assert comparison["summary"]["status_mismatches"] == 0
    assert lab_procs() == []
    # the instance is free again
    again = client.post("/lab/run", json={"scenario": QUICK})
    assert again.status_code == 202
    assert wait_done(client, again.get_json()["run_id"])["state"] == "done"


def test_unknown_runs_are_404() -> None:
    client = make_client(enabled=True)
    assert client.get("/lab/status/nope").status_code == 404
    assert client.get("/lab/result/nope").status_code == 404
