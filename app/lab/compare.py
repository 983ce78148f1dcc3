"""Simulated against measured: per-request completion times side by side, and a verdict.

:func:`compare` pairs the requests of two Traces of the same scenario and seed (same ids,
same paths, same planned send times) and reports for each the completion time (ms since the
first request was sent) in both, the error, whether it is within tolerance (10 % of the
measured time or 30 ms, whichever is larger), the time spent before a server thread took
it (``queue``), SYN retransmits and status. The summary gives the median and maximum
absolute error, the makespan error, status mismatches, and the run-level figures of both.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.trace import Trace

#: A virtual machine's host took at least this many cores' time from it while a run's requests
#: ran (steal, in /proc/stat, from the first planned send to the last response; the whole
#: run, server start included, would dilute a stall): the server's own threads lost that
#: time. Six quiet runs of a 0.6 s case here stole 0-0.048 over the whole run (0-3 clock
#: ticks of 10 ms); 0.05 takes a fourth tick there.
BUSY_STEAL_CORES = 0.05

TOLERANCE_PCT = 10.0
TOLERANCE_MS = 30.0


def within(
    sim_ms: float, measured_ms: float, pct: float = TOLERANCE_PCT, ms: float = TOLERANCE_MS
) -> bool:
    """True when two completion times agree within ``pct`` % of the measured one or ``ms``."""
    return abs(sim_ms - measured_ms) <= max(ms, abs(measured_ms) * pct / 100.0)


def compare(
    simulated: Trace,
    measured: Trace,
    tolerance_pct: float = TOLERANCE_PCT,
    tolerance_ms: float = TOLERANCE_MS,
) -> dict[str, Any]:
    """Compare two Traces of one scenario request by request (see the module docstring)."""
    sim_by_id = {r.id: r for r in simulated.requests}
    rows: list[dict[str, Any]] = []
    errors: list[float] = []
    mismatches = 0
    for m in measured.requests:
        s = sim_by_id.get(m.id)
        if s is None:
            continue
        row: dict[str, Any] = {
            "id": m.id,
            "path": m.path,
            "sent_ms": round(m.sent_ms, 3),
            "sim_ms": _r(s.finished_ms),
            "measured_ms": _r(m.finished_ms),
            "error_ms": None,
            "error_pct": None,
            "within": False,
            "sim_queue_ms": _r(s.queue_ms if s.accepted_ms is not None else None),
            "measured_queue_ms": _r(m.queue_ms if m.accepted_ms is not None else None),
            "sim_syn_retries": s.syn_retries,
            "measured_syn_retries": m.syn_retries,
            "sim_status": s.status,
            "measured_status": m.status,
            "sim_where": s.thread or "",
            "measured_where": m.thread or "",
        }
        if s.status != m.status:
            mismatches += 1
        if s.finished_ms is not None and m.finished_ms is not None:
            err = s.finished_ms - m.finished_ms
            errors.append(abs(err))
            row["error_ms"] = round(err, 3)
            if m.finished_ms > 0:
                row["error_pct"] = round(100.0 * err / m.finished_ms, 2)
            row["within"] = within(s.finished_ms, m.finished_ms, tolerance_pct, tolerance_ms)
        rows.append(row)
    # Order-free: the k-th completion in one against the k-th in the other. When the kernel
    # (not the server) decides which worker gets which connection, requests can swap
    # places while the run as a whole still has the same shape.
    sim_done = sorted(r.finished_ms for r in simulated.requests if r.finished_ms is not None)
    meas_done = sorted(r.finished_ms for r in measured.requests if r.finished_ms is not None)
    ranked = [abs(a - b) for a, b in zip(sim_done, meas_done, strict=False)]
    ranked_within = sum(
        1
        for a, b in zip(sim_done, meas_done, strict=False)
        if within(a, b, tolerance_pct, tolerance_ms)
    )
    sim_span = simulated.summary.get("makespan_ms", 0.0)
    meas_span = measured.summary.get("makespan_ms", 0.0)
    n_within = sum(1 for r in rows if r["within"])
    cautions = _cautions(simulated, measured)
    summary = {
        "requests": len(rows),
        "within_tolerance": n_within,
        "tolerance": {"pct": tolerance_pct, "ms": tolerance_ms},
        "median_abs_error_ms": round(statistics.median(errors), 3) if errors else None,
        "max_abs_error_ms": round(max(errors), 3) if errors else None,
        "ranked_median_abs_error_ms": round(statistics.median(ranked), 3) if ranked else None,
        "ranked_max_abs_error_ms": round(max(ranked), 3) if ranked else None,
        "ranked_within_tolerance": ranked_within,
        "makespan_sim_ms": sim_span,
        "makespan_measured_ms": meas_span,
        "makespan_error_ms": round(sim_span - meas_span, 3),
        "makespan_error_pct": round(100.0 * (sim_span - meas_span) / meas_span, 2)
        if meas_span
        else None,
        "status_mismatches": mismatches,
        "sim": _figures(simulated),
        "measured": _figures(measured),
        "lab": dict(measured.summary.get("lab", {})),
        "cores": measured.cores,
        "cautions": cautions,
        "agrees": bool(rows) and n_within == len(rows) and mismatches == 0,
    }
    return {"scenario": measured.scenario.get("name", ""), "rows": rows, "summary": summary}


def _cautions(simulated: Trace, measured: Trace) -> list[str]:
    """Ways the measured run's conditions differ from what the simulation assumed."""
    out = []
    machine = simulated.scenario.get("machine", {})
    if machine.get("cores") and machine["cores"] != measured.cores:
        out.append(
            f"the scenario assumes {machine['cores']} cores; this machine gives the lab "
            f"{measured.cores}"
        )
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    if machine.get("gil", True) != gil:
        out.append(
            "the scenario assumes "
            + ("free-threaded Python (no GIL)" if not machine.get("gil", True) else "a GIL")
            + f"; the lab ran on this Python ({'with' if gil else 'without'} a GIL)"
        )
    lab = measured.summary.get("lab", {})
    if lab.get("other_cpu_cores", 0.0) >= 0.25:
        out.append(
            f"other programs used {lab['other_cpu_cores']:.2f} cores on average during the "
            "measurement, so measured CPU work took longer than on an idle machine"
        )
    if lab.get("steal_cores", 0.0) >= BUSY_STEAL_CORES:
        out.append(
            f"the virtual machine's host took {lab['steal_cores']:.2f} cores' time from it "
            "(steal) during the measurement: the server lost that time too"
        )
    return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _figures(trace: Trace) -> dict[str, Any]:
    s = trace.summary
    lat = s.get("latency_ms", {})
    return {
        "completed": s.get("completed"),
        "failed": s.get("failed"),
        "p50_ms": lat.get("p50"),
        "p95_ms": lat.get("p95"),
        "max_ms": lat.get("max"),
        "max_backlog": s.get("max_backlog"),
        "syn_retries": s.get("syn_retries"),
        "gil_wait_pct": s.get("gil_wait_pct"),
    }


def run_compare(
    scenario: dict[str, Any] | simulator.Scenario,
    seed: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    python: str | None = None,
) -> tuple[Trace, Trace, dict[str, Any]]:
    """Simulate and measure one scenario; return ``(simulated, measured, comparison)``.
    ``python`` runs the server (see :func:`.measure.measure`)."""
    from .measure import measure

    sc = simulator.load_scenario(scenario)
    simulated = simulator.run(sc, seed)
    measured = measure(sc, progress=progress, seed=seed, python=python)
    return simulated, measured, compare(simulated, measured)


def format_comparison(result: dict[str, Any], max_rows: int = 60) -> str:
    """The comparison as a plain-text table, ending in a newline."""
    rows = result["rows"]
    s = result["summary"]
    tol = s["tolerance"]
    out = [f"{result['scenario']}: simulated vs measured ({s['requests']} requests)", ""]
    head = (
        f"{'req':>4} {'path':<12} {'sent':>8} {'sim':>9} {'measured':>9} {'error':>8} "
        f"{'err%':>6} {'ok?':<3} {'queue sim/meas':>16} {'SYN':>5} {'status sim/meas':<16} "
        f"{'thread sim':<12} measured"
    )
    out.append(head)
    out.append("-" * len(head))
    shown = rows if len(rows) <= max_rows else rows[: max_rows // 2] + rows[-max_rows // 2 :]
    for i, r in enumerate(shown):
        if len(rows) > max_rows and i == max_rows // 2:
            out.append(f"{'...':>4} ({len(rows) - max_rows} more rows)")
        status = r["sim_status"] + (
            "" if r["sim_status"] == r["measured_status"] else "/" + r["measured_status"]
        )
        out.append(
            f"{r['id']:>4} {r['path'][:12]:<12} {_ms(r['sent_ms']):>8} {_ms(r['sim_ms']):>9} "
            f"{_ms(r['measured_ms']):>9} {_signed(r['error_ms']):>8} "
            f"{_pct(r['error_pct']):>6} {'yes' if r['within'] else 'NO':<3} "
            f"{_ms(r['sim_queue_ms']) + '/' + _ms(r['measured_queue_ms']):>16} "
            f"{str(r['sim_syn_retries']) + '/' + str(r['measured_syn_retries']):>5} "
            f"{status:<16} {r['sim_where']:<12} {r['measured_where']}"
        )
    out.append("")
    out.append(
        f"within tolerance ({tol['pct']:g} % or {tol['ms']:g} ms): "
        f"{s['within_tolerance']} of {s['requests']}"
    )
    out.append(
        f"completion-time error: median {_ms(s['median_abs_error_ms'])} ms, "
        f"max {_ms(s['max_abs_error_ms'])} ms"
    )
    if s.get("ranked_max_abs_error_ms") is not None:
        out.append(
            f"k-th completion vs k-th completion (ignores which request is which): "
            f"{s['ranked_within_tolerance']} of {s['requests']} within tolerance, median "
            f"{_ms(s['ranked_median_abs_error_ms'])} ms, max {_ms(s['ranked_max_abs_error_ms'])} ms"
        )
    out.append(
        f"makespan: simulated {_ms(s['makespan_sim_ms'])} ms, measured "
        f"{_ms(s['makespan_measured_ms'])} ms, error {_signed(s['makespan_error_ms'])} ms "
        f"({_pct(s['makespan_error_pct'])})"
    )
    out.append(f"status mismatches: {s['status_mismatches']}")
    sim, meas = s["sim"], s["measured"]
    for label, key in (
        ("p50 latency", "p50_ms"),
        ("p95 latency", "p95_ms"),
        ("max backlog", "max_backlog"),
        ("SYN retransmits", "syn_retries"),
        ("failed", "failed"),
    ):
        out.append(f"{label}: simulated {sim[key]}, measured {meas[key]}")
    lab = s.get("lab") or {}
    if "other_cpu_cores" in lab:
        out.append(
            f"machine: {s.get('cores')} cores; during the measurement other programs used "
            f"{lab['other_cpu_cores']:.2f} cores on average, the lab itself "
            f"{lab['lab_cpu_cores']:.2f}; sends left at most "
            f"{lab.get('send_late_ms_max', 0.0):.2f} ms late"
        )
    for caution in s.get("cautions", []):
        out.append(f"caution: {caution}")
    out.append(
        "verdict: "
        + (
            "the simulation agrees with the measurement"
            if s["agrees"]
            else "the simulation DISAGREES with the measurement (see NO rows)"
        )
    )
    return "\n".join(out) + "\n"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _signed(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f}%"
