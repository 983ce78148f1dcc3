"""Flask's hooks as the engine runs them: the order and status of every path Flask 3.1
takes (flask/app.py: full_dispatch_request, handle_user_exception, handle_exception,
finalize_request; ctx.py: RequestContext.pop), and the segments' checks."""

from __future__ import annotations

from typing import Any

import pytest
from flask_cases import CASES, HEAD, TAIL, scenario
from wsgiscope import simulator
from wsgiscope.simulator import ScenarioError
from wsgiscope.simulator.dispatch import dispatch


def stages(trace: simulator.Trace, rid: int) -> list[str]:
    return [str(e.ref) for e in trace.request_events(rid) if e.what == "stage"]


def test_every_path_runs_flasks_hooks_in_flasks_order() -> None:
    trace = simulator.run(scenario())
    for r, (path, (_segs, middle, status, outcome)) in zip(trace.requests, CASES.items(),
                                                              strict=True):
        assert r.path == path
        assert stages(trace, r.id) == HEAD + middle + TAIL, path
        assert r.http_status == status
        assert r.status == ("error" if status >= 500 else "ok")
        said = [str(e.ref) for e in trace.request_events(r.id) if e.what == "outcome"]
        assert (said == []) if not outcome else (len(said) == 1 and outcome in said[0]), path


def test_hooks_are_stages_even_when_they_cost_nothing() -> None:
    sc = scenario({"/login": CASES["/login"]})
    sc["costs"] = {"before_request_ms": 0, "after_request_ms": 0, "teardown_ms": 0,
                   "error_ms": 0}
    assert stages(simulator.run(sc), 0) == HEAD + TAIL


def test_errorhandler_500_catches_unhandled_exceptions_and_abort_500() -> None:
    d = dispatch([{"raise": 500}], handles_500=True)
    assert d.handler and d.teardown_exc and d.status == 500
    assert dispatch([{"abort": 500}], handles_500=True).handler
    assert not dispatch([{"abort": 500}], handles_500=False).handler
    handled = dispatch([{"raise": 418}])
    assert handled.handler and not handled.teardown_exc and handled.status == 418
    refused = dispatch([{"cpu_ms": 2}, {"short_circuit": 302}])
    assert refused.view is None and refused.before == ({"cpu_ms": 2},)


def test_error_stage_takes_its_cost() -> None:
    sc = scenario({"/boom": CASES["/boom"]})
    sc["costs"] = {"error_ms": 4}
    trace = simulator.run(sc)
    marks = [(str(e.ref), e.t) for e in trace.request_events(0) if e.what == "stage"]
    at = dict(marks)
    assert at["after_request"] - at["error"] >= 4.0 - 1e-9  # times are sums of floats


@pytest.mark.parametrize(
    ("endpoints", "field", "words"),
    [
        ({"/a": [{"short_circuit": 401}, {"cpu_ms": 1}]}, "endpoints./a[1]",
         "cannot follow short_circuit"),
        ({"/a": [{"abort": 402}]}, "endpoints./a[0].abort", "abort() knows"),
        ({"/a": [{"raise": "oops"}]}, "endpoints./a[0].raise", '"unhandled"'),
        ({"/a": [{"raise": 200}]}, "endpoints./a[0].raise", "400-599"),
        ({"/a": [{"cpu_ms": 1}, {"route": "missing"}]}, "endpoints./a[1].route",
         "only segment"),
        ({"/a": [{"route": "elsewhere"}]}, "endpoints./a[0].route", '"missing"'),
        ({"/a": [{"short_circuit": 99}]}, "endpoints./a[0].short_circuit", "between 200"),
        ({"/a": [{"raise": "unhandled"}], "/b": [{"raise": 500}]}, "endpoints./a[0].raise",
         "errorhandler(500) belongs to the whole app"),
        ({"/a": [{"increment": "n", "times": 0}]}, "endpoints./a[0].times", "between 1"),
        ({"/a": [{"increment": "n", "locked": True}]}, "endpoints./a[0].locked",
         "not a field of an increment"),
        ({"/a": [{"increment": "n", "call": 1}]}, "endpoints./a[0].call", "true or false"),
        ({"/a": [{"cpu_ms": 1, "io_ms": 1}]}, "endpoints./a[0]", "one segment"),
    ],
)
def test_bad_segments_name_the_field(endpoints: dict[str, Any], field: str, words: str) -> None:
    sc = {"endpoints": endpoints, "workload": [{"path": "/a"}]}
    with pytest.raises(ScenarioError) as info:
        simulator.load_scenario(sc)
    assert info.value.field == field
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_increment_needs_a_gil() -> None:
    sc = {"machine": {"gil": False}, "endpoints": {"/a": [{"increment": "n"}]},
          "workload": [{"path": "/a"}]}
    with pytest.raises(ScenarioError, match="needs a GIL"):
        simulator.load_scenario(sc)


def test_machine_python_is_a_known_version() -> None:
    with pytest.raises(ScenarioError, match="machine.python: must be one of"):
        simulator.load_scenario({"machine": {"python": "2.7"}, "endpoints": {"/a": []},
                                 "workload": [{"path": "/a"}]})
    sc = simulator.load_scenario({"endpoints": {"/a": []}, "workload": [{"path": "/a"}]})
    assert sc.machine["python"] == "3.11"
