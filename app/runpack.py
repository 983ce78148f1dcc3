"""A prepared run packed: as bytes for a pipe or a shared cache, and the request
inspector's data as JSON, per batch of requests.

* :func:`to_bytes` / :func:`from_bytes` -- a magic string, the length of a JSON head (the
  meta, the encoded spans, records, narration and inspector batches, and the list of
  arrays), the head, then each typed array's raw bytes. No pickle: the serving process
  decodes nothing that could run code, and a large run decodes in milliseconds (the arrays
  are copied, not parsed).
* :func:`inspect_data` / :func:`inspect_view` -- each request's record (JSON, in batches
  of :data:`INSPECT_BATCH`) and its events (:class:`Inspect`: typed arrays, grouped by
  request), so inspecting one request decodes one batch and a few events, and the serving
  process never holds a whole Trace.
"""

from __future__ import annotations

import functools
import json
import struct
import sys
from array import array
from dataclasses import dataclass, fields
from itertools import accumulate, chain, compress, repeat
from operator import and_, attrgetter, lshift, or_, rshift
from typing import Any

from wsgiscope.simulator.trace import Event, RequestRecord, Trace

#: A :class:`~wsgiscope.app.runs.Prepared` run (not imported: runs.py imports this module).
Prepared = Any

#: Requests per batch of inspector data (decoded together when one of them is inspected).
INSPECT_BATCH = 64
#: The version of :func:`to_bytes`; part of every cache key (:mod:`.cache`).
WIRE_FORMAT = 2
_MAGIC = b"WSGISCOPE-RUN"
_JSON = json.JSONEncoder(separators=(",", ":"))


def _arrays(run: Prepared) -> list[tuple[str, array[Any]]]:
    named = [("times", run.times), ("th", run.th), ("g", run.g),
             ("span_starts", run.span_starts), ("done_times", run.done_times),
             ("line_times", run.line_times)]
    ins = run.inspect
    if ins is not None:
        named += [("inspect:offsets", ins.offsets), ("inspect:t", ins.t),
                  ("inspect:ids", ins.ids)]
    return named + [(f"counter:{k}", v) for k, v in run.counters.items()]


def to_bytes(run: Prepared) -> bytes:
    arrays = _arrays(run)
    ins = run.inspect
    head = {"format": WIRE_FORMAT, "byteorder": sys.byteorder, "key": run.key,
            "tick_ms": run.tick_ms, "end_ms": run.end_ms, "meta": run.meta,
            "arrays": [[name, a.typecode, len(a)] for name, a in arrays],
            "spans": run.spans, "done": run.done, "narration": run.narration,
            "inspect": None if ins is None else [ins.records, ins.kinds_text]}
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
    ins = None
    if head["inspect"] is not None:
        records, kinds_text = head["inspect"]
        ins = Inspect(records, kinds_text, arrays["inspect:offsets"], arrays["inspect:t"],
                      arrays["inspect:ids"])
    return cls(head["key"], head["tick_ms"], head["end_ms"], head["meta"],
               arrays["times"], counters, arrays["th"], arrays["g"],
               arrays["span_starts"], head["spans"], arrays["done_times"], head["done"],
               arrays["line_times"], head["narration"], ins)


_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))


@dataclass
class Inspect:
    """What the request inspector reads of a run: each request's record, as JSON lists of
    :data:`INSPECT_BATCH` records, and the events :meth:`Trace.request_events` gives for
    it, grouped by request in typed arrays: request ``rid``'s are ``offsets[rid]`` to
    ``offsets[rid + 1]``, each a time in ``t`` and in ``ids`` an index into the run's
    distinct ``[kind, what, other]`` (``kinds_text``, JSON), where ``other`` is the ``ref``
    of a ``req`` event and the ``who`` of a ``thread`` event (the other one is ``rid``).

    About 12 bytes an event, made without a Python object per event kept: JSON batches of
    every event were most of a large run's pack and of the time to prepare it."""

    records: list[str]
    kinds_text: str
    offsets: array[int]
    t: array[float]
    ids: array[int]

    @functools.cached_property
    def kinds(self) -> list[list[Any]]:
        return json.loads(self.kinds_text)  # type: ignore[no-any-return]

    def approx_size(self) -> int:
        """The bytes this holds, roughly (for the run cache)."""
        return (sum(len(t) + 57 for t in self.records) + len(self.kinds_text)
                + 8 * len(self.offsets) + 12 * len(self.t))


def inspect_data(trace: Trace) -> Inspect:
    """The inspector's data of every request of ``trace`` (see :class:`Inspect`)."""
    n = len(trace.requests)
    log = trace.events
    codes = bytes(log.codes)
    ids = _Intern()
    buckets: list[list[int]] = [[] for _ in range(n + 1)]  # the last: events of no request
    # Per kind, the events' request, key and place are picked in C; the one Python step per
    # event puts its place and key (packed in one int) in its request's bucket.
    for kind, rid_column, other_column in (("req", log.who, log.ref),
                                           ("thread", log.ref, log.who)):
        table = bytearray(256)
        table[log.code(kind)] = 1
        mask = codes.translate(table)
        rids = list(compress(rid_column, mask))
        whats, others = list(compress(log.what, mask)), list(compress(other_column, mask))
        if not (_plain(rids) and (not rids or (min(rids) >= -1 and max(rids) < n))
                and _plain(whats) and _plain(others)):
            # a request that is not a plain int in range, or values such as 1.0 or True
            # (equal to 1 as keys): the plain way
            return _inspect_typed(trace)
        keys = map(ids.__getitem__, zip(repeat(kind), whats, others))
        places = map(lshift, compress(range(len(codes)), mask), repeat(32))
        for rid, packed in zip(rids, map(or_, places, keys), strict=True):
            buckets[rid].append(packed)
        del rids, whats, others
    buckets.pop()
    for bucket in buckets:
        bucket.sort()  # each request's events in the log's order
    order = list(chain.from_iterable(buckets))
    offsets = array("q", accumulate(map(len, buckets), initial=0))
    del buckets
    times = array("d", map(log.t.__getitem__, map(rshift, order, repeat(32))))
    return Inspect(_record_batches(trace), _JSON.encode([list(k) for k in ids]), offsets,
                   times, _ints(map(and_, order, repeat(0xFFFFFFFF)), len(ids)))


class _Intern(dict[tuple[Any, ...], int]):
    """Distinct keys numbered in the order they are first looked up."""

    def __missing__(self, key: tuple[Any, ...]) -> int:
        number = self[key] = len(self)
        return number


def _plain(values: list[Any]) -> bool:
    """Whether every value is a str, an int (not a bool) or None."""
    return set(map(type, values)) <= {str, int, type(None)}


def _inspect_typed(trace: Trace) -> Inspect:
    """:func:`inspect_data` for a Trace whose events hold values other than strings and
    ints: each event's values told apart by type too (slower)."""
    n = len(trace.requests)
    events: list[list[Any]] = [[] for _ in range(n)]
    for t, kind, who, what, ref in trace.events.rows():
        if kind == "req" or kind == "thread":
            rid, other = (who, ref) if kind == "req" else (ref, who)
            if type(rid) is int and 0 <= rid < n:
                events[rid].append((t, kind, what, other))
    distinct: dict[tuple[Any, ...], int] = {}
    keys: list[list[Any]] = []
    times = array("d")
    ids: list[int] = []
    for t, kind, what, other in chain.from_iterable(events):
        k = (kind, type(what), what, type(other), other)
        i = distinct.get(k)
        if i is None:
            i = distinct[k] = len(keys)
            keys.append([kind, what, other])
        times.append(t)
        ids.append(i)
    offsets = array("q", accumulate(map(len, events), initial=0))
    return Inspect(_record_batches(trace), _JSON.encode(keys), offsets, times,
                   _ints(ids, len(keys)))


def _ints(values: Any, bound: int) -> array[int]:
    return array("i" if bound < 2**31 else "q", values)


def _record_batches(trace: Trace) -> list[str]:
    """Every request's record as JSON, a list of :data:`INSPECT_BATCH` per string."""
    # a record's fields are plain values: a shallow dict is asdict's result, without its
    # deep copy of every value
    values = attrgetter(*_RECORD_FIELDS)
    requests = trace.requests
    return [_JSON.encode([dict(zip(_RECORD_FIELDS, values(r), strict=True))
                          for r in requests[a:a + INSPECT_BATCH]])
            for a in range(0, len(requests), INSPECT_BATCH)]


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
    ins: Inspect = run.inspect
    record = RequestRecord(**json.loads(ins.records[rid // INSPECT_BATCH])[rid % INSPECT_BATCH])
    kinds, t, ids = ins.kinds, ins.t, ins.ids
    events = []
    for j in range(ins.offsets[rid], ins.offsets[rid + 1]):
        kind, what, other = kinds[ids[j]]
        who, ref = (rid, other) if kind == "req" else (other, rid)
        events.append(Event(t[j], kind, who, what, ref))
    return OneRequest(rid, record, events, run.end_ms)
