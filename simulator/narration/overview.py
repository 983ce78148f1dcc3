"""The run as a whole: the opening line, progress in a large run, and the closing tally."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import ALWAYS, DETAIL, Handler, Rule, Story, describe_server, fmt_dur


class Overview(Rule):
    """Opens with the server, the machine and the workload; reports progress at each
    checkpoint; closes with how many requests were answered and how fast."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.done = 0  # requests finished so far

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("req", "done", self.finished)]

    def finished(self, t: float, who: Any, what: Any, ref: Any) -> None:
        self.done += 1

    def start(self) -> None:
        story = self.story
        sc = story.scenario
        cores = story.trace.cores
        name = sc.get("name") or "This run"
        n = story.n_requests
        what = f"{n} request{'s arrive' if n != 1 else ' arrives'}"
        limit = story.trace.backlog_limit
        machine = sc.get("machine") or {}
        python = "; free-threaded Python (no GIL)" if machine.get("gil", True) is False else ""
        story.say(
            ALWAYS,
            0.0,
            f"{name}: {describe_server(sc)}, on {cores} core{'s' if cores != 1 else ''}"
            f"{python}; {what}; the kernel's accept queue holds {limit} "
            f"connection{'s' if limit != 1 else ''}",
        )

    def checkpoint(self, t: float) -> None:
        world = self.world
        busy = sum(1 for s, q in world.threads.values() if q >= 0 and s != "idle")
        self.story.say(
            DETAIL,
            t,
            f"progress: {self.done} of {self.story.n_requests} requests done, "
            f"{len(world.in_backlog)} waiting in the backlog, "
            f"{busy} thread{'s' if busy != 1 else ''} serving a request",
        )

    def closing(self) -> str | None:
        trace = self.story.trace
        reqs = trace.requests
        ok = sum(1 for r in reqs if r.status == "ok")
        failed = len(reqs) - ok
        text = f"all done: {ok} of {len(reqs)} requests answered"
        if failed:
            text += f", {failed} failed"
        # Over every request that ended, failed ones included, as the page's metrics count
        # them: a 500 that took 2 s is the slowest answer a user got.
        lats = [x for x in (r.latency_ms for r in reqs) if x is not None]
        if ok and lats:
            text += (
                f"; latency mean {fmt_dur(sum(lats) / len(lats))}, slowest {fmt_dur(max(lats))}"
            )
            if failed:
                text += " (failed requests included)"
        return text
