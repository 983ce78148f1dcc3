"""A quick subset of the public fidelity suite (tests/fidelity/), two measured runs each, so
a regression in the model or the lab shows in the default test run. The whole suite is a
script: ``wsgiscope fidelity`` (about 15 minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from wsgiscope.app.lab.fidelity import format_case, load_case, run_case

SUITE = Path(__file__).resolve().parents[1] / "fidelity"

#: One per mechanism family: a thread's staircase, a worker timeout's status and
#: replacement on sync and on gevent (no response, the kill timed from the loop's
#: heartbeat), a slow client holding a sync worker, gevent cutting one off at keepalive.
QUICK = (
    "01-wz-single-staircase.json",
    "17-sync-timeout-kill.json",
    "26-gevent-timeout-kill.json",
    "18-sync-slow-client.json",
    "27-gevent-slow-client.json",
)


@pytest.mark.lab
@pytest.mark.parametrize("name", QUICK)
def test_the_measured_runs_fall_inside_the_simulated_spread(name: str) -> None:
    case = load_case(SUITE / name)
    result = run_case(case["scenario"], runs=2, seeds=case["seeds"], families=case.get("judge"))
    report = format_case(result)
    # How requests end does not depend on how busy the machine is: always judged.
    statuses = [r for r in result["statistics"] if r["name"].startswith("status ")]
    assert statuses and all(r["agrees"] for r in statuses), report
    if not result["agrees"] and result["busy_runs"]:
        # Timings taken while other programs used the cores say nothing about the model.
        pytest.xfail(f"timings disagree, but the machine was busy:\n{report}")
    assert result["agrees"], report
