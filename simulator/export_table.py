"""The plain-text export of a Trace: a timeline a teacher can paste on a slide (``T= |
client | kernel backlog | server``), a per-request table, the narration and the summary.
It reads only the Trace."""

from __future__ import annotations

import textwrap
from typing import Any

from .narration import describe_server, fmt_dur, lane_name, narrate
from .trace import Trace

#: Timeline rows and per-request rows shown before the table says "... more".
TABLE_MAX_ROWS = 40
TABLE_MAX_LINES = 60  # text lines of the timeline (a row may wrap onto several)
TABLE_MAX_REQUESTS = 30
#: Narration lines in the table output.
TABLE_NARRATION_LINES = 40

_WIDTHS = (9, 28, 22, 44)  # T=, client, kernel backlog, server



def to_table(trace: Trace) -> str:
    """A plain-text report: a heading, the timeline (``T= | client | kernel backlog |
    server``, one row per moment something visible happens), a per-request table, what
    happened in words, and the summary."""
    sc = trace.scenario or {}
    cores = trace.cores
    out = [
        str(sc.get("name") or "untitled scenario"),
        f"{describe_server(sc)} · {cores} core{'s' if cores != 1 else ''} · accept queue "
        f"{trace.backlog_limit} · {trace.source}"
        + (f" · seed {trace.seed}" if trace.seed is not None else ""),
        "",
    ]
    out += _timeline(trace)
    out += ["", "Requests", ""]
    out += _request_table(trace)
    out += ["", "What happened", ""]
    out += [line for _, line in narrate(trace, max_lines=TABLE_NARRATION_LINES)]
    out += ["", "Summary", ""]
    out += _summary(trace)
    return "\n".join(out) + "\n"


def _timeline(trace: Trace) -> list[str]:
    """Rows of ``T= | client | kernel backlog | server``; events closer together than a
    small quantum (a 200th of the run, at least 1 ms) share a row, and users doing the same
    thing in a row are grouped (``users 1-10 -> GET /sleep``)."""
    sc = trace.scenario or {}
    end = trace.end_ms
    quantum = max(1.0, end / 200.0)
    gunicorn = (sc.get("server") or {}).get("kind") == "gunicorn"
    paths = {r.id: r.path for r in trace.requests}
    records = {r.id: r for r in trace.requests}
    queue: dict[int, None] = {}  # ordered set of requests in the accept queue

    rows: list[tuple[float, str, str, str]] = []
    row_t: float | None = None
    # (user, before, after, note): "{before}user(s) {users}{after}", note when alone
    client: list[tuple[int, str, str, str]] = []
    server: list[tuple[int, str, str, str]] = []
    extra_rows = 0

    def flush() -> None:
        nonlocal extra_rows
        if row_t is None or not (client or server):
            return
        if len(rows) >= TABLE_MAX_ROWS:
            extra_rows += 1
            return
        rows.append((row_t, _grouped(client), _queue_cell(queue), _grouped(server)))

    for t, kind, who, what, ref in trace.events.rows():
        if kind == "req":
            if what not in ("syn", "drop", "overflow", "accept", "pool", "done", "backlog"):
                continue
            r = int(who)
        elif kind == "worker":
            # werkzeug's forked children come and go with each request: the accept says it
            if not gunicorn or (what in ("ready", "boot") and t <= 0):
                continue
        else:
            continue
        if row_t is None or t - row_t > quantum:
            flush()
            row_t = t
            client, server = [], []
        if kind == "worker":
            detail = f" ({ref})" if ref else ""
            server.append((-1, f"worker {who} {what}{detail}", "", ""))
            continue
        u = r + 1
        if what == "syn":
            rec = records.get(r)
            if rec is not None and t <= rec.sent_ms + 1e-9:
                client.append((u, "", f" -> GET {paths.get(r, '?')}", ""))
            else:
                client.append((u, "", " resend SYN", ""))
        elif what == "drop":
            client.append((u, "", " SYN dropped", ""))
        elif what == "overflow":
            client.append((u, "", " ACK dropped", ""))
        elif what == "backlog":
            queue[r] = None
        elif what == "accept":
            queue.pop(r, None)
            server.append((u, f"{_short_lane(sc, str(ref))} accepts ", "", ""))
        elif what == "pool":
            server.append((u, "", " wait for a thread", ""))
        elif what == "done":
            queue.pop(r, None)
            rec = records.get(r)
            status = str(ref)
            took = f" ({fmt_dur(rec.latency_ms)})" if rec is not None and rec.latency_ms else ""
            if status in ("ok", "error"):
                fallback = 200 if status == "ok" else 500
                code = rec.http_status if rec is not None and rec.http_status else fallback
                client.append((u, "", f" <- {code}", took))
            else:
                client.append((u, "", f" {status}", took))
            if rec is not None and rec.thread and status in ("ok", "error"):
                server.append((u, f"{_short_lane(sc, rec.thread)} finishes ", "", ""))
    flush()

    header = ("T=", "client", "kernel backlog", "server")
    lines = [_row(header), "-+-".join("-" * w for w in _WIDTHS)]
    for k, (t, cli, q, srv) in enumerate(rows):
        wrapped = _wrapped_row(f"{t / 1000.0:.3f} s", cli, q, srv)
        if len(lines) + len(wrapped) > TABLE_MAX_LINES + 2:
            extra_rows += len(rows) - k
            break
        lines += wrapped
    if extra_rows:
        lines.append(f"... {extra_rows} more rows (use --format csv or trace for all of them)")
    return lines


def _short_lane(scenario: dict[str, Any], key: str) -> str:
    return lane_name(scenario, key).split(" ", 1)[1]


def _grouped(items: list[tuple[int, str, str, str]]) -> str:
    """Users doing the same thing, consecutive ones as a range, in the order the things
    first happened: ``users 1-10 -> GET /sleep``; a lone user keeps its note."""
    by_label: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for u, before, after, note in items:
        by_label.setdefault((before, after), []).append((u, note))
    out: list[str] = []
    for (before, after), entries in by_label.items():
        if entries[0][0] < 0:  # not about a user
            out.append(before)
            continue
        users = sorted(u for u, _ in entries)
        runs: list[str] = []
        start = prev = users[0]
        for u in users[1:] + [-1]:
            if u == prev + 1:
                prev = u
                continue
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = u
        if len(users) == 1:
            out.append(f"{before}user {users[0]}{after}{entries[0][1]}")
        else:
            out.append(f"{before}users {', '.join(runs)}{after}")
    return ", ".join(out)


def _queue_cell(queue: dict[int, None]) -> str:
    if not queue:
        return "[ ]"
    users = [str(r + 1) for r in queue]
    if len(users) > 6:
        return f"[{' '.join(users[:4])} ... {users[-1]}] ({len(users)})"
    return f"[{' '.join(users)}]"


def _row(cells: tuple[str, ...]) -> str:
    return " | ".join(c.ljust(w) for c, w in zip(cells, _WIDTHS, strict=True)).rstrip()


def _wrapped_row(*cells: str) -> list[str]:
    parts = [textwrap.wrap(c, w) or [""] for c, w in zip(cells, _WIDTHS, strict=True)]
    height = max(len(p) for p in parts)
    return [_row(tuple(p[i] if i < len(p) else "" for p in parts)) for i in range(height)]


def _request_table(trace: Trace) -> list[str]:
    sc = trace.scenario or {}
    header = (
        "user",
        "path",
        "sent",
        "accepted",
        "finished",
        "latency",
        "status",
        "served by",
        "backlog",
        "GIL wait",
        "SYN retries",
    )
    rows = [header]
    for rec in trace.requests[:TABLE_MAX_REQUESTS]:
        status = rec.status if rec.http_status in (None, 200) else f"{rec.status} {rec.http_status}"
        rows.append(
            (
                str(rec.id + 1),
                rec.path,
                _sec(rec.sent_ms),
                _sec(rec.accepted_ms),
                _sec(rec.finished_ms),
                _sec(rec.latency_ms),
                status,
                _short_lane(sc, rec.thread) if rec.thread else "-",
                _sec(rec.queue_ms),
                _sec(rec.gil_wait_ms),
                str(rec.syn_retries),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if i < 2 or i in (6, 7) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    more = len(trace.requests) - TABLE_MAX_REQUESTS
    if more > 0:
        lines.append(f"... {more} more requests (use --format csv for all of them)")
    return lines


def _sec(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000.0:.3f} s"


def _summary(trace: Trace) -> list[str]:
    s = trace.summary or {}
    lat = s.get("latency_ms", {}) or {}
    lines = [
        f"requests      {s.get('requests', len(trace.requests))}: {s.get('completed', 0)} ok, "
        f"{s.get('errors', 0)} errors, {s.get('timeouts', 0)} timeouts, "
        f"{s.get('resets', 0)} resets",
        f"makespan      {_sec(s.get('makespan_ms', 0.0))}   throughput "
        f"{s.get('throughput_rps', 0.0)} requests/s",
        "latency       mean {}  p50 {}  p95 {}  p99 {}  max {}".format(
            *(_sec(lat.get(k, 0.0)) for k in ("mean", "p50", "p95", "p99", "max"))
        ),
        f"backlog       peak {s.get('max_backlog', 0)} of {trace.backlog_limit}, "
        f"{s.get('syn_retries', 0)} SYN retransmits, mean wait {_sec(s.get('mean_queue_ms', 0.0))}",
        f"GIL           {s.get('gil_wait_pct', 0.0)}% of time on a thread spent waiting for it",
        f"CPU           {round(100 * float(s.get('cpu_utilisation', 0.0)), 1)}% of "
        f"{trace.cores} core{'s' if trace.cores != 1 else ''} busy",
    ]
    return lines
