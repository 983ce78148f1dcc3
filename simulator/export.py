"""Exports of a Trace: a plain-text timeline, CSV, Chrome Trace Event JSON, and the result
JSON. Each reads only the Trace, so simulated and measured runs export the same way.

* :func:`to_table` (:mod:`.export_table`) -- a timeline a teacher can paste on a slide
  (``T= | client | kernel backlog | server``), a per-request table, the narration and the
  summary.
* :func:`to_csv` -- one row per request.
* :func:`to_chrome_trace` (:mod:`.export_chrome`) -- JSON for Perfetto (ui.perfetto.dev) or
  ``chrome://tracing``: a track per thread, the GIL holder per process and the backlog as a
  counter.
* :func:`to_json` -- the result format of docs/ARCHITECTURE.md (:meth:`Trace.to_result`);
  :func:`iter_json` yields the same as indented JSON text, a piece at a time, without
  building it (a run of 200,000 requests would otherwise hold it all twice).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import fields
from itertools import chain, repeat
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import Any

from .export_chrome import iter_chrome_trace as iter_chrome_trace
from .export_chrome import to_chrome_trace as to_chrome_trace
from .export_table import to_table as to_table
from .trace import RECORD_FIELDS, RequestRecord, Trace, result_row

#: Requests per piece of text :func:`iter_json` yields.
JSON_CHUNK = 2000

#: The types a request's values are written from column by column (exactly these: a subclass
#: or a container goes through ``json.dumps``).
_SCALARS = frozenset((str, int, float, bool, type(None)))

_flat = json.JSONEncoder().encode  # no indent: the C encoder


def to_json(trace: Trace) -> dict[str, Any]:
    """The result format (docs/ARCHITECTURE.md): ``{"requests": [...], "summary": {...}}``."""
    return trace.to_result()


def iter_json(trace: Trace) -> Iterator[str]:
    """``json.dumps(to_json(trace), indent=2) + "\\n"``, the same text to the byte, in pieces
    of :data:`JSON_CHUNK` requests, each request encoded as it is reached."""
    result = {"source": trace.source, "scenario": trace.scenario.get("name", ""),
              "seed": trace.seed, "requests": [], "summary": trace.summary}
    text = json.dumps(result, indent=2)
    if not trace.requests:
        yield text + "\n"
        return
    # the top level's "requests" comes before "summary"; a string holds no raw newline
    before, after = text.split('\n  "requests": [],\n', 1)
    yield before + '\n  "requests": [\n'
    reqs = trace.requests
    for a in range(0, len(reqs), JSON_CHUNK):
        piece = _requests_text(reqs[a:a + JSON_CHUNK])
        yield piece if a == 0 else ",\n" + piece
    yield "\n  ],\n" + after + "\n"


def _requests_text(records: list[RequestRecord]) -> str:
    """Requests of :func:`iter_json`, indented as ``json.dumps(..., indent=2)`` puts them,
    joined by ``",\\n"``."""
    if all(type(r) is RequestRecord for r in records):
        # A column at a time: each field's values encoded together (mostly in C), then every
        # request laid out by one %-format of the whole chunk.
        values = [list(map(get, records)) for get in _GETTERS]
        types = [set(map(type, col)) for col in values]
        if _SCALARS.issuperset(chain.from_iterable(types)):  # else nested: json.dumps's indent
            columns = [_column(col, kinds) for col, kinds in zip(values, types, strict=True)]
            return (",\n".join((_ROW,) * len(records))
                    % tuple(chain.from_iterable(zip(*columns, strict=True))))
    return ",\n".join(
        "\n".join("    " + line for line in json.dumps(row, indent=2).split("\n"))
        for row in map(result_row, records)
    )


_GETTERS = [attrgetter(name) for name in RECORD_FIELDS]

#: One request as ``json.dumps(..., indent=2)`` lays it out in the list, every value a %s.
_ROW = ("    {\n" + ",\n".join(f"      {encode_basestring_ascii(name)}: %s"
                                for name in RECORD_FIELDS)
        + "\n    }")

#: Below this magnitude ``repr(round(x, 3))`` is ``"%.3f" % x`` without its trailing zeros
#: (both round the exact binary value to 3 decimals the same way, and a decimal of at most
#: 15 significant digits is the shortest text of the float nearest to it).
_PLAIN_LIMIT = 1e11

_MARK = "\x00"  # never raw in JSON text: the encoder writes it as \u0000


def _value(v: Any) -> str:
    """One value as the result format writes it: JSON, a float rounded to the microsecond."""
    return _flat(round(v, 3) if type(v) is float else v)


def _column(col: list[Any], types: set[type]) -> list[str]:
    """:func:`_value` of each of ``col`` (whose values' types are ``types``), the common cases
    without a Python call per value."""
    if len(types) == 1:
        kind = next(iter(types))
        if kind is float:
            return _floats(col)
        encode = _ENCODERS.get(kind)
        if encode is not None:
            distinct = set(col)
            if len(distinct) * 4 <= len(col):  # few values: each encoded once
                return list(map({v: encode(v) for v in distinct}.__getitem__, col))
            return list(map(encode, col))
    elif types == {float, type(None)}:  # e.g. the finish of requests some of which failed
        encoded = iter(_floats([v for v in col if v is not None]))
        return ["null" if v is None else next(encoded) for v in col]
    return list(map(_value, col))


_ENCODERS: dict[type, Callable[[Any], str]] = {
    int: int.__repr__, str: encode_basestring_ascii, type(None): lambda _: "null",
}


def _floats(col: list[float]) -> list[str]:
    """:func:`_value` of each float of ``col``."""
    if not col:
        return []
    total = sum(col)  # not finite if any value is not
    if not (math.isfinite(total) and min(col) > -_PLAIN_LIMIT and max(col) < _PLAIN_LIMIT):
        return list(map(_value, col))
    distinct = set(col)
    if len(distinct) * 4 <= len(col) and min(map(math.copysign, repeat(1.0), col)) > 0:
        # few values, none negative (0.0 and -0.0 are one key but written apart)
        return list(map({v: _value(v) for v in distinct}.__getitem__, col))
    # "%.3f" of every value in one call, then the trailing zeros dropped as repr drops them:
    # x.000 -> x.0, x.y00 -> x.y, x.yz0 -> x.yz
    m = _MARK
    text = ((f"%.3f{m}" * len(col)) % tuple(col))
    text = (text.replace(f"000{m}", f"0{m}").replace(f"00{m}", m)
            .replace(f".0{m}", ".\x01").replace(f"0{m}", m).replace(".\x01", f".0{m}"))
    return text.split(m)[:-1]


# -- CSV --------------------------------------------------------------------------------------

CSV_FIELDS = [f.name for f in fields(RequestRecord)] + ["latency_ms"]


def to_csv(trace: Trace) -> str:
    """One row per request, with the result format's fields plus ``latency_ms``; a time the
    request never reached is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for rec in trace.requests:
        row = []
        for name in CSV_FIELDS:
            value = getattr(rec, name)
            if value is None:
                row.append("")
            elif isinstance(value, float):
                row.append(f"{value:.3f}")
            else:
                row.append(value)
        writer.writerow(row)
    return out.getvalue()
