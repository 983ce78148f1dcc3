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
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from .export_chrome import iter_chrome_trace as iter_chrome_trace
from .export_chrome import to_chrome_trace as to_chrome_trace
from .export_table import to_table as to_table
from .trace import RequestRecord, Trace, result_row

#: Requests per piece of text :func:`iter_json` yields.
JSON_CHUNK = 2000

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
    rows = [result_row(r) for r in records]
    if all(type(r) is RequestRecord for r in records) and all(
        _SCALARS.issuperset(map(type, row.values())) for row in rows
    ):
        # Inlined for speed: the C encoder writes the rows flat, in one call; then, as a
        # string holds no raw '"' (it is written '\\"'), each '}, {"' is the step from one
        # row to the next and each ', "' the step to a row's next key: each goes on its line.
        flat = _flat(rows)[2:-2]  # the rows without the list's '[{' and '}]'
        return ('    {\n      '
                + flat.replace(', "', ',\n      "').replace('}, {"', '\n    },\n    {\n      "')
                + "\n    }")
    return ",\n".join(
        "\n".join("    " + line for line in json.dumps(row, indent=2).split("\n"))
        for row in rows
    )


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
