"""Queueing inside a worker: gthread accepts while it has room for connections, not when a
thread is free, so an accepted request can wait in the worker's own queue while another
worker has idle threads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import Handler, Rule, user


class Pool(Rule):
    """Tells a request that waits in its worker's thread-pool queue."""

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("req", "pool", self.pooled)]

    def pooled(self, t: float, who: Any, what: Any, ref: Any) -> None:
        r = int(who)
        acceptor = self.world.acceptors.get(r)
        proc = acceptor.split("/", 1)[0] if acceptor else ""
        idle_elsewhere = sorted(
            {
                k.split("/", 1)[0]
                for k, (s, q) in self.world.threads.items()
                if s == "idle"
                and q < 0
                and not k.startswith(proc + "/")
                and not k.endswith("/main")
            }
        )
        text = (
            f"worker {proc or '?'} has accepted {user(r)}, but all its threads are busy, so "
            "the request waits in the worker's own queue"
        )
        if idle_elsewhere:
            text += f" while {', '.join(idle_elsewhere[:3])} has idle threads"
        self.story.tell("pool", t, r, text)
