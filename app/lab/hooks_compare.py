"""Simulated against measured, for what Flask does rather than when: for every request the
order its hooks ran in, its status and whether teardown received the exception; and for a
run with increment loops, the updates lost.

Hook order must agree exactly: the engine runs Flask 3.1's order (``simulator/dispatch.py``)
and the lab app notes each real hook as it runs (``flask_hooks.mark``). Lost updates come
from thread switches, which no two runs share: :func:`lost_update_spread` simulates several
seeds, and the measured count agrees when it lies within their range, widened by 10 % of
the increments made (or by nothing when the simulation never loses one).
"""

from __future__ import annotations

from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.trace import Trace

#: The stages compared: Flask's hooks and the view (the context push and the URL match are
#: not hooks, and a scenario may give them no time at all).
COMPARED = ("before_request", "view", "error", "after_request", "teardown")
#: The spread's margin, as a share of the increments made.
SPREAD_MARGIN = 0.10


def flask_path(trace: Trace, rid: int) -> dict[str, Any]:
    """What Flask did with one request: ``hooks`` (its :data:`COMPARED` stages, in order),
    ``status`` (HTTP) and ``teardown_exc`` (teardown got the exception)."""
    hooks: list[str] = []
    teardown_exc = False
    for e in trace.request_events(rid):
        if e.kind != "req":
            continue
        if e.what == "stage" and e.ref in COMPARED and (not hooks or hooks[-1] != e.ref):
            hooks.append(str(e.ref))
        elif e.what == "outcome" and "teardown gets the exception" in str(e.ref):
            teardown_exc = True
    rec = trace.requests[rid]
    return {"hooks": hooks, "status": rec.http_status, "teardown_exc": teardown_exc}


def compare_hooks(simulated: Trace, measured: Trace) -> dict[str, Any]:
    """Request by request: hook order, status and teardown's exception, simulated against
    measured (requests that did not run Flask's whole path on both sides are left out)."""
    rows = []
    for m in measured.requests:
        if m.id >= len(simulated.requests) or m.http_status is None:
            continue
        s, got = flask_path(simulated, m.id), flask_path(measured, m.id)
        if "teardown" not in s["hooks"] or "teardown" not in got["hooks"]:
            continue  # cut off (a killed worker, a client gone): no whole path to compare
        rows.append({
            "id": m.id, "path": m.path,
            "sim_hooks": s["hooks"], "measured_hooks": got["hooks"],
            "sim_status": s["status"], "measured_status": got["status"],
            "sim_teardown_exc": s["teardown_exc"], "measured_teardown_exc": got["teardown_exc"],
            "same": s == got,
        })
    summary = {
        "requests": len(rows),
        "same_order": sum(r["sim_hooks"] == r["measured_hooks"] for r in rows),
        "same_status": sum(r["sim_status"] == r["measured_status"] for r in rows),
        "same_teardown": sum(r["sim_teardown_exc"] == r["measured_teardown_exc"] for r in rows),
    }
    summary["agrees"] = bool(rows) and all(r["same"] for r in rows)
    return {"rows": rows, "summary": summary}


def lost_update_spread(scenario: dict[str, Any] | simulator.Scenario,
                       seeds: list[int]) -> dict[str, Any]:
    """Lost updates simulated over ``seeds``: ``{"lost": [...], "low", "high",
    "increments"}`` (the range widened by :data:`SPREAD_MARGIN`)."""
    lost, made = [], 0
    for seed in seeds:
        summary = simulator.run(scenario, seed).summary
        lost.append(int(summary.get("lost_updates", 0)))
        made = sum(row["increments"] for row in summary.get("increments", {}).values())
    margin = SPREAD_MARGIN * made if max(lost, default=0) > 0 else 0.0
    return {"lost": lost, "increments": made, "low": max(0.0, min(lost) - margin),
            "high": max(lost) + margin}


def compare_lost_updates(spread: dict[str, Any], measured: Trace) -> dict[str, Any]:
    """The measured lost updates against the simulated spread."""
    got = int(measured.summary.get("lost_updates", 0))
    return {"measured": got, **spread, "within": spread["low"] <= got <= spread["high"]}


def format_hooks(result: dict[str, Any], lost: dict[str, Any] | None = None) -> str:
    """The comparison as text: one line per request whose path differs, then a verdict."""
    s = result["summary"]
    out = []
    for r in result["rows"]:
        if not r["same"]:
            sim = _path(r["sim_hooks"], r["sim_status"], r["sim_teardown_exc"])
            got = _path(r["measured_hooks"], r["measured_status"], r["measured_teardown_exc"])
            out.append(f"  req {r['id']} {r['path']}: simulated {sim}; measured {got}")
    out.append(
        f"Flask hooks: same order in {s['same_order']} of {s['requests']} requests, same "
        f"status in {s['same_status']}, same teardown exception in {s['same_teardown']}")
    if lost is not None:
        out.append(
            f"lost updates: measured {lost['measured']:,}; simulated {lost['lost']} over "
            f"{len(lost['lost'])} seeds (accepted {lost['low']:,.0f} to {lost['high']:,.0f}): "
            + ("within" if lost["within"] else "OUTSIDE"))
    return "\n".join(out) + "\n"


def _path(hooks: list[str], status: int | None, exc: bool) -> str:
    return f"{' > '.join(hooks)} ({status}{', teardown gets the exception' if exc else ''})"
