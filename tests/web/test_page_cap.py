"""The page runs scenarios of up to 100,000 requests in pure Python, 200,000 with the compiled
engine (what its own event budget admits of the default scenario: tests/web/test_run_budget.py);
more is refused at once, in one line naming the field and the allowed range."""

from __future__ import annotations

import re

import pytest
from wsgiscope import simulator
from wsgiscope.app import create_app, page_caps
from wsgiscope.app.web.forms import form_values
from wsgiscope.simulator.core import COMPILED


def form(workload: str) -> dict[str, str]:
    scenario = simulator.load_scenario(simulator.presets.get("dev-single-thread").scenario)
    values = form_values(scenario.to_dict())
    values["workload"] = workload
    return values


def alert(html: str) -> str:
    m = re.search(r'role="alert">([^<]*)<', html)
    assert m, html[:500]
    return m.group(1)


def test_the_page_takes_a_hundred_thousand_requests() -> None:
    app = create_app({"TESTING": True})  # its own event budget admits them
    assert app.config["MAX_REQUESTS"] == page_caps(COMPILED)[0] >= 100_000
    resp = app.test_client().post(
        "/simulate", data=form('[{"at_ms": 0, "count": 100000, "path": "/sleep"}]'),
        headers={"HX-Request": "true"})
    assert resp.status_code == 200
    assert 'id="run-info"' in resp.get_data(as_text=True)


@pytest.mark.parametrize(("workload", "says"), [
    ('[{"at_ms": 0, "count": 150000, "path": "/sleep"}]',
     "asks for about 150,000 requests; the page runs at most 100,000 (the "
     "wsgiscope simulate command runs more)"),
    ('[{"at_ms": 0, "count": 200001, "path": "/sleep"}]',
     "workload[0].count: must be between 1 and 200000 (got 200001)"),
    ('[{"poisson": {"rate_per_s": 1000, "duration_s": 250}, "path": "/sleep"}]',
     "asks for about 250,000 requests; at most 200,000 are allowed"),
])
def test_more_is_refused_naming_the_field_and_the_range(client, workload, says) -> None:
    resp = client.post("/simulate", data=form(workload), headers={"HX-Request": "true"})
    assert resp.status_code == 422
    text = resp.get_data(as_text=True)
    assert alert(text) == says
    assert 'aria-invalid="true"' in text and 'name="workload"' in text
