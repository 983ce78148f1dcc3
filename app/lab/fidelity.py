"""Distributions, measured and simulated: one case (:func:`run_case`) and a suite of them.

:func:`run_case` measures a scenario ``runs`` times on the real server (run ``i`` with seed
``seed + i``, so Poisson arrivals differ from run to run as they do over the seeds),
simulates it over ``seeds`` seeds (``seed``, ``seed + 1``, ...), and judges the
statistics with :func:`.distribution.judge`. It records the conditions of every run: the
load average before and after (``/proc/loadavg``), the CPU other programs used meanwhile,
and the machine (date, kernel, cores, Python and server versions).

A suite is a folder of case files (``*.json``, see :func:`load_case`); :func:`run_suite`
runs them in name order and :func:`.fidelity_report.write_report` writes ``fidelity.md`` and
``fidelity.json``. ``update=True`` writes each case's measured figures back into its file.
:func:`stored_case` judges the model again against the figures a case file keeps, without
running a server: how a change to the model is checked against measurements in seconds.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wsgiscope import simulator

from . import interpreter
from .compare import BUSY_STEAL_CORES as BUSY_STEAL_CORES
from .distribution import (
    FLOOR_MS,
    FLOOR_PCT,
    check_families,
    format_judgement,
    judge,
    judge_values,
    loadavg,
)

Progress = Callable[[float, str], None]

#: A run counts as taken on a busy machine when other programs used at least this many
#: cores on average meanwhile, the 1-minute load average was above the core count, or a
#: virtual machine's host took at least :data:`.compare.BUSY_STEAL_CORES` cores' time from
#: it (steal), which ``compare`` cautions about.
BUSY_OTHER_CORES = 0.5

#: A run taken on a busy machine is taken again, at most this many times; the judged run
#: keeps how many were set aside and why.
RETAKES = 2

#: The suite's report, written into its folder by default (not a case).
REPORT_MD = "fidelity.md"
REPORT_JSON = "fidelity.json"

CASE_KEYS = (
    "case",
    "title",
    "mechanism",
    "scenario",
    "runs",
    "seeds",
    "judge",
    "band_q",
    "notes",
    "measured",
)


def dump_json(data: Any) -> str:
    """JSON indented for reading and diffing, with each list of plain values on one line."""
    text = json.dumps(data, indent=2)
    return re.sub(
        r"\[\s+([^\[\]{}]*?)\s+\]",
        lambda m: "[" + " ".join(line.strip() for line in m.group(1).splitlines()) + "]",
        text,
    ) + "\n"


def environment(info: dict[str, Any]) -> dict[str, Any]:
    """Where and when: date, kernel (``uname -r``), cores, Python and server versions."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kernel": platform.release(),
        "cores": len(os.sched_getaffinity(0)),
        "python": info.get("python"),
        "implementation": info.get("implementation"),
        "gil": info.get("gil"),
        "werkzeug": info.get("werkzeug"),
        "gunicorn": info.get("gunicorn"),
        "gevent": info.get("gevent"),
        "flask": info.get("flask"),
    }


def _busy(cond: dict[str, Any], cores: int) -> bool:
    other = cond.get("other_cpu_cores") or 0.0
    steal = cond.get("steal_cores") or 0.0
    la = max(cond["loadavg_before"][0], cond["loadavg_after"][0])
    return bool(other >= BUSY_OTHER_CORES or steal >= BUSY_STEAL_CORES or la > cores)


def run_case(
    scenario: dict[str, Any] | simulator.Scenario,
    runs: int,
    seeds: int,
    families: Sequence[str] | None = None,
    q: float = 0.0,
    floor_ms: float = FLOOR_MS,
    pct: float = FLOOR_PCT,
    python: str | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure ``runs`` times, simulate ``seeds`` seeds, judge (see the module docstring)."""
    from .measure import measure

    if runs < 1 or runs > 50:
        raise simulator.ScenarioError("--runs", f"must be between 1 and 50 (got {runs})")
    if seeds < 1 or seeds > 500:
        raise simulator.ScenarioError("--seeds", f"must be between 1 and 500 (got {seeds})")
    if not 0.0 <= q < 0.5:
        raise simulator.ScenarioError("--band", f"must be in [0, 0.5) (got {q:g})")
    sc = simulator.load_scenario(scenario)
    norm = sc.to_dict()
    info = interpreter.check(norm, python)
    base = sc.seed if seed is None else int(seed)
    report = progress or (lambda _f, _m: None)
    report(0.0, f"simulating {seeds} seeds")
    sim_seeds = [base + i for i in range(seeds)]
    simulated = [simulator.run(sc, s) for s in sim_seeds]
    measured = []
    conditions = []
    cores = len(os.sched_getaffinity(0))
    for i in range(runs):
        set_aside: list[dict[str, Any]] = []
        while True:
            report(0.05 + 0.95 * i / runs, f"measuring run {i + 1} of {runs}")
            before = loadavg()
            trace = measure(sc, seed=base + i, python=python, watch=False)
            after = loadavg()
            lab = trace.summary.get("lab", {})
            cond = {
                "seed": base + i,
                "loadavg_before": before,
                "loadavg_after": after,
                "other_cpu_cores": lab.get("other_cpu_cores"),
                "steal_cores": lab.get("steal_cores"),
                "lab_cpu_cores": lab.get("lab_cpu_cores"),
                "send_late_ms_max": lab.get("send_late_ms_max"),
                "makespan_ms": trace.summary.get("makespan_ms"),
            }
            cond["busy"] = _busy(cond, cores)
            if not cond["busy"] or len(set_aside) >= RETAKES:
                break
            set_aside.append(cond)  # taken again: a busy machine says little of the model
        if set_aside:
            cond["set_aside"] = set_aside
        conditions.append(cond)
        measured.append(trace)
    report(1.0, "judging")
    result = judge(measured, simulated, families, q, floor_ms, pct)
    return _described(result, sc, sim_seeds, environment(info), conditions, cores)


def _described(result: dict[str, Any], sc: simulator.Scenario, seeds: list[int],
               env: dict[str, Any], conditions: list[dict[str, Any]],
               cores: int) -> dict[str, Any]:
    """A judgement with what it judged: the scenario, seeds, machine and run conditions."""
    norm = sc.to_dict()
    result.update({
        "scenario": norm, "name": sc.name, "runs": len(conditions), "seeds": seeds,
        "environment": env, "conditions": conditions,
        "busy_runs": sum(1 for c in conditions if c.get("busy")),
        "cautions": _cautions(norm, cores),
    })  # fmt: skip
    return result


def _cautions(norm: dict[str, Any], cores: int) -> list[str]:
    want = norm.get("machine", {}).get("cores")
    if want and want != cores:
        return [f"the scenario assumes {want} cores; this machine gives the lab {cores}"]
    return []


def format_case(result: dict[str, Any]) -> str:
    """One case's judgement as text: the conditions, the table, the verdict."""
    env = result["environment"]
    out = [
        f"{result['name']}: {result['runs']} measured runs against "
        f"{len(result['seeds'])} simulated seeds",
        f"machine: {env['date']}, Linux {env['kernel']}, {env['cores']} cores, Python "
        f"{env['python']}, werkzeug {env['werkzeug']}, gunicorn {env['gunicorn']}, "
        f"gevent {env['gevent']}",
    ]
    for i, c in enumerate(result["conditions"]):
        out.append(
            f"run {i + 1} (seed {c['seed']}): load average {c['loadavg_before'][0]:.2f} -> "
            f"{c['loadavg_after'][0]:.2f}, other programs used {c['other_cpu_cores'] or 0:.2f} "
            f"cores{' (busy machine)' if c['busy'] else ''}"
        )
    out.append("")
    out.append(format_judgement(result).rstrip("\n"))
    for caution in result.get("cautions", []):
        out.append(f"caution: {caution}")
    bad = [r["name"] for r in result["statistics"] if not r["agrees"]]
    out.append(
        "verdict: the measured runs fall inside the simulated spread"
        if result["agrees"]
        else f"verdict: DISAGREES on {', '.join(bad)}"
    )
    if result["busy_runs"] and not result["agrees"]:
        out.append(
            f"note: {result['busy_runs']} of {result['runs']} runs were taken on a busy machine"
        )
    return "\n".join(out) + "\n"


# --- the suite --------------------------------------------------------------------------------


class CaseError(ValueError):
    """A case file is not a valid case; the message names the file and the field."""


def load_case(path: Path) -> dict[str, Any]:
    """Read and check one case file: ``{"case", "title", "mechanism", "scenario", "runs",
    "seeds", "judge"?, "band_q"?, "notes"?, "measured"?}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CaseError(f"{path.name}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise CaseError(f"{path.name}: a case must be a JSON object")
    for key in data:
        if key not in CASE_KEYS:
            raise CaseError(
                f"{path.name}: {key} is not a case field (allowed: {', '.join(CASE_KEYS)})"
            )
    for key in ("case", "title", "mechanism", "scenario", "runs", "seeds"):
        if key not in data:
            raise CaseError(f"{path.name}: {key} is required")
    try:
        simulator.load_scenario(data["scenario"])
        if data.get("judge") is not None:
            check_families(data["judge"])
    except (simulator.ScenarioError, ValueError) as exc:
        raise CaseError(f"{path.name}: {exc}") from None
    for key, hi in (("runs", 50), ("seeds", 500)):
        if not isinstance(data[key], int) or not 1 <= data[key] <= hi:
            raise CaseError(f"{path.name}: {key} must be an integer from 1 to {hi}")
    return data


def load_suite(folder: Path, only: Sequence[str] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """Every case of a suite folder, in file-name order (``only``: these case names)."""
    if not folder.is_dir():
        raise CaseError(f"{folder}: not a folder of case files")
    cases = [(p, load_case(p)) for p in sorted(folder.glob("*.json")) if p.name != REPORT_JSON]
    if only:
        unknown = set(only) - {c["case"] for _p, c in cases}
        if unknown:
            raise CaseError(f"no such case: {', '.join(sorted(unknown))}")
        cases = [(p, c) for p, c in cases if c["case"] in only]
    if not cases:
        raise CaseError(f"{folder}: no case files (*.json)")
    return cases


#: What :func:`measured_record` keeps that is not the machine's description.
_RECORD_KEYS = ("runs", "seeds", "rule", "verdict", "statistics")


def stored_case(case: dict[str, Any], seeds: int | None = None) -> dict[str, Any]:
    """Judge the model, as it is now, against the measured figures ``case`` keeps (its
    ``measured`` record): the same result :func:`run_case` gives, without a server."""
    rec = case.get("measured")
    if not rec:
        raise simulator.ScenarioError(
            "measured", "this case has no measured figures yet: run it without --stored")
    sc = simulator.load_scenario(case["scenario"])
    base, m = int(rec["seeds"][0]), seeds or case["seeds"]
    sim_seeds = [base + i for i in range(m)]
    values = {row["name"]: row["measured"] for row in rec["statistics"]}
    res = judge_values(values, [simulator.run(sc, s) for s in sim_seeds],
                       case.get("judge"), case.get("band_q", 0.0))
    cores = int(rec.get("cores") or 0) or len(os.sched_getaffinity(0))
    conditions = rec["runs"]
    return _described(res, sc, sim_seeds, {k: v for k, v in rec.items() if k not in _RECORD_KEYS},
                      conditions, cores)


def run_suite(
    cases: list[tuple[Path, dict[str, Any]]],
    runs: int | None = None,
    seeds: int | None = None,
    python: str | None = None,
    update: bool = False,
    log: Callable[[str], None] | None = None,
    stored: bool = False,
) -> dict[str, Any]:
    """Run every case (``runs``/``seeds`` override the cases' own); return the report data.
    A case that cannot run (the lab failed) is reported as such, and the suite goes on.
    ``stored``: judge against each case's kept figures instead (:func:`stored_case`)."""
    from .launcher import LabError

    say = log or (lambda _m: None)
    results = []
    started = time.monotonic()
    for i, (path, case) in enumerate(cases):
        n, m = runs or case["runs"], seeds or case["seeds"]
        say(f"[{i + 1}/{len(cases)}] {case['case']}: "
            + (f"{m} seeds against the kept figures" if stored else f"{n} runs, {m} seeds"))
        t0 = time.monotonic()
        try:
            if stored:
                res = stored_case(case, seeds)
            else:
                res = run_case(case["scenario"], n, m, case.get("judge"),
                               case.get("band_q", 0.0), python=python)
        except (LabError, simulator.ScenarioError) as exc:
            results.append(
                {
                    "case": case["case"],
                    "title": case["title"],
                    "error": str(exc),
                    "mechanism": case["mechanism"],
                    "agrees": False,
                }
            )
            say(f"    failed: {exc}")
            continue
        res.update(
            {
                "case": case["case"],
                "title": case["title"],
                "mechanism": case["mechanism"],
                "notes": case.get("notes", ""),
                "seconds": round(time.monotonic() - t0, 1),
            }
        )
        results.append(res)
        say(f"    {'agrees' if res['agrees'] else 'DISAGREES'} ({res['seconds']:.0f} s)")
        if update and not stored:
            case["measured"] = measured_record(res)
            path.write_text(dump_json(case), encoding="utf-8")
    env = next((r["environment"] for r in results if "environment" in r), {})
    return {
        "environment": env,
        "seconds": round(time.monotonic() - started, 1),
        "cases": results,
        "agree": sum(1 for r in results if r["agrees"]),
        "total": len(results),
        "stored": stored,
    }


def measured_record(res: dict[str, Any]) -> dict[str, Any]:
    """What a case file keeps of its latest measurement."""
    return {
        **res["environment"],
        "runs": res["conditions"],
        "seeds": [res["seeds"][0], res["seeds"][-1]],
        "rule": res["rule"]["text"],
        "verdict": "agrees" if res["agrees"] else "disagrees",
        "statistics": [
            {"name": r["name"], "measured": r["measured"],
             "simulated": [r["sim"]["lo"], r["sim"]["hi"]],
             "band": [r["sim"]["low"], r["sim"]["high"]], "agrees": r["agrees"]}
            for r in res["statistics"]
        ],
    }  # fmt: skip
