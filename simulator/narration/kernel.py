"""The kernel's listen socket: SYNs dropped at a full accept queue and when the client
retries, final ACKs dropped at a full queue, and how deep the backlog got."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import Handler, Rule, Story, fmt_t, user


class Kernel(Rule):
    """Counts each request's SYNs (``world.attempt``), notes dropped ACKs
    (``world.ack_dropped``) and tells the drops."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.attempt = self.world.attempt
        self.ack_dropped = self.world.ack_dropped
        self.depth = 0  # the accept queue's depth
        # request -> when each SYN was sent, gathered at the first drop (most runs have none)
        self.syn_times: dict[int, list[float]] | None = None

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [
            ("backlog", None, self.backlog),
            ("req", "syn", self.syn),
            ("req", "drop", self.dropped),
            ("req", "overflow", self.overflowed),
        ]

    def backlog(self, t: float, who: Any, what: Any, ref: Any) -> None:
        self.depth = int(what)

    def syn(self, t: float, who: Any, what: Any, ref: Any) -> None:
        r = int(who)
        self.attempt[r] = self.attempt.get(r, 0) + 1

    def dropped(self, t: float, who: Any, what: Any, ref: Any) -> None:
        story = self.story
        r = int(who)
        n = self.attempt.get(r, 1)
        if self.syn_times is None:
            self.syn_times = {}
            for e in story.trace.events:
                if e.kind == "req" and e.what == "syn":
                    self.syn_times.setdefault(int(e.who), []).append(e.t)
        later = [s for s in self.syn_times.get(r, []) if s > t]
        rec = story.records.get(r)
        if later:
            retry = f"the client retries at {fmt_t(later[0])}"
        elif rec is not None and rec.status == "timeout":
            retry = "the client gives up before its next retry"
        else:
            retry = "the client will not retry again"
        verb = "sends GET " + story.request_path(r) if n <= 1 else f"retries (SYN #{n})"
        text = (
            f"{user(r)} {verb}, but the kernel's accept queue is full "
            f"({self.depth} of {story.trace.backlog_limit}): the SYN is silently dropped and "
            f"{retry}"
        )
        story.tell("drop", t, r, text + " (a dropped SYN costs seconds, not an error)", text)

    def overflowed(self, t: float, who: Any, what: Any, ref: Any) -> None:
        r = int(who)
        detail = str(ref)
        when = detail.rsplit("next try at ", 1)[-1] if "next try at " in detail else ""
        limit = self.story.trace.backlog_limit
        full = f"({limit} of {limit})"
        if r in self.ack_dropped:
            text = f"{user(r)} retransmits, but the accept queue is still full {full}"
        else:
            text = (
                f"{user(r)}'s handshake completed, but the accept queue was full {full} when "
                f"its final ACK arrived: the kernel dropped the ACK"
            )
        text += f"; it tries again at T={when}" if when else ""
        lesson = (
            text + ". The client believes it is connected and has sent its request; it gets "
            "in only when it retransmits (after about 200 ms) or the server re-sends its SYN-ACK"
        )
        self.story.tell("overflow", t, r, lesson, text)
        self.ack_dropped.add(r)

    def closing(self) -> str | None:
        peak = (self.story.trace.summary or {}).get("max_backlog")
        return f"the backlog peaked at {peak}" if peak else None
