"""The GIL: who waits for it, who holds it meanwhile, and when the switch interval forces a
hand-over. Under gevent the same waits are told as greenlets waiting for their turn."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import DETAIL, LESSON, Handler, Rule, Story, fmt_dur, user


class Gil(Rule):
    """Tells each noticeable GIL wait (once per request) and the first forced switch in
    each process; keeps ``world.gil_left``; counts forced switches for the closing line."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.threads = self.world.threads
        self.gil_left = self.world.gil_left
        self.holders: dict[str, str] = {}  # process -> the thread holding its GIL
        self.waits: dict[str, list[Any]] = {}  # thread -> [since, request, holder]
        # threads whose wait began before the holder was known: process -> thread keys
        self.holder_unknown: dict[str, set[str]] = {}
        self.told: set[int] = set()  # requests whose GIL wait was told
        self.forced: dict[str, int] = {}  # process -> switches forced by the interval
        self.noticeable_ms = min(1.0, story.switch_ms / 2)

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("thread", None, self.thread), ("gil", None, self.gil)]

    def thread(self, t: float, who: Any, what: Any, ref: Any) -> None:
        prev = self.world.prev
        was_waiting = prev is not None and prev[0] == "gil"
        if not was_waiting and what != "gil":
            return  # neither waiting for the GIL nor done waiting: most thread events
        key = str(who)
        if was_waiting and what != "gil":
            self.gil_left[key] = t
        pending = self.waits.pop(key, None)
        # a wait is told once per request, and only if it was noticeable
        if pending is not None and pending[1] not in self.told:
            self.waited(t, pending)
        r = int(ref)
        if what == "gil" and r >= 0:
            proc = key.split("/", 1)[0]
            holder = self.holders.get(proc, "")
            if holder == key or not holder:
                # the hand-over is logged next: the holder is the thread that gets it
                self.holder_unknown.setdefault(proc, set()).add(key)
                holder = ""
            self.waits[key] = [t, r, holder]
            if prev is not None and prev[0] == "cpu" and prev[1] == r:
                self.forced[proc] = self.forced.get(proc, 0) + 1
                if self.story.once(f"forced:{proc}"):
                    self.story.say(
                        LESSON,
                        t,
                        f"the GIL of {proc} is handed over after the "
                        f"{fmt_dur(self.story.switch_ms)} switch interval: thread {key} "
                        f"({user(r)}) kept it that long while another thread waited, so "
                        "it must let go and queue for it again; from now on they take "
                        "turns, one at a time",
                    )

    def waited(self, t: float, pending: list[Any]) -> None:
        """A thread's wait for the GIL ended at ``t``: tell it if it was long enough."""
        since, wr, holder = pending
        waited = t - since
        if waited < self.noticeable_ms:
            return
        self.told.add(wr)
        story = self.story
        first = story.once("gil-wait")
        if not (first or story.detailed_req(wr)):
            story.skipped += 1
            return
        held = f"thread {holder}" if holder else "another thread"
        hr = self.threads.get(holder, ("", -1))[1] if holder else -1
        serving = f" (serving {user(hr)})" if hr >= 0 and hr != wr else ""
        if story.gevent:
            held = f"greenlet {holder}" if holder else "another greenlet"
            text = (
                f"{user(wr)} waits {fmt_dur(waited)} for its turn: "
                f"{held}{serving} runs without yielding, and gevent "
                "switches only when a greenlet blocks"
            )
        else:
            text = (
                f"{user(wr)} needs the GIL to run Python code, but {held}"
                f"{serving} holds it; it waits {fmt_dur(waited)}"
            )
        story.say(LESSON if first else DETAIL, since, text)

    def gil(self, t: float, who: Any, what: Any, ref: Any) -> None:
        proc = who if type(who) is str else str(who)
        self.holders[proc] = what if type(what) is str else str(what)
        if not self.holder_unknown:  # most hand-overs: no wait began with its holder unknown
            return
        waiting = self.holder_unknown.pop(proc, None)
        if waiting and what:
            for key in waiting:
                pending = self.waits.get(key)
                if pending is not None and key != what and not pending[2]:
                    pending[2] = str(what)

    def closing(self) -> str | None:
        switches = sum(self.forced.values())
        if switches:
            return f"the GIL was taken away from a running thread {switches} times"
        return None
