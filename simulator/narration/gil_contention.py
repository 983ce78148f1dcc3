"""GIL contention: a thread that waited many switch intervals for the GIL while CPU-bound
threads of its process handed it to each other.

Beside one CPU-bound thread a waiter gets the GIL about one interval after it asks (its own
timed wait forces the hand-over). Beside two or more, its timed waits always see a switch,
so it never forces one: it gets the GIL only when the OS happens to wake it at a hand-over.
This rule tells such a wait, counted in switch intervals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import DETAIL, LESSON, Handler, Rule, Story, fmt_dur, lane_name, user

#: A wait this many switch intervals long (rounded) or more is told.
MIN_INTERVALS = 3

_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _count(n: int) -> str:
    return _WORDS[n] if n < len(_WORDS) else str(n)


def _names(keys: list[str]) -> str:
    if len(keys) == 1:
        return keys[0]
    if len(keys) <= 3:
        return f"{', '.join(keys[:-1])} and {keys[-1]}"
    return f"{keys[0]}, {keys[1]} and {len(keys) - 2} more"


class GilContention(Rule):
    """Tells a long GIL wait while two or more threads of the same process were forced to
    hand the GIL over (they are CPU-bound): the first one as a lesson, then those of the
    requests told in full."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        # process -> waiting thread -> [since, request, threads forced out meanwhile]
        self.waiting: dict[str, dict[str, list[Any]]] = {}
        self.min_ms = (MIN_INTERVALS - 0.5) * story.switch_ms

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        if not self.story.gil or self.story.gevent:
            return []  # no GIL, or gevent's hub, which never takes it away
        return [("thread", None, self.thread)]

    def thread(self, t: float, who: Any, what: Any, ref: Any) -> None:
        prev = self.world.prev
        was_waiting = prev is not None and prev[0] == "gil"
        if was_waiting == (what == "gil"):
            return  # neither starts nor ends a wait: most thread events
        key = str(who)
        proc = key.split("/", 1)[0]
        waiting = self.waiting.setdefault(proc, {})
        if what == "gil":
            if prev is not None and prev[0] == "cpu":
                # Taken away mid-burst: a CPU-bound thread handing the GIL over.
                for other, meanwhile in waiting.items():
                    if other != key:
                        meanwhile[2].add(key)
            waiting[key] = [t, int(ref), set()]
            return
        wait = waiting.pop(key, None)
        if wait is not None and t - wait[0] >= self.min_ms and len(wait[2]) >= 2:
            self.tell(t, key, wait)

    def tell(self, t: float, key: str, wait: list[Any]) -> None:
        story = self.story
        since, r, forced = wait
        waited = t - since
        n = round(waited / story.switch_ms)
        hogs = sorted(forced)
        lane = lane_name(story.scenario, key)
        serving = f" ({user(r)})" if r >= 0 else ""
        text = (
            f"{lane}{serving} waited {n} switch intervals ({fmt_dur(waited)}) for the GIL: "
            f"the {_count(len(hogs))} CPU-bound threads {_names(hogs)} kept handing it to "
            "each other"
        )
        if story.once("gil-contention"):
            story.say(
                LESSON, t,
                f"{text}. Its own timed waits always saw a switch, so it never asked for the "
                "GIL to be dropped; at each hand-over the OS woke one waiter, not necessarily "
                "the one that had waited longest",
            )
        elif r >= 0 and story.detailed_req(r):
            story.say(DETAIL, t, text)
        else:
            story.skipped += 1
