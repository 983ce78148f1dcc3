"""A prepared run packed: as bytes for a pipe or a shared cache, and the request
inspector's data as JSON, per batch of requests.

* :func:`to_bytes` / :func:`from_bytes` -- a magic string, the length of a JSON head (the
  meta, the encoded spans, records, narration and inspector batches, and the list of
  arrays), the head, then each typed array's raw bytes. No pickle: the serving process
  decodes nothing that could run code, and a large run decodes in milliseconds (the arrays
  are copied, not parsed).
* :func:`inspect_data` / :func:`inspect_view` -- each request's record (JSON, in batches
  of :data:`INSPECT_BATCH`) and its events (:class:`Inspect`: typed arrays in the log's
  order, searched by request), so inspecting one request decodes one batch and a few
  events, and the serving process never holds a whole Trace.
"""

from __future__ import annotations

import functools
import json
import struct
import sys
from array import array
from dataclasses import dataclass, fields
from itertools import chain, compress
from operator import attrgetter
from typing import Any

from wsgiscope.simulator.trace import Event, RequestRecord, Trace

#: A :class:`~wsgiscope.app.runs.Prepared` run (not imported: runs.py imports this module).
Prepared = Any

#: Requests per batch of inspector data (decoded together when one of them is inspected).
INSPECT_BATCH = 64
#: The version of :func:`to_bytes`; part of every cache key (:mod:`.cache`).
WIRE_FORMAT = 3
_MAGIC = b"WSGISCOPE-RUN"
_JSON = json.JSONEncoder(separators=(",", ":"))


def _arrays(run: Prepared) -> list[tuple[str, array[Any]]]:
    named = [("times", run.times), ("th", run.th), ("g", run.g),
             ("span_starts", run.span_starts), ("done_times", run.done_times),
             ("line_times", run.line_times)]
    ins = run.inspect
    if ins is not None:
        named += [("inspect:t", ins.t), ("inspect:ids", ins.ids), ("inspect:low", ins.low),
                  ("inspect:high", ins.high)]
    return named + [(f"counter:{k}", v) for k, v in run.counters.items()]


def to_bytes(run: Prepared) -> bytes:
    arrays = _arrays(run)
    ins = run.inspect
    head = {"format": WIRE_FORMAT, "byteorder": sys.byteorder, "key": run.key,
            "tick_ms": run.tick_ms, "end_ms": run.end_ms, "meta": run.meta,
            "arrays": [[name, a.typecode, len(a)] for name, a in arrays],
            "rids": 0 if ins is None else len(ins.rids),
            "spans": run.spans, "done": run.done, "narration": run.narration,
            "inspect": None if ins is None else [ins.records, ins.kinds_text, ins.block]}
    text = _JSON.encode(head).encode()
    return b"".join([_MAGIC, struct.pack("<Q", len(text)), text,
                     *(a.tobytes() for _, a in arrays), b"" if ins is None else ins.rids])


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
        records, kinds_text, block = head["inspect"]
        ins = Inspect(records, kinds_text, data[at:at + head["rids"]], arrays["inspect:t"],
                      arrays["inspect:ids"], arrays["inspect:low"], arrays["inspect:high"],
                      block)
    return cls(head["key"], head["tick_ms"], head["end_ms"], head["meta"],
               arrays["times"], counters, arrays["th"], arrays["g"],
               arrays["span_starts"], head["spans"], arrays["done_times"], head["done"],
               arrays["line_times"], head["narration"], ins)


_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))
_RID = struct.Struct("=i")


@dataclass
class Inspect:
    """What the request inspector reads of a run: each request's record, as JSON lists of
    :data:`INSPECT_BATCH` records (each the list of its :class:`RequestRecord` fields'
    values, in order), and the events :meth:`Trace.request_events` gives for it, kept in
    the log's order: for every ``req`` and ``thread`` event, its request in ``rids`` (a
    32-bit int each, -1 for none), its time in ``t`` and in ``ids`` an index into the
    run's distinct ``[kind, what, other]`` (``kinds_text``, JSON), where ``other`` is the
    ``ref`` of a ``req`` event and the ``who`` of a ``thread`` event (the other one is
    the request).

    A request's events are found by searching ``rids`` (in C) within the blocks of
    :data:`INSPECT_BLOCK` events whose smallest and largest request (``low``, ``high``)
    bracket it: a few blocks, as requests come and go in order. About 16 bytes an event,
    made with a handful of passes in C over the log's columns and no Python step per
    event: grouping the events by request was most of the time to prepare the
    inspector's data."""

    records: list[str]
    kinds_text: str
    rids: bytes
    t: array[float]
    ids: array[int]
    low: array[int]
    high: array[int]
    block: int = 0  # events per block of ``low`` and ``high`` (INSPECT_BLOCK when made)

    @functools.cached_property
    def kinds(self) -> list[list[Any]]:
        return json.loads(self.kinds_text)  # type: ignore[no-any-return]

    def approx_size(self) -> int:
        """The bytes this holds, roughly (for the run cache)."""
        return (sum(len(t) + 57 for t in self.records) + len(self.kinds_text)
                + len(self.rids) + 12 * len(self.t) + 8 * len(self.low))

    def places(self, rid: int) -> list[int]:
        """Where request ``rid``'s events are, in the log's order."""
        rids, pattern, step = self.rids, _RID.pack(rid), _RID.size
        out: list[int] = []
        low, high, size = self.low, self.high, self.block * step
        block, blocks = 0, len(low)
        while block < blocks:
            if not low[block] <= rid <= high[block]:
                block += 1
                continue
            first = block
            while block < blocks and low[block] <= rid <= high[block]:
                block += 1
            at, stop = first * size, min(block * size, len(rids))
            while True:
                at = rids.find(pattern, at, stop)
                if at < 0:
                    break
                if at % step:  # across two requests' bytes
                    at += 1
                    continue
                out.append(at // step)
                at += step
        return out


#: Events per block of :attr:`Inspect.rids` whose smallest and largest request are kept.
INSPECT_BLOCK = 2048


def inspect_data(trace: Trace) -> Inspect:
    """The inspector's data of every request of ``trace`` (see :class:`Inspect`)."""
    n = len(trace.requests)
    log = trace.events
    codes = bytes(log.codes)
    req, thread = log.code("req"), log.code("thread")
    table = bytearray(256)
    table[req] = table[thread] = 1
    mask = codes.translate(table)  # the req and thread events
    picked = bytes(compress(codes, mask))
    m = len(picked)
    # each event's (who, ref) in turn: its request is the first of a req event and the
    # second of a thread event, its other value the other one (bytes to compress them by)
    is_req, is_thread = bytearray(256), bytearray(256)
    is_req[req], is_thread[thread] = 1, 1
    first, second = picked.translate(is_req), picked.translate(is_thread)
    take_rid, take_other = bytearray(2 * m), bytearray(2 * m)
    take_rid[0::2] = take_other[1::2] = first
    take_rid[1::2] = take_other[0::2] = second
    del first, second
    pairs = list(chain.from_iterable(zip(compress(log.who, mask), compress(log.ref, mask),
                                         strict=True)))
    rids = list(compress(pairs, take_rid))
    others = list(compress(pairs, take_other))
    del pairs, take_rid, take_other
    whats = list(compress(log.what, mask))
    if not (_plain(rids) and (not rids or (min(rids) >= -1 and max(rids) < n))
            and _plain(whats) and _plain(others)):
        # a request that is not a plain int in range, or values such as 1.0 or True
        # (equal to 1 as keys): the plain way
        return _inspect_typed(trace)
    ids = _Intern()
    keys = array("i", map(ids.__getitem__, zip(map(log.kinds.__getitem__, picked), whats,
                                                others, strict=True)))
    del whats, others
    column = array("i", rids)
    del rids
    return Inspect(_record_batches(trace), _JSON.encode([list(k) for k in ids]),
                   column.tobytes(), array("d", compress(log.t, mask)), keys,
                   *_blocks(column))


def _blocks(rids: array[int]) -> tuple[array[int], array[int], int]:
    """The smallest and largest request (-1, no request, left out) per block of
    :data:`INSPECT_BLOCK` events."""
    signed = memoryview(rids)
    unsigned = signed.cast("B").cast("I")  # -1 is the largest: never a block's smallest
    size = INSPECT_BLOCK
    starts = range(0, len(rids), size)
    return (array("q", (min(unsigned[a:a + size]) for a in starts)),
            array("q", (max(signed[a:a + size]) for a in starts)), size)


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
    distinct: dict[tuple[Any, ...], int] = {}
    keys: list[list[Any]] = []
    times = array("d")
    rids = array("i")
    ids: list[int] = []
    for t, kind, who, what, ref in trace.events.rows():
        if kind == "req" or kind == "thread":
            rid, other = (who, ref) if kind == "req" else (ref, who)
            if not (type(rid) is int and 0 <= rid < n):
                continue
            k = (kind, type(what), what, type(other), other)
            i = distinct.get(k)
            if i is None:
                i = distinct[k] = len(keys)
                keys.append([kind, what, other])
            times.append(t)
            rids.append(rid)
            ids.append(i)
    return Inspect(_record_batches(trace), _JSON.encode(keys), rids.tobytes(), times,
                   _ints(ids, len(keys)), *_blocks(rids))


def _ints(values: Any, bound: int) -> array[int]:
    return array("i" if bound < 2**31 else "q", values)


def _record_batches(trace: Trace) -> list[str]:
    """Every request's record as JSON: the values of its fields in order (a list, not an
    object: half the text, and no dict made per record), :data:`INSPECT_BATCH` records
    per string."""
    values = attrgetter(*_RECORD_FIELDS)
    requests = trace.requests
    return [_JSON.encode(list(map(values, requests[a:a + INSPECT_BATCH])))
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
    record = RequestRecord(*json.loads(ins.records[rid // INSPECT_BATCH])[rid % INSPECT_BATCH])
    kinds, t, ids = ins.kinds, ins.t, ins.ids
    events = []
    for j in ins.places(rid):
        kind, what, other = kinds[ids[j]]
        who, ref = (rid, other) if kind == "req" else (other, rid)
        events.append(Event(t[j], kind, who, what, ref))
    return OneRequest(rid, record, events, run.end_ms)
