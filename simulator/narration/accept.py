"""Accepting: a complete connection waits in the kernel's accept queue until a server
thread accepts it. Says who accepted each of the first requests, and for a connection that
had to wait, why: every thread busy, no worker up yet, the accepting thread waiting for
the GIL or inside ``Thread.start()`` (werkzeug ``threaded=True``), the server busy
forking."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import AT_ONCE_MS, DETAIL, Handler, Rule, Story, fmt_dur, lane_name, user

# A connection in the accept queue whose line waits until we know how long it waited:
# (when it got there, its SYN attempt, the queue's depth, all threads busy, no worker up)
_Queued = tuple[float, int, int, bool, bool]


class Accept(Rule):
    """Keeps ``world.in_backlog`` and ``world.acceptors``; tells each backlog wait once its
    end is known (accepted, finished without being accepted, or the trace's end)."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.in_backlog = self.world.in_backlog
        self.acceptors = self.world.acceptors
        self.queued: dict[int, _Queued] = {}
        server = story.scenario.get("server") or {}
        # werkzeug threaded=True: the accepting thread blocks in Thread.start() (``io``)
        self.starts_threads = server.get("kind") == "werkzeug" and not story.forking and \
            bool(server.get("threaded", True))
        self.io_left: dict[str, float] = {}  # thread -> when it last came back from ``io``

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        started = [("thread", None, self.thread)] if self.starts_threads else []
        return started + [
            ("req", "backlog", self.entered),
            ("req", "accept", self.accepted),
            ("req", "done", self.done),
        ]

    def entered(self, t: float, who: Any, what: Any, ref: Any) -> None:
        story = self.story
        world = self.world
        r = int(who)
        self.in_backlog[r] = t
        if story.detailed_req(r) or "backlog" not in story.first:
            full = world.busy >= story.capacity
            booting = story.gunicorn and world.workers_seen and not world.workers_up
            self.queued[r] = (t, world.attempt.get(r, 1), len(self.in_backlog), full, booting)
        else:
            story.skipped += 1

    def thread(self, t: float, who: Any, what: Any, ref: Any) -> None:
        prev = self.world.prev
        if prev is not None and prev[0] == "io" and what != "io":
            self.io_left[str(who)] = t

    def accepted(self, t: float, who: Any, what: Any, ref: Any) -> None:
        r = int(who)
        acceptor = self.acceptors[r] = str(ref)
        since = self.in_backlog.pop(r, t)
        info = self.queued.pop(r, None)
        if info is not None:
            # did the acceptor wait for the GIL, or were all busy, meanwhile?
            waited_gil = self.world.gil_left.get(acceptor, -1.0) >= since
            in_start = self.io_left.get(acceptor, -1.0) >= since
            if self.world.last_full >= since and not info[3]:
                info = (info[0], info[1], info[2], True, info[4])
            self.tell_wait(info, r, t, acceptor, waited_gil, in_start)
        story = self.story
        if not story.detailed_req(r):
            story.skipped += 1
            return
        waited = t - since
        if waited >= AT_ONCE_MS:
            lane = lane_name(story.scenario, acceptor)
            story.say(DETAIL, t, f"{lane} accepts {user(r)} after {fmt_dur(waited)} in the backlog")

    def done(self, t: float, who: Any, what: Any, ref: Any) -> None:
        r = int(who)
        self.in_backlog.pop(r, None)
        self.acceptors.pop(r, None)
        info = self.queued.pop(r, None)
        if info is not None:
            self.tell_wait(info, r, None, None, False)

    def finish(self) -> None:
        for r, info in self.queued.items():  # still queued when the trace ends
            self.tell_wait(info, r, None, None, False)

    def tell_wait(
        self,
        info: _Queued,
        r: int,
        accepted: float | None,
        acceptor: str | None,
        acceptor_waited_gil: bool,
        acceptor_in_start: bool = False,
    ) -> None:
        """The line for a connection that reached the accept queue, told at the time it got
        there once we know when (and whether) it was accepted."""
        story = self.story
        t, n, depth, full, booting = info
        wait = (accepted - t) if accepted is not None else None
        if r in self.world.ack_dropped:
            sent = "retransmits and finally gets its connection into the queue"
        elif n <= 1:
            sent = f"sends GET {story.request_path(r)}"
        else:
            sent = f"retransmits its SYN (#{n})"
        if wait is not None and wait < AT_ONCE_MS:
            if story.detailed_req(r):
                rec = story.records.get(r)
                lane = rec.thread if rec is not None else None
                who = lane_name(story.scenario, acceptor) if acceptor else None
                by = f" and {who} accepts it at once" if who else " and is accepted at once"
                if lane and acceptor and lane != acceptor:
                    by += f", handing it to {'greenlet' if story.gevent else 'thread'} {lane}"
                story.say(DETAIL, t, f"{user(r)} {sent}{by}")
            else:
                story.skipped += 1
            return
        why = self.why(wait, full, booting, acceptor, acceptor_waited_gil, acceptor_in_start)
        text = (
            f"{user(r)} {sent}; the connection is complete and waits in the kernel backlog "
            f"(depth {depth}) because {why}"
        )
        if acceptor_in_start and not full and not booting:
            # the whole reason once, then briefly: a burst meets it at every connection
            story.tell("thread-start", t, r, text, f"{user(r)} {sent}; it waits in the kernel "
                       f"backlog (depth {depth}) while thread {acceptor} is in Thread.start()")
            return
        story.tell("backlog", t, r, text)

    def why(self, wait: float | None, full: bool, booting: bool, acceptor: str | None,
            acceptor_waited_gil: bool, acceptor_in_start: bool = False) -> str:
        """Why a connection waited in the accept queue."""
        story = self.story
        if booting:
            return "no worker is up yet (one is booting)"
        if full:
            return story.busy_reason
        if acceptor_waited_gil and story.gevent:
            return (
                "a greenlet is running Python code without yielding, so the worker's event loop "
                "cannot run its accept"
            )
        if acceptor_in_start and not story.gil:
            return (
                f"the thread that accepts connections ({acceptor}) is still in Thread.start() "
                "for the connection ahead of it: start() returns only once the new thread has "
                "begun running"
            )
        if acceptor_in_start:
            return (
                f"the thread that accepts connections ({acceptor}) is still in Thread.start() "
                "for the connection ahead of it: start() returns only once the new thread has "
                "had the GIL to begin running, and then the accepting thread needs the GIL back"
            )
        if acceptor_waited_gil:
            return (
                f"the thread that accepts connections ({acceptor}) must first get the GIL, "
                "which another thread holds"
            )
        if wait is None:
            return "the server never gets to it"
        if story.forking:
            return "the server is busy forking a child for the connection ahead of it"
        return "the server is still taking the connections ahead of it"
