import csv
import io
import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
from flask import Blueprint, jsonify
from wsgiscope import simulator
from wsgiscope.app import create_app
from wsgiscope.app.web.exports import decode_share, encode_share
from wsgiscope.app.web.forms import form_field_for, form_values, scenario_from_form

TEN_USERS = "dev-single-thread"


def form_for(preset: str = TEN_USERS, **changes: str) -> dict[str, str]:
    values = form_values(simulator.load_scenario(simulator.presets.get(preset).scenario).to_dict())
    values.update(changes)
    return values


def run_info(html: str) -> dict:
    m = re.search(r'id="run-info"[^>]*data-scenario="([^"]*)"', html, re.S)
    assert m, "no run fragment"
    return json.loads(m.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&"))


def test_index_lists_every_preset_and_starts_on_ten_users(client):
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    for name, preset in simulator.presets.PRESETS.items():
        assert f'value="{name}"' in html
        assert preset.title.replace("'", "&#39;") in html or preset.title in html
    assert re.search(rf'<option value="{TEN_USERS}"[^>]*selected>', html)
    assert simulator.presets.get(TEN_USERS).lesson in html
    assert run_info(html)["server"] == {"kind": "werkzeug", "threaded": False, "processes": 1,
                                        "backlog": 128}
    assert "htmx-2.0.11.min.js" in html and 'id="timeline"' in html and 'id="house"' in html


def test_vendored_htmx_and_its_licence_are_served(client):
    for name in ("htmx-2.0.11.min.js", "htmx-2.0.11.LICENSE"):
        with client.get(f"/static/vendor/{name}") as resp:
            assert resp.status_code == 200
            body = resp.get_data()
        if name.endswith("LICENSE"):
            assert b"Zero-Clause BSD" in body


@pytest.mark.parametrize("name", sorted(simulator.presets.PRESETS))
def test_preset_fragment_fills_the_form_and_its_run(client, name):
    preset = simulator.presets.get(name)
    resp = client.get(f"/fragments/preset?preset={name}", headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert html.startswith('<form id="scenario-form"')
    assert 'hx-swap-oob="true"' in html and 'id="lesson"' in html
    assert preset.lesson.replace("'", "&#39;") in html or preset.lesson in html
    assert run_info(html) == simulator.load_scenario(preset.scenario).to_dict()


def test_simulate_returns_the_normalised_run(client):
    resp = client.post("/simulate", data=form_for(), headers={"HX-Request": "true"})
    assert resp.status_code == 200
    scenario = run_info(resp.get_data(as_text=True))
    assert scenario["workload"][0]["count"] == 10
    assert scenario["costs"]["parse_ms"] > 0  # defaults filled in


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"server.processes": "0"}, "server.processes", "between 1 and 256"),
        ({"server.processes": "lots"}, "server.processes", "'lots'"),
        ({"machine.cores": "0"}, "machine.cores", "between 1 and 256"),
        ({"endpoints": "{not json"}, "endpoints", "not valid JSON"),
        ({"workload": '[{"at_ms": 0, "count": 10, "path": "/nope"}]'}, "workload", "'/nope'"),
        ({"server.kind": "gunicorn", "server.workers": "0"}, "server.workers",
         "gunicorn needs at least one worker"),
    ],
)
def test_a_bad_field_is_a_422_fragment_naming_it(client, changes, field, words):
    data = form_for(**changes)
    resp = client.post("/simulate", data=data, headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert resp.headers["HX-Retarget"] == "#scenario-form"
    assert html.startswith('<form id="scenario-form"')  # only the form is swapped
    assert 'id="run-info"' not in html
    m = re.search(rf'<p class="error" id="err-{re.escape(field)}" role="alert">([^<]*)</p>', html)
    assert m, html
    assert words in m.group(1).replace("&#39;", "'")
    assert f'id="f-{field}" name="{field}"' in html
    # what the user typed is still there
    for name, value in changes.items():
        if name not in ("endpoints", "workload"):
            assert re.search(rf'name="{re.escape(name)}"[^>]*value="{re.escape(value)}"', html) or \
                f'value="{value}" selected' in html


def test_error_fields_map_to_form_inputs():
    assert form_field_for("server.workers") == "server.workers"
    assert form_field_for("endpoints./cpu[0].cpu_ms") == "endpoints"
    assert form_field_for("workload[2].poisson.rate_per_s") == "workload"
    assert form_field_for("costs.parse_ms") == "costs"
    assert form_field_for("seed") == "seed"
    assert form_field_for("") == ""


def test_form_round_trips_every_preset():
    for preset in simulator.presets.PRESETS.values():
        clean = simulator.load_scenario(preset.scenario).to_dict()
        again = simulator.load_scenario(scenario_from_form(form_values(clean))).to_dict()
        assert again == clean, preset.name


def test_share_link_round_trips_scenario_and_seed(client):
    resp = client.post("/simulate", data=form_for(**{"seed": "42", "server.backlog": "5"}),
                       headers={"HX-Request": "true"})
    html = resp.get_data(as_text=True)
    share = re.search(r'data-share="([^"]+)"', html).group(1).replace("&amp;", "&")
    query = parse_qs(urlparse(share).query)
    assert query["seed"] == ["42"]
    page = client.get(urlparse(share).path + "?" + urlparse(share).query)
    assert page.status_code == 200
    reopened = run_info(page.get_data(as_text=True))
    assert reopened == run_info(html)
    assert reopened["seed"] == 42 and reopened["server"]["backlog"] == 5


def test_share_link_seed_overrides_and_a_damaged_link_is_a_clear_error(client, app):
    scenario = simulator.load_scenario(simulator.presets.get(TEN_USERS).scenario).to_dict()
    with app.test_request_context():
        s = encode_share(scenario)
        assert decode_share(s) == scenario
    page = client.get(f"/?s={s}&seed=7")
    assert run_info(page.get_data(as_text=True))["seed"] == 7
    bad = client.get("/?s=this-is-not-a-share-link")
    assert bad.status_code == 422
    assert "share link is damaged" in bad.get_data(as_text=True)
    assert 'id="timeline"' in bad.get_data(as_text=True)  # the page still works


def test_import_json_file_fills_the_form(client):
    scenario = simulator.presets.get("gunicorn-sync-2").scenario
    data = {"file": (io.BytesIO(json.dumps(scenario).encode()), "s.json")}
    resp = client.post("/scenario/import", data=data, content_type="multipart/form-data")
    assert resp.status_code == 200
    assert run_info(resp.get_data(as_text=True))["server"]["kind"] == "gunicorn"
    bad = {"file": (io.BytesIO(b'{"server": {"kind": "uwsgi"}}'), "s.json")}
    resp = client.post("/scenario/import", data=bad, content_type="multipart/form-data")
    assert resp.status_code == 422
    assert "server.kind" in resp.get_data(as_text=True)


def _share_query(app, preset=TEN_USERS):
    scenario = simulator.load_scenario(simulator.presets.get(preset).scenario).to_dict()
    with app.test_request_context():
        return f"s={encode_share(scenario)}&seed={scenario['seed']}"


def test_exports_are_the_clis_formats(client, app):
    from wsgiscope.simulator import export

    q = _share_query(app)
    trace = simulator.run(simulator.presets.get(TEN_USERS).scenario)
    chrome = client.get(f"/export/trace.json?{q}")
    assert "attachment" in chrome.headers["Content-Disposition"]
    events = json.loads(chrome.data)["traceEvents"]
    assert json.loads(chrome.data) == json.loads(json.dumps(export.to_chrome_trace(trace)))
    assert any(e["ph"] == "X" for e in events) and any(e["ph"] == "C" for e in events)
    text = client.get(f"/export/requests.csv?{q}").get_data(as_text=True)
    assert text == export.to_csv(trace)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 10
    assert float(rows[9]["finished_ms"]) == pytest.approx(trace.requests[9].finished_ms, abs=0.01)
    table = client.get(f"/export/table.txt?{q}").get_data(as_text=True)
    assert table == export.to_table(trace)
    assert "user 10 gets its response" in table
    scen = client.get(f"/export/scenario.json?{q}")
    assert "attachment" in scen.headers["Content-Disposition"]
    assert json.loads(scen.data)["name"] == simulator.presets.get(TEN_USERS).scenario["name"]
    assert client.get("/export/trace.json?s=garbage").status_code == 422


def test_timeline_api_encodes_a_trace_dict(client):
    trace = simulator.run(simulator.presets.get(TEN_USERS).scenario)
    resp = client.post("/api/timeline", json={"trace": trace.to_dict()})
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["meta"]["n_requests"] == 10
    assert data["frames"]["last"] is True
    assert len(data["frames"]["t"]) == data["meta"]["n_frames"]
    bad = client.post("/api/timeline", json={"trace": {"events": "nope"}})
    assert bad.status_code == 422 and bad.get_json()["field"] == "trace"


def _fake_lab() -> Blueprint:
    bp = Blueprint("lab", __name__, url_prefix="/lab")

    @bp.post("/run")
    def run():
        return jsonify({"run_id": "r1"})

    return bp


@pytest.mark.parametrize(("enabled", "disabled_attr"), [(True, False), (False, True)])
def test_lab_button_follows_blueprint_and_setting(enabled, disabled_attr):
    app = create_app({"TESTING": True, "LAB_ENABLED": enabled})
    if "lab" not in app.blueprints:
        app.register_blueprint(_fake_lab())
    html = app.test_client().get("/").get_data(as_text=True)
    button = re.search(r'<button type="button" id="btn-lab"([^>]*)>', html)
    assert button
    assert ("disabled" in button.group(1)) is disabled_attr


def test_no_lab_button_without_the_blueprint(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_lab(name, *args, **kwargs):
        if name.endswith("lab.web"):
            raise ImportError("no lab")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lab)
    app = create_app({"TESTING": True, "LAB_ENABLED": True})
    monkeypatch.undo()
    assert "lab" not in app.blueprints
    assert 'id="btn-lab"' not in app.test_client().get("/").get_data(as_text=True)


def test_the_page_caps_run_size(client):
    data = form_for(workload='[{"poisson": {"rate_per_s": 1000, "duration_s": 250}, '
                             '"path": "/sleep"}]')
    resp = client.post("/simulate", data=data, headers={"HX-Request": "true"})
    assert resp.status_code == 422
    assert "at most 200,000" in resp.get_data(as_text=True)


def test_the_form_has_an_input_for_every_scenario_field():
    from wsgiscope.app.web.forms import ALL_FIELDS, JSON_FIELDS
    from wsgiscope.simulator.scenario import CLIENT, GUNICORN, MACHINE, WERKZEUG

    names = set(ALL_FIELDS) | set(JSON_FIELDS)
    for section, spec in (("server", WERKZEUG), ("server", GUNICORN), ("machine", MACHINE),
                          ("client", CLIENT)):
        for key in spec:
            assert f"{section}.{key}" in names, f"{section}.{key} has no form input"
