"""A run's random numbers and its clients' arrivals: when each request is sent, to which
path, and how long its client takes to send it."""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate
from math import log
from typing import Any

from .program import sampler as _sampler
from .scenario import MAX_REQUESTS, Scenario

try:
    from mypy_extensions import mypyc_attr
except ImportError:  # only a compiled build needs it, and has it when it is built
    def mypyc_attr(*attrs: str, **kwattrs: object) -> Any:  # type: ignore[misc]
        return lambda cls: cls


@mypyc_attr(native_class=False)
class Random(random.Random):
    """The run's random numbers: :class:`random.Random` with its two most used draws
    written out here, so that a compiled build runs them as machine code instead of
    interpreting ``random.py``. Each is the standard library's own formula (CPython
    3.11-3.13) and takes the same one ``random()``: the same seed gives the same numbers."""

    def expovariate(self, lambd: float = 1.0) -> float:
        return -log(1.0 - self.random()) / lambd

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()


def arrivals(sc: Scenario, rng: random.Random, gap: float) -> list[tuple[float, str, float]]:
    """Every request's send time, path and how long its client takes to send it, in send
    order from 0; ``gap`` is the client's launch gap (``client.launch_gap_ms``)."""
    out: list[tuple[float, str, float]] = []
    for item in sc.workload:
        paths = list(item["paths"])
        cum = list(accumulate(item["paths"].values()))

        def pick(paths: list[str] = paths, cum: list[float] = cum) -> str:
            if len(paths) == 1:
                return paths[0]
            return paths[bisect(cum, rng.random() * cum[-1])]

        send = item["send_ms"]
        draw_send = _sampler(rng, send) if isinstance(send, dict) else (lambda v=send: v)

        if "poisson" in item or "constant" in item:
            spec = item.get("poisson") or item["constant"]
            t = item["start_ms"]
            end = t + spec["duration_s"] * 1000.0
            mean = 1000.0 / spec["rate_per_s"]
            poisson = "poisson" in item
            lambd = 1.0 / mean
            # one path and a fixed send time (the usual case) draw nothing: no call
            only: str | None = paths[0] if len(paths) == 1 else None
            fixed = not isinstance(send, dict)
            while len(out) < MAX_REQUESTS:
                t += rng.expovariate(lambd) if poisson else mean
                if t > end:
                    break
                out.append((t, pick() if only is None else only,
                            send if fixed else draw_send()))
        else:
            step = item["spacing_ms"] or gap
            for i in range(item["count"]):
                out.append((item["at_ms"] + i * step, pick(), draw_send()))
    out.sort(key=lambda a: a[0])
    del out[MAX_REQUESTS:]
    if out:
        t0 = out[0][0]
        out = [(t - t0, p, send) for t, p, send in out]
    return out
