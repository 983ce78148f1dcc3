"""Speed work on preparing a run for the page must not change what the page receives: the
faster paths are checked here against the plain ones they replaced."""

from __future__ import annotations

import random
from typing import Any

from wsgiscope.app.decimate import decimate_spans


def plain_decimate(spans: list[Any], tick_ms: float, max_spans: int) -> list[Any]:
    """The span decimation as it was first written: every request merged again at each
    width, from spans sorted by start."""
    spans = sorted(spans, key=lambda s: (round(s[1], 6), s[0]))
    by_req: dict[int, list[Any]] = {}
    for s in spans:
        by_req.setdefault(s[0], []).append(s)
    width = max(tick_ms / 64, 1e-6)
    while True:
        out: list[Any] = []
        for r, items in by_req.items():
            a0 = b0 = 0.0
            took: dict[str, float] = {}
            for _, a, b, st in sorted(items, key=lambda s: s[1]):
                if took and (b0 - a0 >= width or a - b0 > 1e-9):
                    state = max(took, key=took.__getitem__)
                    if out and out[-1][0] == r and out[-1][3] == state and \
                            abs(out[-1][2] - a0) < 1e-9:
                        out[-1] = (r, out[-1][1], b0, state)
                    else:
                        out.append((r, a0, b0, state))
                    took = {}
                if not took:
                    a0 = a
                b0 = max(b0, b) if took else b
                took[st] = took.get(st, 0.0) + (b - a)
            if took:
                state = max(took, key=took.__getitem__)
                if out and out[-1][0] == r and out[-1][3] == state and \
                        abs(out[-1][2] - a0) < 1e-9:
                    out[-1] = (r, out[-1][1], b0, state)
                else:
                    out.append((r, a0, b0, state))
        if len(out) <= max_spans or width > 1e12:
            break
        width *= 2
    out.sort(key=lambda s: (round(s[1], 6), s[0]))
    return out


def test_decimated_spans_are_the_plain_decimations_in_any_request_order() -> None:
    rng = random.Random(5)
    for _ in range(200):
        spans = []
        for r in range(rng.randint(1, 60)):
            t = rng.uniform(0, 100)
            for _ in range(rng.randint(1, 9)):
                d = rng.choice([rng.expovariate(1), rng.uniform(0, 1e-3), 5.0, 1e-7])
                if rng.random() < 0.1:  # gaps, some below the 1e-9 ms a gap needs
                    t += rng.choice([1e-10, 0.5, 2e-9])
                spans.append((r, t, t + d, rng.choice("abcd")))
                t += d
        tick, cap = rng.choice([0.01, 0.1, 1.0, 10.0, 64.0]), rng.randint(1, len(spans))
        want = plain_decimate(spans, tick, cap)
        by_request = sorted(spans, key=lambda s: (s[0], s[1]))
        assert decimate_spans(list(spans), tick, cap) == want
        assert decimate_spans(by_request, tick, cap) == want
