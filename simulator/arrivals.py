"""A run's random numbers and its clients' arrivals: when each request is sent, to which
path, and how long its client takes to send it."""

from __future__ import annotations

import random
from bisect import bisect
from functools import partial
from itertools import accumulate, islice, repeat, takewhile
from math import log
from operator import ge, neg, sub, truediv
from typing import Any

from .program import sampler as _sampler
from .request import Request
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


class Arrivals:
    """Every request's send time, path and how long its client takes to send it, in send
    order, as columns: request ``i`` is sent at ``sent(i)`` ms (the first at 0), to
    ``path(i)``, and its client takes ``send(i)`` ms to send it.

    The times are drawn up front (the run's other random numbers come after them, as they
    always have), but nothing is made per request: a run of 200,000 requests makes its
    :class:`~.request.Request` objects as they are sent (:meth:`request`), not before its
    first event. ``made`` holds those made so far, in order.
    """

    __slots__ = ("times", "t0", "paths", "the_path", "sends", "the_send", "made")

    def __init__(self, times: list[float], paths: list[str] | None, the_path: str,
                 sends: list[float] | None, the_send: float) -> None:
        #: the send times as drawn, in order; ``sent(i)`` is ``times[i] - times[0]``
        self.times = times
        self.t0 = times[0] if times else 0.0
        self.paths = paths  # None: every request goes to ``the_path``
        self.the_path = the_path
        self.sends = sends  # None: every client takes ``the_send``
        self.the_send = the_send
        self.made: list[Request] = []

    def __len__(self) -> int:
        return len(self.times)

    def sent(self, i: int) -> float:
        return self.times[i] - self.t0

    def path(self, i: int) -> str:
        paths = self.paths
        return self.the_path if paths is None else paths[i]

    def send(self, i: int) -> float:
        sends = self.sends
        return self.the_send if sends is None else sends[i]

    def path_names(self) -> list[str]:
        """The paths requested, sorted."""
        return sorted(set(self.paths)) if self.paths is not None else (
            [self.the_path] if self.times else [])

    def request(self, i: int) -> Request:
        """Request ``i``, made (with every one before it) the first time it is asked for."""
        made = self.made
        for k in range(len(made), i + 1):
            made.append(Request(k, self.path(k), self.sent(k), self.send(k)))
        return made[i]

    def made_until(self, t: float) -> list[Request]:
        """The requests sent at or before ``t`` made (and every one before them)."""
        k = len(self.made)
        while k < len(self.times) and self.sent(k) <= t:
            k += 1
        if k:
            self.request(k - 1)
        return self.made

    def made_all(self) -> list[Request]:
        """Every request made."""
        if self.times:
            self.request(len(self.times) - 1)
        return self.made


def arrivals(sc: Scenario, rng: random.Random, gap: float) -> Arrivals:
    """Every request's send time, path and how long its client takes to send it, in send
    order from 0; ``gap`` is the client's launch gap (``client.launch_gap_ms``)."""
    if len(sc.workload) == 1:
        quick = _one_plain_item(sc.workload[0], rng, gap)
        if quick is not None:
            return quick
    return _one_by_one(sc.workload, rng, gap)


def _one_by_one(workload: list[dict[str, Any]], rng: random.Random, gap: float) -> Arrivals:
    """:func:`arrivals` of any workload: each request drawn in turn, item by item, then
    all of them sorted by send time."""
    out: list[tuple[float, str, float]] = []
    for item in workload:
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
    return Arrivals([a[0] for a in out], [a[1] for a in out], "", [a[2] for a in out], 0.0)


def _one_plain_item(item: dict[str, Any], rng: random.Random, gap: float) -> Arrivals | None:
    """The arrivals of a workload of one item with one path and a fixed send time (the
    usual case), or None for any other item.

    The same numbers as the general loop of :func:`arrivals`, made by iterators written in
    C rather than a Python loop: each Poisson gap is ``-log(1.0 - random()) / lambd`` (the
    formula of :meth:`Random.expovariate`, one ``random()`` each, in the same order), the
    times are the running sums ``t = t + gap`` from ``start_ms``, and drawing stops at the
    first time past the end (drawn, as the loop draws it) or at :data:`MAX_REQUESTS`
    times (the loop draws no more then). One item's times never decrease, so they are
    already in the order the general loop's sort gives them.
    """
    paths = item["paths"]
    send = item["send_ms"]
    if len(paths) != 1 or isinstance(send, dict):
        return None
    path: str = next(iter(paths))
    if "poisson" in item or "constant" in item:
        spec = item.get("poisson") or item["constant"]
        start = item["start_ms"]
        end = start + spec["duration_s"] * 1000.0
        mean = 1000.0 / spec["rate_per_s"]
        if "poisson" in item:
            lambd = 1.0 / mean
            uniform = iter(rng.random, -1.0)  # random() is in [0, 1): never the sentinel
            gaps: Any = map(truediv, map(neg, map(log, map(sub, repeat(1.0), uniform))),
                            repeat(lambd))
        else:
            gaps = repeat(mean)
        sums = accumulate(gaps, initial=start)
        next(sums)  # ``initial`` itself: the first time is start + the first gap
        times = list(islice(takewhile(partial(ge, end), sums), MAX_REQUESTS))
    else:
        step = item["spacing_ms"] or gap
        at = item["at_ms"]
        times = [at + i * step for i in range(min(item["count"], MAX_REQUESTS))]
    return Arrivals(times, None, path, None, send)
