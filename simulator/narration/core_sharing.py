"""The cores' run queues: threads that share a core while another has one to itself, and
the kernel's load balancing that moves them (``simulator.cores``; ``core`` events)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..cores import BUSY_FACTOR
from .base import DETAIL, LESSON, Handler, Rule, Story, lane_name


class CoreSharing(Rule):
    """Tells the first time threads serving requests share a core while another thread
    has a core to itself (the cores' queues are uneven), and the first migration."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.cores = story.trace.cores
        #: the last threads seen sharing a core (key, core index, the others) while no
        #: thread had a core to itself yet: the split may form when another starts running
        self.pending: tuple[str, int, list[str]] | None = None

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("core", None, self.core), ("thread", "cpu", self.running)]

    def running(self, t: float, who: Any, what: Any, ref: Any) -> None:
        """A thread starts running: if threads were left sharing a core, a split may have
        formed (a thread that starts alone on a core records no ``core`` event)."""
        if self.pending is None:
            return
        key, index, others = self.pending
        threads = self.world.threads
        if "core-share" in self.story.first or any(
                threads.get(k, ("", -1))[0] != "cpu" for k in (key, *others)):
            self.pending = None  # told already, or they no longer share: nothing to check
            return
        self.tell_share(t, key, index, others)

    def lanes(self, keys: Iterable[str]) -> str:
        names = [lane_name(self.story.scenario, k) for k in keys]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def core(self, t: float, who: Any, what: Any, ref: Any) -> None:
        story = self.story
        key, index, detail = str(who), int(what), str(ref)
        r = self.world.threads.get(key, ("", -1))[1]
        if detail.startswith("moved from core "):
            if r < 0:
                return  # housekeeping (an accept() attempt): over in microseconds
            src = int(detail.rsplit(" ", 1)[1])
            if story.once("core-move"):
                interval = max(2, self.cores) * BUSY_FACTOR
                story.say(LESSON, t, (
                    f"the kernel's load balancing moves {lane_name(story.scenario, key)} "
                    f"from core {src + 1} to core {index + 1}: a core that runs out of work "
                    "pulls a thread at once; a busy one checks the others every "
                    f"{interval:g}-{2 * interval:g} ms "
                    "and moves a thread only once the longer queue's recent load shows it "
                    "overloaded, and threads that were asleep count as light at first, so "
                    "an uneven split can last 100 ms and more"))
            elif story.detailed_req(r):
                story.say(DETAIL, t, f"{lane_name(story.scenario, key)} moves from core "
                                     f"{src + 1} to core {index + 1}")
            return
        self.tell_share(t, key, index, [k for k in detail.split(",") if k])

    def tell_share(self, t: float, key: str, index: int, others: list[str]) -> None:
        """``key`` shares core ``index`` with ``others``: told if some other thread has a
        core to itself (the queues are uneven)."""
        story = self.story
        sharing = {key, *others}
        threads = self.world.threads
        alone = sorted(k for k, (state, r) in threads.items()
                       if state == "cpu" and r >= 0 and k not in sharing)
        if not alone or len(alone) > self.cores - 1 or threads.get(key, ("", -1))[1] < 0:
            # no core to itself beside them (yet: told by Cores if it stays even), or the
            # thread is in housekeeping (an accept()) and may not be serving anyone yet
            self.pending = (key, index, others)
            return
        self.pending = None
        k = len(sharing)
        has = "has a core to itself" if len(alone) == 1 else "have a core each"
        text = (f"{lane_name(story.scenario, key)} shares core {index + 1} with "
                f"{self.lanes(others)} while {self.lanes(alone)} {has}: each of the {k} "
                f"runs at 1/{k} speed until the kernel balances the run queues (it did not "
                "look for the shortest one when it woke the thread)")
        if story.once("core-share"):
            story.say(LESSON, t, text)
        else:
            story.skipped += 1
