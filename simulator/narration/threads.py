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
        # Speed: called for every thread event (millions in a large run)
        key = who if type(who) is str else str(who)
        r = ref if type(ref) is int else int(ref)
        state = what if type(what) is str else str(what)
        world = self.world
        threads = self.threads
        prev = world.prev = threads.get(key)
        threads[key] = (state, r)
        now_busy = r >= 0 and what != "idle"
        if prev is None:
            if now_busy:
                world.busy += 1
                if world.busy >= self.capacity:
                    world.last_full = t
            if what == "cpu":
                world.on_cpu += 1
        else:
            if (prev[1] >= 0 and prev[0] != "idle") != now_busy:
                world.busy += 1 if now_busy else -1
                if world.busy >= self.capacity:
                    world.last_full = t
            if (prev[0] == "cpu") != (what == "cpu"):
                world.on_cpu += 1 if what == "cpu" else -1
        if r >= 0:
            self.on_thread[r] = key
