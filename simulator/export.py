"""Exports of a Trace: a plain-text timeline, CSV, Chrome Trace Event JSON, and the result
JSON. Each reads only the Trace, so simulated and measured runs export the same way.

* :func:`to_table` (:mod:`.export_table`) -- a timeline a teacher can paste on a slide
  (``T= | client | kernel backlog | server``), a per-request table, the narration and the
  summary.
* :func:`to_csv` -- one row per request.
* :func:`to_chrome_trace` (:mod:`.export_chrome`) -- JSON for Perfetto (ui.perfetto.dev) or
  ``chrome://tracing``: a track per thread, the GIL holder per process and the backlog as a
  counter.
* :func:`to_json` -- the result format of docs/ARCHITECTURE.md (:meth:`Trace.to_result`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import fields
from typing import Any

from .export_chrome import to_chrome_trace as to_chrome_trace
from .export_table import to_table as to_table
from .trace import RequestRecord, Trace


def to_json(trace: Trace) -> dict[str, Any]:
    """The result format (docs/ARCHITECTURE.md): ``{"requests": [...], "summary": {...}}``."""
    return trace.to_result()


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
