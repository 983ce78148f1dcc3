"""A prepared run packed: as bytes for a pipe or a shared cache, and the request
inspector's data as JSON, per batch of requests.

* :func:`to_bytes` / :func:`from_bytes` -- a magic string, the length of a JSON head (the
  meta, the encoded spans, records, narration and inspector batches, and the list of
  arrays), the head, then each typed array's raw bytes. No pickle: the serving process
  decodes nothing that could run code, and a large run decodes in milliseconds (the arrays
  are copied, not parsed).
* :func:`inspect_batches` / :func:`inspect_view` -- each request's record and events, in
  JSON batches of :data:`INSPECT_BATCH`, so inspecting one request decodes one batch and
  the serving process never holds a whole Trace.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from dataclasses import fields
from typing import Any

from wsgiscope.simulator.trace import Event, RequestRecord, Trace

#: A :class:`~wsgiscope.app.runs.Prepared` run (not imported: runs.py imports this module).
Prepared = Any

#: Requests per batch of inspector data (decoded together when one of them is inspected).
INSPECT_BATCH = 64
#: The version of :func:`to_bytes`; part of every cache key (:mod:`.cache`).
WIRE_FORMAT = 1
_MAGIC = b"WSGISCOPE-RUN"
_JSON = json.JSONEncoder(separators=(",", ":"))


def _arrays(run: Prepared) -> list[tuple[str, array[Any]]]:
    named = [("times", run.times), ("th", run.th), ("g", run.g),
             ("span_starts", run.span_starts), ("done_times", run.done_times),
             ("line_times", run.line_times)]
    return named + [(f"counter:{k}", v) for k, v in run.counters.items()]


def to_bytes(run: Prepared) -> bytes:
    arrays = _arrays(run)
    head = {"format": WIRE_FORMAT, "byteorder": sys.byteorder, "key": run.key,
            "tick_ms": run.tick_ms, "end_ms": run.end_ms, "meta": run.meta,
            "arrays": [[name, a.typecode, len(a)] for name, a in arrays],
            "spans": run.spans, "done": run.done, "narration": run.narration,
            "inspect": run.inspect}
    text = _JSON.encode(head).encode()
    return b"".join([_MAGIC, struct.pack("<Q", len(text)), text,
                     *(a.tobytes() for _, a in arrays)])


def from_bytes(cls: Any, data: bytes) -> Prepared:
    if not data.startswith(_MAGIC):
        raise ValueError("not a prepared run")
    at = len(_MAGIC) + 8
    (size,) = struct.unpack_from("<Q", data, len(_MAGIC))
    head = json.loads(data[at:at + size])
    if head.get("format") != WIRE_FORMAT or head.get("byteorder") != sys.byteorder:
        raise ValueError("a prepared run of another format")
    at += size
    arrays: dict[str, array[Any]] = {}
    for name, typecode, length in head["arrays"]:
        a = array(typecode)
        end = at + length * a.itemsize
        a.frombytes(data[at:end])
        arrays[name] = a
        at = end
    counters = {k[len("counter:"):]: v for k, v in arrays.items() if k.startswith("counter:")}
    return cls(head["key"], head["tick_ms"], head["end_ms"], head["meta"],
               arrays["times"], counters, arrays["th"], arrays["g"],
               arrays["span_starts"], head["spans"], arrays["done_times"], head["done"],
               arrays["line_times"], head["narration"], head["inspect"])


_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))


def inspect_batches(trace: Trace) -> list[str]:
    """The inspector's data (each request's record and events), as JSON per batch."""
    n = len(trace.requests)
    events: list[list[Any]] = [[] for _ in range(n)]
    # one pass: what Trace.request_events picks, for every request (plain rows: no Event each)
    for t, kind, who, what, ref in trace.events.rows():
        rid = who if kind == "req" else ref if kind == "thread" else None
        if type(rid) is int and 0 <= rid < n:
            events[rid].append([t, kind, who, what, ref])
    out = []
    for a in range(0, n, INSPECT_BATCH):
        # a record's fields are plain values: a shallow dict is asdict's result, without
        # its deep copy of every value (most of this function's time at 100,000s)
        records = [{f: getattr(r, f) for f in _RECORD_FIELDS}
                   for r in trace.requests[a:a + INSPECT_BATCH]]
        out.append(_JSON.encode({"records": records, "events": events[a:a + INSPECT_BATCH]}))
    return out


class OneRequest:
    """What the request inspector reads of a Trace, for one request only."""

    def __init__(self, rid: int, record: RequestRecord, events: list[Event],
                 end_ms: float) -> None:
        self.requests = {rid: record}
        self._events = events
        self.end_ms = end_ms

    def request_events(self, req_id: int) -> list[Event]:
        return self._events


def inspect_view(run: Prepared, rid: int) -> OneRequest:
    """Request ``rid`` of ``run`` as the inspector reads a Trace."""
    batch = json.loads(run.inspect[rid // INSPECT_BATCH])
    j = rid % INSPECT_BATCH
    record = RequestRecord(**batch["records"][j])
    events = [Event(*e) for e in batch["events"][j]]
    return OneRequest(rid, record, events, run.end_ms)
