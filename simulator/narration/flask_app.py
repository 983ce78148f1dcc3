"""Flask's request lifecycle and its globals: the stages of the first request, and what a
view reads back from a module global (shared by every thread) or from ``g`` (one request's)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .base import DETAIL, FINE, LESSON, Handler, Rule, Story, lane_name, user

_STAGE_WORDS = {
    "recv": "reads the request from the socket (a blocking call: the GIL is let go)",
    "parse": "parses the request line and headers into the WSGI environ",
    "context": "Flask pushes the app and request contexts, so `request` and `g` work",
    "match": "Flask matches the URL to a view function",
    "before_request": "the before_request functions run",
    "view": "the view function runs",
    "error": "Flask handles the exception: handle_user_exception (an abort, a routing error, "
             "an exception with its own errorhandler) or handle_exception (anything else: 500)",
    "after_request": "the response is built and the after_request functions run",
    "teardown": "the context pops and teardown functions run, before the body is sent",
    "write": "the server writes status, headers and body, then closes the connection",
}


class FlaskApp(Rule):
    """Walks through the first request's stages; tells reads of globals and ``g``."""

    def __init__(self, story: Story) -> None:
        super().__init__(story)
        self.words = _STAGE_WORDS
        if not story.gil:
            self.words = {
                k: v.replace(" (a blocking call: the GIL is let go)", "")
                for k, v in _STAGE_WORDS.items()
            }

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("req", "stage", self.stage), ("req", "read", self.read)]

    def stage(self, t: float, who: Any, what: Any, ref: Any) -> None:
        if who != 0 and type(who) is int:
            return  # another request than the first: most stage events of a large run
        r = int(who)
        if r != 0 or str(ref) not in self.words:
            return
        rec = self.story.records.get(r)
        where = self.world.on_thread.get(r) or (rec.thread if rec is not None else None)
        on = f", on {lane_name(self.story.scenario, where)}" if where else ""
        words = self.words[str(ref)]
        if str(ref) == "parse" and self._warms_up():
            first = self.story.scenario["costs"]["first_request_ms"]
            words += (f"; the first request this process serves also pays its one-off set-up "
                      f"({first:g} ms more: modules imported on first use, werkzeug's URL map "
                      f"compiled at its first match), which is why a fresh worker's first "
                      f"request is slow")
        self.story.say(FINE, t, f"{user(r)}{on}: {words}")

    def _warms_up(self) -> bool:
        """Whether the first request pays ``costs.first_request_ms`` (a forked werkzeug
        child's extra is ``fork_child_ms`` instead)."""
        sc = self.story.scenario
        server = sc.get("server") or {}
        if server.get("kind") == "werkzeug" and int(server.get("processes", 1)) > 1:
            return False
        return float((sc.get("costs") or {}).get("first_request_ms", 0) or 0) > 0

    def read(self, t: float, who: Any, what: Any, ref: Any) -> None:
        """A view read a value it stored earlier (``global.name = ...`` or ``g.name = ...``)."""
        r = int(who)
        where, _, value = str(ref).partition(" = ")
        scope, _, name = where.partition(".")
        own = value.startswith("its own")
        if value.startswith("nothing"):
            value = "nothing"
        other = re.match(r"request (\d+)'s value", value)
        if other:
            value = f"{user(other.group(1))}'s value"
        if scope == "global":
            thing = f"the module global `{name}`"
            why = (
                "every thread of a process shares its module globals, and another request "
                "overwrote it in between"
                if not own
                else "no other request wrote it in between, this time"
            )
        elif scope == "local":
            thing = f"the threading.local `{name}`"
            why = (
                "each thread has its own, and this thread served an earlier request that set "
                "it: a pool thread keeps it from one request to the next, unlike g"
                if not own and value != "nothing"
                else "it belongs to this thread (or greenlet), and nothing else set it here"
                if own
                else "this thread (or greenlet) never set it: each one starts with its own"
            )
        else:
            thing = f"`g.{name}`"
            why = "flask.g belongs to one request, so no other request can touch it"
        text = f"{user(r)} reads {thing} and gets {value}: {why}"
        key = f"read:{scope}:{own}"
        self.story.tell(key, t, r, text, level=LESSON if not own or scope != "global" else DETAIL)
