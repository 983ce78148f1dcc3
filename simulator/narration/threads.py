"""What each thread is doing. Says nothing itself: it keeps the world's thread facts (each
thread's state, how many serve a request, when all that can serve last did, how many run on
a core) for the rules that explain waits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import Handler, Rule, Story


class Threads(Rule):
    """Keeps ``world.threads``, ``prev``, ``busy``, ``last_full``, ``on_cpu`` and
    ``on_thread``."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.threads = self.world.threads
        self.on_thread = self.world.on_thread
        self.capacity = story.capacity

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("thread", None, self.thread)]

    def thread(self, t: float, who: Any, what: Any, ref: Any) -> None:
        key = str(who)
        r = int(ref)
        world = self.world
        prev = world.prev = self.threads.get(key)
        self.threads[key] = (str(what), r)
        was_busy = prev is not None and prev[1] >= 0 and prev[0] != "idle"
        now_busy = r >= 0 and what != "idle"
        if was_busy != now_busy:
            world.busy += 1 if now_busy else -1
            if world.busy >= self.capacity:
                world.last_full = t
        if (prev is not None and prev[0] == "cpu") != (what == "cpu"):
            world.on_cpu += 1 if what == "cpu" else -1
        if r >= 0:
            self.on_thread[r] = key
