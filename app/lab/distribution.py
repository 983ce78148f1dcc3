"""Measured runs against simulated seeds: statistics of each run, judged as distributions.

A real server is not deterministic (the kernel decides which worker wins ``accept()``, the
GIL wakes one waiter of several, the machine is shared), and neither is the simulator over
its seeds. So one measured run against one seed says little; :func:`judge` compares the
statistics of ``N`` measured runs with the spread of the same statistics over ``M`` seeds.

**Statistics** (:func:`statistics_of`; each is one number per run):

* ``done #k`` -- the k-th completion time (ms since the first request was sent), for every
  k when a run has at most :data:`MAX_RANKS` requests, else ``done q`` at the positions
  0, 10, ..., 100 % of the sorted completion times;
* ``p50``, ``p95``, ``p99`` -- latency percentiles of the completed (``ok``) requests, as in
  the Trace's summary; ``p50 /path`` etc. over one endpoint's requests;
* ``share #k`` -- the percentage of the served requests that the k-th busiest worker
  served (gunicorn with more than one worker: which worker gets a connection is the
  kernel's race). A percentage, not a count: under Poisson load each seed sends a different
  number of requests, and a count would judge how many arrived, not how they were split;
* ``status ok`` / ``error`` / ``reset`` / ``timeout`` -- how many requests ended so.

**The rule** (:func:`band`): take the statistic over the seeds, its range ``[lo, hi]`` (the
minimum and maximum, or the ``q`` and ``1 - q`` quantiles), and widen each edge by the
measurement floor: ``max(floor_ms, pct % of the edge)`` for a time (30 ms and 10 % by
default: the timer and scheduling noise of a loaded machine), nothing for a count or a share
(each is exact). A statistic agrees when *every* measured run lies inside the widened band. When
every seed gives the same value (a deterministic outcome) this is the plain 10 % / 30 ms
rule. A case agrees when all of its judged statistics agree.

**A lean** (:func:`lean`): the band asks each run only to be *somewhere* in the seeds'
spread. Where that spread is wide, a model that is off by a steady amount still passes, its
runs all on one side. So each run is also ranked among the seeds (the share of seeds below
it, ties counting half); were the model right, the ranks would spread evenly over 0-1, their
mean ``0.5 +- sqrt(1 / 12n)`` for ``n`` runs. A mean three of those from 0.5 is reported as a
lean -- the real runs slower (``high``) or faster (``low``) than the model -- beside the
verdict, which it does not change. Only statistics whose seeds spread wider than the band's
widening (for a time) and take at least :data:`LEAN_MIN_DISTINCT` values are ranked.
"""

from __future__ import annotations

import math
import statistics as stats
from collections import Counter
from collections.abc import Sequence
from typing import Any

from wsgiscope.simulator.trace import STATUSES, Trace, percentile

#: Runs with at most this many requests are judged rank by rank; larger ones at deciles.
MAX_RANKS = 12
#: The default widening of a time band: this many ms ...
FLOOR_MS = 30.0
#: ... or this percentage of the band's edge, whichever is larger.
FLOOR_PCT = 10.0

#: A lean is reported when the runs' mean rank is this many standard deviations from 0.5.
LEAN_Z = 3.0
#: ... among seeds giving at least this many distinct values.
LEAN_MIN_DISTINCT = 10

#: Statistic families a case may name in its ``judge`` list.
FAMILIES = ("done", "p50", "p95", "p99", "share", "status")


def default_families(scenario: dict[str, Any]) -> list[str]:
    """What is judged when a case does not say: everything that applies to the server."""
    out = ["done", "p50", "p95", "p99"]
    srv = scenario.get("server", {})
    if srv.get("kind") == "gunicorn" and int(srv.get("workers", 1)) > 1:
        out.append("share")
    out.append("status")
    return out


def check_families(names: Sequence[str]) -> list[str]:
    """Validate a ``judge`` list: each a family, optionally ``pNN /path``; one-line errors."""
    out = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"judge: each entry must be a statistic name (got {name!r})")
        head, _, path = name.partition(" ")
        if head not in FAMILIES:
            raise ValueError(
                f"judge: {name!r} is not a statistic (allowed: {', '.join(FAMILIES)}, "
                "or p50/p95/p99 followed by a path)"
            )
        if path and (head not in ("p50", "p95", "p99") or not path.startswith("/")):
            raise ValueError(f"judge: {name!r}: only p50/p95/p99 take a path, like 'p95 /quick'")
        out.append(name)
    return out


def _latency_pct(trace: Trace, q: float, path: str = "") -> float | None:
    ok = sorted(
        r.finished_ms - r.sent_ms
        for r in trace.requests
        if r.status == "ok" and r.finished_ms is not None and (not path or r.path == path)
    )
    return round(percentile(ok, q), 3) if ok else None


def _ranks(n: int) -> list[tuple[str, float]]:
    """Names and positions (fractions of the sorted list) of the completion statistics."""
    if n <= MAX_RANKS:
        return [(f"done #{k + 1}", k / max(n - 1, 1)) for k in range(n)]
    return [(f"done {p}%", p / 100.0) for p in range(0, 101, 10)]


def statistics_of(
    trace: Trace, families: Sequence[str], n_requests: int, workers: int
) -> dict[str, tuple[str, float | None]]:
    """The named statistics of one run: ``{name: (kind, value)}``, kind ``time``,
    ``count`` or ``share`` (a percentage). ``n_requests`` and ``workers`` fix the names
    (the same for every run of a case); a statistic the run cannot give (no request
    completed) is None."""
    out: dict[str, tuple[str, float | None]] = {}
    for fam in families:
        head, _, path = fam.partition(" ")
        if head == "done":
            done = sorted(r.finished_ms for r in trace.requests if r.finished_ms is not None)
            for name, frac in _ranks(n_requests):
                if n_requests <= MAX_RANKS:
                    k = round(frac * max(n_requests - 1, 0))
                    value = done[k] if k < len(done) else None
                else:
                    value = done[round(frac * (len(done) - 1))] if done else None
                out[name] = ("time", None if value is None else round(value, 3))
        elif head in ("p50", "p95", "p99"):
            out[fam] = ("time", _latency_pct(trace, float(head[1:]), path))
        elif head == "share":
            served = Counter(r.worker for r in trace.requests if r.worker)
            counts = sorted(served.values(), reverse=True) + [0] * workers
            total = sum(served.values())
            for k in range(workers):
                out[f"share #{k + 1}"] = (
                    "share", round(100.0 * counts[k] / total, 2) if total else None)
        elif head == "status":
            by = Counter(r.status for r in trace.requests)
            for s in STATUSES:
                out[f"status {s}"] = ("count", float(by.get(s, 0)))
    return out


def _quantile(values: list[float], q: float) -> float:
    return percentile(sorted(values), 100.0 * q)


def band(
    sim_values: Sequence[float | None],
    kind: str,
    q: float = 0.0,
    floor_ms: float = FLOOR_MS,
    pct: float = FLOOR_PCT,
) -> dict[str, Any]:
    """The simulated spread of one statistic and its widened band (see the module doc)."""
    vals = [v for v in sim_values if v is not None]
    missing = len(vals) < len(sim_values)
    if not vals:
        return {
            "lo": None,
            "hi": None,
            "low": None,
            "high": None,
            "median": None,
            "missing": missing,
            "spread": 0.0,
        }
    lo, hi = (min(vals), max(vals)) if q <= 0 else (_quantile(vals, q), _quantile(vals, 1 - q))
    if kind == "time":
        low = max(0.0, lo - max(floor_ms, abs(lo) * pct / 100.0))
        high = hi + max(floor_ms, abs(hi) * pct / 100.0)
    else:
        low, high = lo, hi
    return {
        "lo": round(lo, 3), "hi": round(hi, 3), "low": round(low, 3), "high": round(high, 3),
        "median": round(stats.median(vals), 3), "missing": missing,
        "spread": round(hi - lo, 3),
    }  # fmt: skip


def lean(measured: Sequence[float | None], sim_values: Sequence[float | None], kind: str,
         b: dict[str, Any]) -> dict[str, Any] | None:
    """Where the runs sit among the seeds, when the seeds' spread makes that mean something:
    ``{"ranks", "mean", "z", "lean"}``, ``lean`` being ``"high"``, ``"low"`` or None (see
    the module doc); None when the statistic is not ranked."""
    sims = [v for v in sim_values if v is not None]
    runs = [v for v in measured if v is not None]
    if not runs or len(set(sims)) < LEAN_MIN_DISTINCT:
        return None
    if kind == "time" and b["hi"] - b["lo"] <= b["high"] - b["hi"]:
        return None  # the widening, not the seeds, makes the band
    ranks = [(sum(s < v for s in sims) + 0.5 * sum(s == v for s in sims)) / len(sims)
             for v in runs]
    mean = stats.fmean(ranks)
    z = (mean - 0.5) / math.sqrt(1.0 / (12.0 * len(ranks)))
    side = "high" if z >= LEAN_Z else "low" if z <= -LEAN_Z else None
    return {"ranks": [round(r, 3) for r in ranks], "mean": round(mean, 3), "z": round(z, 2),
            "lean": side}


def _inside(value: float | None, b: dict[str, Any]) -> bool:
    if value is None:
        return bool(b["missing"])
    if b["low"] is None:
        return False
    return bool(b["low"] - 1e-9 <= value <= b["high"] + 1e-9)


def judge(
    measured: Sequence[Trace],
    simulated: Sequence[Trace],
    families: Sequence[str] | None = None,
    q: float = 0.0,
    floor_ms: float = FLOOR_MS,
    pct: float = FLOOR_PCT,
) -> dict[str, Any]:
    """Judge measured runs against simulated seeds, statistic by statistic.

    Returns ``{"statistics": [{"name", "kind", "measured": [per run], "sim": {band},
    "outside": [run indices], "agrees"}], "agrees": bool, "rule": {...}}``.
    """
    if not measured or not simulated:
        raise ValueError("judge needs at least one measured run and one simulated seed")
    fams, n_requests, workers = _naming(measured, simulated, families)
    meas_stats = [statistics_of(t, fams, n_requests, workers) for t in measured]
    values = {name: [m[name][1] for m in meas_stats] for name in meas_stats[0]}
    return judge_values(values, simulated, fams, q, floor_ms, pct, n_requests)


def _naming(
    measured: Sequence[Trace], simulated: Sequence[Trace], families: Sequence[str] | None
) -> tuple[list[str], int, int]:
    """The statistics' families, and the request count and worker count that name them."""
    sc = simulated[0].scenario
    fams = list(families) if families else default_families(sc)
    srv = sc.get("server", {})
    workers = int(srv.get("workers", 1)) if srv.get("kind") == "gunicorn" else 1
    sizes = {len(t.requests) for t in [*measured, *simulated]}
    n_requests = max(sizes) if len(sizes) == 1 else MAX_RANKS + 1
    return fams, n_requests, workers


def judge_values(
    measured: dict[str, list[float | None]],
    simulated: Sequence[Trace],
    families: Sequence[str] | None = None,
    q: float = 0.0,
    floor_ms: float = FLOOR_MS,
    pct: float = FLOOR_PCT,
    n_requests: int | None = None,
) -> dict[str, Any]:
    """:func:`judge` for measured statistics already computed (``{name: [per run]}``, as a
    case file keeps them): the model can be judged again without running a server. A
    statistic the runs do not have counts as outside."""
    if not simulated:
        raise ValueError("judge needs at least one simulated seed")
    fams, n, workers = _naming([], simulated, families)
    n = n_requests if n_requests is not None else n
    sim_stats = [statistics_of(t, fams, n, workers) for t in simulated]
    runs = max((len(v) for v in measured.values()), default=0)
    rows = []
    for name, (kind, _v) in sim_stats[0].items():
        sim_values = [s[name][1] for s in sim_stats]
        b = band(sim_values, kind, q, floor_ms, pct)
        values = measured.get(name, [None] * runs)
        outside = [i for i, v in enumerate(values) if not _inside(v, b)] or (
            [] if name in measured else list(range(max(runs, 1))))
        rows.append({
            "name": name, "kind": kind, "measured": values, "sim": b,
            "outside": outside, "agrees": not outside,
            "rank": lean(values, sim_values, kind, b),
        })  # fmt: skip
    return {
        "statistics": rows,
        "agrees": all(r["agrees"] for r in rows),
        "rule": {
            "band": "min-max" if q <= 0 else f"{q:g}-{1 - q:g} quantiles",
            "q": q,
            "floor_ms": floor_ms,
            "pct": pct,
            "text": rule_text(q, floor_ms, pct),
        },
        "families": fams,
    }


def rule_text(q: float, floor_ms: float, pct: float) -> str:
    what = "[min, max]" if q <= 0 else f"[{q:g}, {1 - q:g}] quantile range"
    return (
        f"every measured run must lie inside the {what} of the simulated seeds, each edge "
        f"of a time widened by max({floor_ms:g} ms, {pct:g} %); counts and shares are not widened"
    )


def _fmt(v: float | None, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "count":
        return f"{v:g}"
    if kind == "share":
        return f"{v:.1f}%"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}"


def format_judgement(result: dict[str, Any], width: int = 46) -> str:
    """The judgement as a plain-text table: one row per statistic."""
    out = []
    head = f"{'statistic':<16} {'measured runs':<{width}} {'simulated band':<30} verdict"
    out.append(head)
    out.append("-" * len(head))
    for row in result["statistics"]:
        kind, b = row["kind"], row["sim"]
        runs = ", ".join(
            _fmt(v, kind) + ("*" if i in row["outside"] else "")
            for i, v in enumerate(row["measured"])
        )
        if len(runs) > width:
            runs = runs[: width - 3] + "..."
        if b["lo"] is None:
            sim = "none"
        elif kind == "time":
            sim = (
                f"{_fmt(b['lo'], kind)}..{_fmt(b['hi'], kind)} ({_fmt(b['low'], kind)}.."
                f"{_fmt(b['high'], kind)})"
            )
        else:
            sim = f"{_fmt(b['lo'], kind)}..{_fmt(b['hi'], kind)}"
        verdict = "ok" if row["agrees"] else "DISAGREES"
        out.append(f"{row['name']:<16} {runs:<{width}} {sim:<30} {verdict}")
    out.append("")
    out.append(f"rule: {result['rule']['text']} (times in ms; * = outside)")
    out.extend(f"lean: {line}" for line in lean_lines(result))
    return "\n".join(out) + "\n"


def _nth(n: int) -> str:
    """``n`` as an ordinal: 1st, 2nd, 3rd, 11th, 92nd, 100th."""
    tail = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{tail}"


def lean_lines(result: dict[str, Any]) -> list[str]:
    """One line per statistic whose runs lean to one side of the seeds (see the module doc)."""
    lines = []
    for row in result["statistics"]:
        r = row.get("rank")
        if r and r["lean"]:
            pcts = sorted(round(100 * x) for x in r["ranks"])
            where = (f"the seeds' {_nth(pcts[0])} percentile" if pcts[0] == pcts[-1] else
                     f"the seeds' {_nth(pcts[0])}-{_nth(pcts[-1])} percentiles, "
                     f"{_nth(round(100 * r['mean']))} on average")
            lines.append(
                f"{row['name']}: the runs sit at {where} (z = {r['z']:+.1f}): "
                + (f"{'slower' if r['lean'] == 'high' else 'faster'} than the model"
                   if row["kind"] == "time" else
                   f"{'above' if r['lean'] == 'high' else 'below'} the model's"))
    return lines


def loadavg() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (``/proc/loadavg``)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return [float(v) for v in fh.read().split()[:3]]
    except (OSError, ValueError):
        return [math.nan] * 3
