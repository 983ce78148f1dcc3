"""Pages and htmx fragments.

The scenario panel is a plain HTML form (:mod:`.forms`). Every route that takes one
validates it with :func:`simulator.load_scenario`; a bad field comes back as the form
fragment with that field marked and the engine's message beside it (HTTP 422), so htmx
swaps only the form and nothing else on the page is lost. A good scenario comes back as
the ``run`` fragment, whose data attributes the page's script hands to the WebSocket.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from wsgiscope import simulator
from wsgiscope.simulator.trace import Trace
from wsgiscope.simulator.validation import parse_scenario_text

from ..runs import prepare
from .exports import encode_share, scenario_from_query, share_url
from .forms import (
    ADVANCED_FIELDS,
    DEFAULT_PRESET,
    GUNICORN_FIELDS,
    MACHINE_FIELDS,
    WERKZEUG_FIELDS,
    all_presets,
    default_scenario,
    form_field_for,
    form_values,
    load_for_page,
    scenario_from_form,
)
from .tour import identify, lesson_context, lesson_of, origin_of

bp = Blueprint("views", __name__)

# --- rendering helpers ---------------------------------------------------------------------


def _lab_available() -> bool:
    return any(rule.rule == "/lab/run" for rule in current_app.url_map.iter_rules())


def _preset_list() -> list[dict[str, str]]:
    return [{"name": k, "title": p.title, "lesson": p.lesson} for k, p in all_presets().items()]


def _form(values: dict[str, str], error: tuple[str, str] | None = None,
          preset: str = "", origin: str = "") -> str:
    return render_template(
        "_fragments/_form.html",
        v=values,
        error_field=error[0] if error else None,
        error_message=error[1] if error else "",
        werkzeug_fields=WERKZEUG_FIELDS,
        gunicorn_fields=GUNICORN_FIELDS,
        machine_fields=MACHINE_FIELDS,
        advanced_fields=ADVANCED_FIELDS,
        preset=preset,
        origin=origin or values.get("from", ""),
        lab_available=_lab_available(),
        lab_enabled=bool(current_app.config.get("LAB_ENABLED")),
    )


def _run(scenario: dict[str, Any], play: bool, oob: bool = False) -> str:
    return render_template(
        "_fragments/_run.html",
        scenario=scenario,
        scenario_json=json.dumps(scenario, separators=(",", ":")),
        share=share_url(scenario),
        s=encode_share(scenario),
        play=play,
        oob=oob,
    )


def _lesson(name: str, origin: str = "", oob: bool = True) -> str:
    """The lesson's words and data (question, focus, takeaway, the tour's neighbours)."""
    return render_template("_fragments/_lesson.html", les=lesson_context(name, origin), oob=oob)


def _invalid(values: dict[str, str], exc: Exception) -> Response:
    field = getattr(exc, "field", "")
    message = getattr(exc, "message", None) or str(exc)
    target = form_field_for(field)
    shown = message if not field or target == field else f"{field}: {message}"
    resp = Response(_form(values, (target, shown)), status=422)
    resp.headers["HX-Retarget"] = "#scenario-form"
    resp.headers["HX-Reswap"] = "outerHTML"
    return resp


# --- routes --------------------------------------------------------------------------------


@bp.get("/")
def index() -> Any:
    """The page. ``?s=<share>&seed=N`` reopens a shared run; ``?preset=name`` loads one."""
    status = 200
    error = None
    preset = request.args.get("preset", "")
    scenario: dict[str, Any] | None = None
    origin = ""
    try:
        if request.args.get("s"):
            scenario, _seed = scenario_from_query()
            # a shared lesson, unchanged, opens as the lesson
            preset = lesson_of(scenario)
            origin = preset or origin_of(scenario)
        elif preset:
            try:
                p = simulator.presets.get(preset, all_presets())
            except KeyError:
                raise simulator.ScenarioError(
                    "", f"there is no preset {preset!r} (known: {', '.join(all_presets())})"
                ) from None
            scenario = simulator.load_scenario(p.scenario).to_dict()
    except simulator.ScenarioError as exc:
        status = 422
        error = (form_field_for(exc.field), str(exc))
        scenario = None
    if scenario is None:
        if not preset or error:
            preset = DEFAULT_PRESET if DEFAULT_PRESET in all_presets() else ""
        scenario = simulator.load_scenario(default_scenario()).to_dict()
    values = form_values(scenario)
    les = lesson_context(preset, origin or preset)
    html = render_template(
        "index.html",
        presets=_preset_list(),
        preset=preset,
        les=les,
        own_label=les["own_label"],
        form_html=_form(values, error, preset, origin or preset),
        run_html=_run(scenario, play=False),
        autostart=error is None,
    )
    return html, status


@bp.get("/fragments/preset")
def preset_fragment() -> Any:
    """The form filled with a preset, plus (out of band) its run and lesson."""
    name = request.args.get("preset", "")
    try:
        p = simulator.presets.get(name, all_presets())
    except KeyError:
        return _invalid(form_values(default_scenario()), simulator.ScenarioError(
            "", f"there is no preset {name!r} (known: {', '.join(all_presets())})"))
    scenario = simulator.load_scenario(p.scenario).to_dict()
    return (_form(form_values(scenario), preset=name, origin=name)
            + _run(scenario, False, oob=True) + _lesson(name, name))


@bp.post("/simulate")
def simulate() -> Any:
    """Validate the form; 200 with the run fragment, or 422 with the form marked.

    The run loads paused. An edited lesson stops being the lesson (see :mod:`.tour`)."""
    values = {k: v for k, v in request.form.items()}
    try:
        data = scenario_from_form(request.form)
        scenario = load_for_page(data).to_dict()
    except simulator.ScenarioError as exc:
        return _invalid(values, exc)
    scenario, name, origin = identify(scenario, request.form.get("from", ""))
    return (_form(form_values(scenario), preset=name, origin=origin)
            + _run(scenario, play=False, oob=True) + _lesson(name, origin))


@bp.post("/scenario/import")
def import_scenario() -> Any:
    """Load a scenario JSON file (or pasted text) into the form."""
    values = {k: v for k, v in request.form.items()}
    upload = request.files.get("file")
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    if upload:
        try:
            text: str | bytes = upload.read(limit + 1)
        finally:
            upload.close()  # a large upload is a temporary file
    else:
        text = request.form.get("text", "")
    try:
        try:
            data = parse_scenario_text(text, limit)
        except simulator.ScenarioError as exc:
            raise simulator.ScenarioError("", f"the file {exc.message}") from None
        scenario = load_for_page(data).to_dict()
    except simulator.ScenarioError as exc:
        return _invalid(values or form_values(default_scenario()), exc)
    scenario, name, origin = identify(scenario)
    return (_form(form_values(scenario), preset=name, origin=origin)
            + _run(scenario, play=False, oob=True) + _lesson(name, origin))


@bp.post("/api/timeline")
def timeline_api() -> Any:
    """Encode a Trace (``Trace.to_dict()`` JSON, e.g. a lab measurement) for the page."""
    try:
        data = parse_scenario_text(request.get_data(cache=False),
                                   current_app.config["MAX_UPLOAD_BYTES"])
    except simulator.ScenarioError as exc:
        return jsonify({"field": "trace", "error": f"the body {exc.message}"}), 422
    if isinstance(data, dict) and isinstance(data.get("trace"), dict):
        data = data["trace"]
    try:
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object: a trace")
        trace = Trace.from_dict(data)
        prepared = prepare(trace, current_app.config["MAX_FRAMES"], key="measured")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        return jsonify({"field": "trace", "error": f"not a wsgiscope trace ({exc})"}), 422
    return jsonify(prepared.whole())
