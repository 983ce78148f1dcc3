"""The fidelity suite's report: Markdown and JSON from :func:`.fidelity.run_suite`'s data.

One row per case (its mechanism, runs x seeds, verdict, key figures -- the median of the
measured runs against the simulated [min-max] -- and the machine's load), then every case
that disagrees with each statistic outside its band and the figures, the suspected
mechanism from the case's ``notes``, and whether its runs were taken on a busy machine.
"""

from __future__ import annotations

import json
import statistics as stats
from pathlib import Path
from typing import Any

from .distribution import lean_lines
from .fidelity import (
    BUSY_OTHER_CORES,
    BUSY_STEAL_CORES,
    REPORT_JSON,
    REPORT_MD,
    RETAKES,
    dump_json,
)


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return stats.median(vals) if vals else None


def _key_figures(res: dict[str, Any]) -> str:
    rows = {r["name"]: r for r in res["statistics"]}
    parts = []
    pcts = [n for n in rows if n.split(" ")[0] in ("p50", "p95", "p99")]
    for name in [n for n in ("p50", "p95", "p99") if n in rows] or pcts:
        r = rows[name]
        med = _median(r["measured"])
        parts.append(f"{name} {_ms(med)} [{_ms(r['sim']['lo'])}–{_ms(r['sim']['hi'])}]")
    dones = [r for n, r in rows.items() if n.startswith("done")]
    if dones:
        last = dones[-1]
        parts.append(
            f"last {_ms(_median(last['measured']))} "
            f"[{_ms(last['sim']['lo'])}–{_ms(last['sim']['hi'])}]"
        )
    share = rows.get("share #1")
    if share:
        parts.append(
            f"busiest worker {'/'.join(_pc(v) for v in share['measured'])} "
            f"[{_pc(share['sim']['lo'])}–{_pc(share['sim']['hi'])}] %"
        )
    bad = [
        s
        for s in ("error", "reset", "timeout")
        if f"status {s}" in rows
        and (any(rows[f"status {s}"]["measured"]) or rows[f"status {s}"]["sim"]["hi"])
    ]
    for s in bad:
        r = rows[f"status {s}"]
        parts.append(
            f"{s} {'/'.join(_n(v) for v in r['measured'])} "
            f"[{_n(r['sim']['lo'])}–{_n(r['sim']['hi'])}]"
        )
    return "; ".join(parts)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _n(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _pc(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def format_report(report: dict[str, Any]) -> str:
    """The suite's report as Markdown."""
    env = report["environment"]
    rule = next((r["rule"]["text"] for r in report["cases"] if "rule" in r), "")
    lines = [
        "# Fidelity: measured against simulated",
        "",
        f"{report['agree']} of {report['total']} cases agree. Measured {env.get('date', '?')} "
        f"on Linux {env.get('kernel', '?')}, {env.get('cores', '?')} cores, Python "
        f"{env.get('python', '?')}, werkzeug {env.get('werkzeug', '?')}, gunicorn "
        f"{env.get('gunicorn', '?')}, gevent {env.get('gevent', '?')}; "
        + ("judged again by the model as it is now (--stored: no server was run)."
           if report.get("stored") else
           f"the suite took {report['seconds'] / 60:.1f} min."),
        "",
        f"Rule: {rule}. Key figures are the median of the measured runs, then the simulated "
        "[min–max] over the seeds, in ms (counts for workers and statuses). "
        "Load: the 1-minute load average at the start of the runs, and the cores other "
        "programs used meanwhile (from /proc/stat, less the lab's own processes); a run is "
        f"busy when others used at least {BUSY_OTHER_CORES:g} cores, the host took at least "
        f"{BUSY_STEAL_CORES:g} cores' time from this virtual machine while its requests ran "
        "(steal), or the load "
        f"average was above the core count; a busy run is taken again, up to {RETAKES} times, "
        "and the runs set aside are counted in the last column.",
        "",
        "| case | mechanism | runs × seeds | verdict | key figures | load |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["cases"]:
        if "error" in r:
            lines.append(
                f"| {r['case']} | {r['mechanism']} | - | could not run | {r['error'][:120]} | - |"
            )
            continue
        load = _load(r["conditions"])
        if r["busy_runs"]:
            load += f" ({r['busy_runs']} busy)"
        aside = sum(len(c.get("set_aside") or ()) for c in r["conditions"])
        if aside:
            load += f"; {aside} set aside"
        verdict = "agrees" if r["agrees"] else "**disagrees**"
        lines.append(
            f"| {r['case']} | {r['mechanism']} | {r['runs']} × {len(r['seeds'])} | {verdict} "
            f"| {_key_figures(r)} | {load} |"
        )
    bad = [r for r in report["cases"] if not r["agrees"]]
    if bad:
        lines += ["", "## Cases that disagree", ""]
        for r in bad:
            lines.append(f"### {r['case']}: {r['title']}")
            lines.append("")
            if "error" in r:
                lines += [f"The case could not run: {r['error']}", ""]
                continue
            for s in r["statistics"]:
                if s["agrees"]:
                    continue
                meas = ", ".join(_fig(v, s["kind"]) for v in s["measured"])
                lines.append(
                    f"* {s['name']}: measured {meas}; simulated {_fig(s['sim']['lo'], s['kind'])}"
                    f"–{_fig(s['sim']['hi'], s['kind'])} (band {_fig(s['sim']['low'], s['kind'])}"
                    f"–{_fig(s['sim']['high'], s['kind'])}); runs outside: "
                    f"{', '.join(str(i + 1) for i in s['outside'])}"
                )
            lines += [f"* lean: {line}" for line in lean_lines(r)]
            if r.get("notes"):
                lines += ["", f"Suspected mechanism: {r['notes']}"]
            if r["busy_runs"]:
                lines += ["", f"{r['busy_runs']} of {r['runs']} runs were taken on a busy machine."]
            lines.append("")
    leaning = [r for r in report["cases"] if r.get("agrees") and lean_lines(r)]
    if leaning:
        lines += ["", "## Cases that agree but lean", "",
                  "Every run inside the band, but all on one side of the seeds' spread "
                  "(their mean rank three standard deviations from the middle):", ""]
        for r in leaning:
            lines += [f"* {r['case']}: {line}" for line in lean_lines(r)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _load(conditions: list[dict[str, Any]]) -> str:
    """The load average at the start of the runs and the cores other programs used."""
    la = [c["loadavg_before"][0] for c in conditions]
    other = [c.get("other_cpu_cores") or 0.0 for c in conditions]
    return (f"{min(la):.1f}–{max(la):.1f}; others {min(other):.1f}–{max(other):.1f} cores"
            if conditions else "-")


def _fig(v: float | None, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "share":
        return f"{v:.1f}%"
    return f"{v:g}" if kind == "count" else f"{v:.0f} ms"


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``fidelity.md`` and ``fidelity.json`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / REPORT_MD
    js = out_dir / REPORT_JSON
    md.write_text(format_report(report), encoding="utf-8")
    slim = {
        **report,
        "cases": [{k: v for k, v in c.items() if k != "scenario"} for c in report["cases"]],
    }
    # one line per case: the report is data for tools and diffs, not for reading
    head = {k: v for k, v in slim.items() if k != "cases"}
    lines = [json.dumps(c, separators=(",", ":")) for c in slim["cases"]]
    js.write_text(
        dump_json(head).rstrip()[:-1].rstrip()
        + ',\n  "cases": [\n    '
        + ",\n    ".join(lines)
        + "\n  ]\n}\n",
        encoding="utf-8",
    )
    return md, js
