"""The model against the measurements the fidelity suite keeps (no server is run): a case
that agreed when it was last measured must still agree, so a model change that breaks
one shows here in seconds. The full, measured suite is `wsgiscope fidelity`."""

from __future__ import annotations

from pathlib import Path

import pytest
from wsgiscope.app.lab.fidelity import load_suite, stored_case

SUITE = Path(__file__).resolve().parents[1] / "fidelity"
CASES = load_suite(SUITE)
AGREED = [case for _path, case in CASES if case.get("measured", {}).get("verdict") == "agrees"]


def test_the_suite_keeps_measured_figures_for_every_case() -> None:
    assert len(CASES) >= 25
    assert all(case.get("measured", {}).get("statistics") for _p, case in CASES)


@pytest.mark.parametrize("case", AGREED, ids=[c["case"] for c in AGREED])
def test_a_case_that_agreed_when_measured_still_agrees(case: dict) -> None:
    res = stored_case(case)
    bad = [f"{s['name']}: measured {s['measured']}, simulated {s['sim']['lo']}-{s['sim']['hi']}"
           for s in res["statistics"] if not s["agrees"]]
    assert not bad, f"{case['case']}: " + "; ".join(bad)


def test_a_stored_judgement_is_a_real_one() -> None:
    # the same kept figures judged against another scenario's model must not agree
    case = next(c for c in AGREED if c["case"] == "wz-single-staircase")
    slower = {**case, "scenario": {**case["scenario"],
                                   "endpoints": {"/sleep": [{"io_ms": 300}]}}}
    assert not stored_case(slower)["agrees"]
