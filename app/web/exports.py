"""Share links and exports.

A share link carries the whole scenario in the URL (``?s=<zlib + base64url JSON>&seed=N``),
so a run reopens anywhere without server state. The exports read the same query and give
what the CLI gives (``wsgiscope simulate --format trace|csv|table``), byte for byte.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from flask import Blueprint, Response, abort, current_app, request, url_for
from wsgiscope import simulator
from wsgiscope.simulator import export
from wsgiscope.simulator.trace import Trace
from wsgiscope.simulator.validation import check_seed, parse_scenario_text

from .forms import load_for_page

bp = Blueprint("exports", __name__)


# --- share links ---------------------------------------------------------------------------


def encode_share(scenario: dict[str, Any]) -> str:
    """The ``s`` query value of a share link: the scenario as compressed, URL-safe JSON."""
    raw = json.dumps(scenario, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode_share(text: str) -> dict[str, Any]:
    """The scenario a share link carries; a ScenarioError if it is damaged."""
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        d = zlib.decompressobj()
        raw = d.decompress(packed, current_app.config["MAX_UPLOAD_BYTES"])
        if d.unconsumed_tail:
            raise ValueError("too large")
    except (ValueError, zlib.error) as exc:
        raise simulator.ScenarioError(
            "", f"the share link is damaged and cannot be read ({exc})") from None
    try:
        data = parse_scenario_text(raw, current_app.config["MAX_UPLOAD_BYTES"])
    except simulator.ScenarioError as exc:
        raise simulator.ScenarioError(
            "", f"the share link is damaged and cannot be read: its scenario {exc.message}"
        ) from None
    if not isinstance(data, dict):
        raise simulator.ScenarioError("", "the share link does not hold a scenario")
    return data


def _seed_arg(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return check_seed(raw[:20])  # the one-line message, with the allowed range
    return check_seed(int(raw))


def scenario_from_query() -> tuple[dict[str, Any], int | None]:
    """The validated scenario and seed of this request's ``?s=...&seed=N``."""
    data = decode_share(request.args.get("s", ""))
    seed = _seed_arg(request.args.get("seed"))
    clean = load_for_page(data).to_dict()
    if seed is not None:
        clean["seed"] = seed
    return clean, clean["seed"]


def share_url(scenario: dict[str, Any]) -> str:
    """The page's address that reopens this run."""
    return url_for("views.index", s=encode_share(scenario), seed=scenario.get("seed"),
                   _external=True)


# --- exports -------------------------------------------------------------------------------


def _export_trace() -> tuple[dict[str, Any], Trace]:
    try:
        scenario, seed = scenario_from_query()
        trace = simulator.run(scenario, seed=seed,
                              max_events=current_app.config.get("SIM_MAX_EVENTS"))
    except simulator.ScenarioError as exc:  # a BudgetError too
        abort(Response(f"{exc}\n", status=422, mimetype="text/plain"))
    return scenario, trace


def _download(body: str, filename: str, mimetype: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


@bp.get("/export/scenario.json")
def export_scenario() -> Response:
    try:
        scenario, _ = scenario_from_query()
    except simulator.ScenarioError as exc:
        return Response(f"{exc}\n", status=422, mimetype="text/plain")
    return _download(json.dumps(scenario, indent=2) + "\n", "scenario.json", "application/json")


@bp.get("/export/trace.json")
def export_chrome_trace() -> Response:
    """The run as Chrome trace-event JSON: open it in Perfetto or chrome://tracing."""
    _, trace = _export_trace()
    return _download(json.dumps(export.to_chrome_trace(trace)) + "\n", "wsgiscope-trace.json",
                     "application/json")


@bp.get("/export/requests.csv")
def export_csv() -> Response:
    _, trace = _export_trace()
    return _download(export.to_csv(trace), "wsgiscope-requests.csv", "text/csv")


@bp.get("/export/table.txt")
def export_table() -> Response:
    """The narration, the request table and the summary, as the CLI's ``table`` prints."""
    _, trace = _export_trace()
    return _download(export.to_table(trace), "wsgiscope-table.txt", "text/plain")


