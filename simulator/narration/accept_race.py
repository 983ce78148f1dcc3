"""Who won accept(): a burst of connections split between gunicorn workers. A worker that
is running already (it just finished a request, or its main thread just handed one to its
pool) accepts again before its sleeping siblings wake, so one worker takes most of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from .base import LESSON, Handler, Rule, Story, fmt_dur

#: Connections sent this close together are one burst.
BURST_GAP_MS = 1.0
#: Smallest burst worth telling, and the busiest worker's share that makes it uneven.
BURST_MIN = 4
UNEVEN_SHARE = 0.7


class AcceptRace(Rule):
    """Finds the run's first burst of connections and, if one gunicorn worker accepted most
    of it, says so when the last of the burst was accepted."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        server = story.scenario.get("server", {}) or {}
        self.workers = int(server.get("workers", 1)) if story.gunicorn else 1
        burst: list[int] = []
        last = None
        for rec in sorted(story.records.values(), key=lambda r: r.sent_ms):
            if last is not None and rec.sent_ms - last > BURST_GAP_MS:
                if len(burst) >= BURST_MIN:
                    break
                burst = []
            burst.append(rec.id)
            last = rec.sent_ms
        self.burst = set(burst) if len(burst) >= BURST_MIN else set()
        self.took: Counter[str] = Counter()
        self.last_t = 0.0
        self.first_t: float | None = None

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        if self.workers < 2 or not self.burst:
            return []
        return [("req", "accept", self.accepted)]

    def accepted(self, t: float, who: Any, what: Any, ref: Any) -> None:
        if int(who) in self.burst:
            self.took[str(ref).split("/", 1)[0]] += 1
            self.last_t = t
            if self.first_t is None:
                self.first_t = t

    def finish(self) -> None:
        n = sum(self.took.values())
        if n < BURST_MIN:
            return
        (top, most), *rest = self.took.most_common()
        if most < UNEVEN_SHARE * n:
            return
        others = ", ".join(f"{w} {c}" for w, c in rest) or "the others none"
        gthread = (self.story.scenario.get("server", {}) or {}).get("worker_class") == "gthread"
        who = f"worker {top}'s main thread" if gthread else f"worker {top}"
        span = fmt_dur(self.last_t - (self.first_t or self.last_t))
        self.story.say(LESSON, self.last_t, (
            f"{who} was already running and took {most} of the {n} connections of the burst "
            f"({others}) within {span}: every sleeping worker is woken for each connection, "
            "but waking takes time, and a worker that is running calls accept() again first"))
