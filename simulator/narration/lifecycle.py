"""Worker lifecycle: gunicorn workers booting, ready, killed by the arbiter, exiting after
--max-requests; werkzeug's processes=N forking a child per connection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import ALWAYS, FINE, LESSON, Handler, Rule


class Lifecycle(Rule):
    """Tells worker events; keeps ``world.workers_up`` and ``world.workers_seen``."""

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("worker", None, self.worker)]

    def worker(self, t: float, who: Any, what: Any, ref: Any) -> None:
        self.world.workers_seen = True
        key, what, detail = str(who), str(what), str(ref)
        story = self.story
        extra = f" ({detail})" if detail else ""
        if not story.gunicorn:
            # werkzeug's processes=N: a child per connection, gone when its request is done
            if what == "boot":
                level = LESSON if story.once("fork") else FINE
                story.say(level, t, f"the server forks child process {key} to serve a connection")
            elif what in ("exit", "killed"):
                story.say(FINE, t, f"child process {key} exits{extra}")
            return
        up = self.world.workers_up
        if what == "ready":
            up.add(key)
            if t > 0:
                story.say(LESSON, t, f"worker {key} is ready and starts accepting{extra}")
            return
        if what == "boot":
            if t > 0:
                story.say(LESSON, t, f"worker {key} boots{extra}")
            return
        up.discard(key)
        if what == "killed":
            story.say(
                ALWAYS,
                t,
                f"worker {key} is killed{extra or ': no heartbeat within the timeout'}; "
                "the arbiter will start a replacement",
            )
        elif what == "exit":
            story.say(LESSON, t, f"worker {key} exits{extra}")
        else:
            story.say(LESSON, t, f"worker {key}: {what}{extra}")
