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
    "recv": "The server reads the request from the socket (werkzeug's "
            "WSGIRequestHandler.handle_one_request, gunicorn's parser); the read blocks, so "
            "the GIL is free meanwhile.",
    "parse": "The request line and headers become the WSGI environ "
             "(WSGIRequestHandler.make_environ), and the server calls app(environ, "
             "start_response), that is Flask.wsgi_app.",
    "context": "wsgi_app calls RequestContext.push(): it pushes an AppContext first "
               "(current_app, g) and then itself (request, session), each in its contextvar.",
    "match": "RequestContext.match_request() asks the URL map for the rule and its "
             "arguments; a 404 or 405 is only stored on request.routing_exception, raised "
             "later.",
    "before_request": "full_dispatch_request calls preprocess_request(): the before_request "
                      "functions run in order, and one that returns a value skips the view.",
    "view": "dispatch_request() calls the view function; CPU work needs the GIL and a core, "
            "an I/O wait lets the GIL go.",
    "error": "handle_user_exception() (an abort, a routing error, an exception with its own "
             "errorhandler) or wsgi_app's handle_exception() (anything else: a logged 500) "
             "turns the exception into a response.",
    "after_request": "finalize_request(): make_response() turns the return value into a "
                     "Response, then process_response() runs after_request functions in "
                     "reverse order of registration.",
    "teardown": "In wsgi_app's finally, ctx.pop(error) runs do_teardown_request and "
                "do_teardown_appcontext (teardown functions in reverse order) and pops both "
                "contexts, before the body is sent.",
    "write": "The server writes the status line, headers and body and closes the connection "
             "(each client here sends one request with Connection: close, as the lab's "
             "do).",
}

#: What each stage is on the way from the socket back to the socket.
STAGE_STEPS = {
    "recv": "WSGI server",
    "parse": "environ",
    "context": "app ctx push → request ctx push",
    "match": "URL match",
    "before_request": "before_request",
    "view": "view",
    "error": "error handler",
    "after_request": "make_response → after_request (reverse)",
    "teardown": "teardown (reverse) → ctx pop",
    "write": "write → close",
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
    outcome = next((str(ref) for _, what, ref in marks if what == "outcome"), "")
    races = [str(ref) for _, what, ref in marks if what == "race"]
    where = _where(rec)
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
        if outcome and (stage == "error" or (stage == "before_request" and
                                             "before_request function" in outcome)):
            note += f" Here: {outcome}."
        if races and stage == "view":
            note += " " + " ".join(f"Race: {r}." for r in races[:3])
        rows.append({"label": stage, "start": t, "end": stop, "state": "", "parts": parts,
                     "note": note, "step": STAGE_STEPS.get(stage, stage), "where": where})
    span = max(end - start, 1e-6)
    for row in rows:
        row.setdefault("step", "socket" if row["label"] != "wait for a thread" else "pool")
        row.setdefault("where", "the kernel" if row["state"] in ("connecting", "backlog")
                       else where)
    for row in rows:
        row["left"] = 100.0 * (row["start"] - start) / span
        row["width"] = max(100.0 * (row["end"] - row["start"]) / span, 0.0)
        row["dur"] = row["end"] - row["start"]
        for p in row.get("parts", []):
            p["left"] = 100.0 * (p["start"] - row["start"]) / max(row["end"] - row["start"], 1e-9)
            p["width"] = 100.0 * (p["end"] - p["start"]) / max(row["end"] - row["start"], 1e-9)
    return {"record": rec, "rows": rows, "start": start, "end": end,
            "latency": rec.latency_ms, "stages": STAGES}


def _where(rec: Any) -> str:
    """The thread and process that served a request, as the inspector names them."""
    if not rec.thread:
        return ""
    proc = rec.worker or rec.thread.partition("/")[0]
    return f"thread {rec.thread}, process {proc}"


def render_inspector(trace: Trace, rid: int) -> str:
    return render_template("_fragments/_inspector.html", **inspect_request(trace, rid))
