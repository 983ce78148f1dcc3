"""The request inspector: one request's life, stage by stage, read only from a Trace.

The stream sends it when the page asks (``op: inspect``); the fragment is rendered here.
"""

from __future__ import annotations

from typing import Any

from flask import render_template
from wsgiscope.simulator.trace import STAGES, Trace

STAGE_NOTES = {
    "connect": "The client's SYN reaches the listening socket; the kernel finishes the TCP "
               "handshake on its own, no Python involved.",
    "backlog": "The finished connection waits in the kernel's accept queue until a server "
               "thread calls accept().",
    "pool": "Accepted, but every worker thread is busy: the connection waits in the thread "
            "pool's queue.",
    "recv": "The server reads the request bytes. This blocks, so the GIL is free meanwhile.",
    "parse": "The server parses the request line and headers and builds the WSGI environ.",
    "context": "Flask pushes the app context and the request context: request, g and "
               "session now work.",
    "match": "The URL map picks the view and its arguments. A routing error is only noted "
             "here and raised later.",
    "before_request": "before_request functions run, the app's first, then the blueprint's. "
                      "One that returns a response skips the view.",
    "view": "The view runs the endpoint's segments: CPU work needs the GIL and a core, an "
            "I/O wait lets the GIL go.",
    "after_request": "The return value becomes a response; after_request functions run in "
                     "reverse order of registration.",
    "teardown": "The contexts pop: teardown_request and teardown_appcontext run, before the "
                "body is sent.",
    "write": "The server writes status, headers and body, then closes the connection.",
}


def inspect_request(trace: Trace, rid: int) -> dict[str, Any]:
    """One request's life as waterfall rows: [{label, note, start, end, parts, marker}]."""
    rec = trace.requests[rid]
    events = trace.request_events(rid)
    marks = [(e.t, str(e.what), e.ref) for e in events if e.kind == "req"]
    states = [(e.t, str(e.what)) for e in events if e.kind == "thread"]
    end = rec.finished_ms if rec.finished_ms is not None else trace.end_ms
    start = rec.sent_ms
    rows: list[dict[str, Any]] = []

    def first(*phases: str) -> float | None:
        for t, what, _ in marks:
            if what in phases:
                return t
        return None

    syn = first("syn")
    queued = first("backlog")
    accepted = first("accept")
    pooled = first("pool")
    stage_marks = [(t, str(ref)) for t, what, ref in marks if what == "stage"]
    first_stage = stage_marks[0][0] if stage_marks else None
    drops = sum(1 for _, what, _ in marks if what == "drop")
    acks = sum(1 for _, what, _ in marks if what == "overflow")
    if syn is not None:
        stop = queued if queued is not None else (accepted if accepted is not None else end)
        note = STAGE_NOTES["connect"]
        if drops:
            note += (f" The accept queue was full: {drops} SYN(s) were dropped and sent "
                     "again later.")
        if acks:
            note += (f" The handshake completed, but the queue was full when the final ACK "
                     f"came: dropped {acks} time(s); the client's retransmits got it in.")
        rows.append({"label": "connect", "start": syn, "end": stop, "state": "connecting",
                     "note": note})
    if queued is not None:
        rows.append({"label": "kernel backlog", "start": queued,
                     "end": accepted if accepted is not None else end, "state": "backlog",
                     "note": STAGE_NOTES["backlog"]})
    if accepted is not None:
        where = next((str(ref) for t, what, ref in marks if what == "accept"), "")
        rows.append({"label": "accept", "start": accepted, "end": accepted, "state": "",
                     "note": f"Accepted by {where}." if where else "Accepted."})
    if pooled is not None:
        rows.append({"label": "wait for a thread", "start": pooled,
                     "end": first_stage if first_stage is not None else end, "state": "pool",
                     "note": STAGE_NOTES["pool"]})
    for i, (t, stage) in enumerate(stage_marks):
        stop = stage_marks[i + 1][0] if i + 1 < len(stage_marks) else end
        parts = []
        for j, (st, state) in enumerate(states):
            nxt = states[j + 1][0] if j + 1 < len(states) else end
            a, b = max(st, t), min(nxt, stop)
            if b > a and state in ("gil", "cpu", "io"):
                parts.append({"start": a, "end": b, "state": state})
        gil_wait = sum(p["end"] - p["start"] for p in parts if p["state"] == "gil")
        note = STAGE_NOTES.get(stage, "")
        if gil_wait >= 0.05:
            note += f" Waited {gil_wait:.2f} ms for the GIL here."
        rows.append({"label": stage, "start": t, "end": stop, "state": "", "parts": parts,
                     "note": note})
    span = max(end - start, 1e-6)
    for row in rows:
        row["left"] = 100.0 * (row["start"] - start) / span
        row["width"] = max(100.0 * (row["end"] - row["start"]) / span, 0.0)
        row["dur"] = row["end"] - row["start"]
        for p in row.get("parts", []):
            p["left"] = 100.0 * (p["start"] - row["start"]) / max(row["end"] - row["start"], 1e-9)
            p["width"] = 100.0 * (p["end"] - p["start"]) / max(row["end"] - row["start"], 1e-9)
    return {"record": rec, "rows": rows, "start": start, "end": end,
            "latency": rec.latency_ms, "stages": STAGES}


def render_inspector(trace: Trace, rid: int) -> str:
    return render_template("_fragments/_inspector.html", **inspect_request(trace, rid))
