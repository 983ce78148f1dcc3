"""A gunicorn worker killed or recycled, and its replacement: what the killed worker's
client gets, and how long no worker is there (reap, fork, import the app)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import LESSON, Handler, Rule, Story, fmt_dur


class Replacement(Rule):
    """Tells, once, what a killed gevent worker's client sees, and how long the first
    replacement took and why."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.gone: dict[str, float] = {}  # worker -> when it exited or was killed
        self.forked: dict[str, float] = {}

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("worker", None, self.worker)] if self.story.gunicorn else []

    def worker(self, t: float, who: Any, what: Any, ref: Any) -> None:
        story = self.story
        key, what = str(who), str(what)
        if what in ("killed", "exit"):
            if what == "killed" and story.gevent and story.once("gevent-kill"):
                story.say(LESSON, t, (
                    f"gevent's worker {key} swallows the SIGABRT's SystemExit: the client of "
                    "the greenlet that was running gets no response at all, only a closed "
                    "connection. Its heartbeat is written by the worker's loop once a "
                    "second, so the timeout counts from the last one before the request "
                    "took over, and the arbiter looks once a second: the kill comes up to "
                    "a second before or after the timeout measured from the request's "
                    "start. The worker stops accepting, finishes its other greenlets and "
                    "exits"))
            self.gone[key] = t  # a gevent worker exits after it was killed
        elif what == "boot" and key in self.gone:
            self.forked[key] = t
        elif what == "ready" and key in self.forked:
            gone = self.gone.pop(key)
            forked = self.forked.pop(key)
            if story.once("replacement"):
                story.say(LESSON, t, (
                    f"worker {key}'s replacement starts accepting {fmt_dur(t - gone)} after "
                    f"the old one left: SIGCHLD woke the arbiter, which reaped it and forked "
                    f"({fmt_dur(forked - gone)}), then the new worker imported the app "
                    f"({fmt_dur(t - forked)}); meanwhile its connections wait in the backlog"))
