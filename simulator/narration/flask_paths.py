"""Flask's other paths and the lost update: a hook that answers early, an exception and
who handles it, a URL that matches no rule; a thread switched out between the load and the
store of ``counter += 1``, and the updates its stale store wipes out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import DETAIL, LESSON, Handler, Rule, user

# what kind of path an outcome line tells, by the words it starts with
_KINDS = (
    ("a before_request function returned", "short_circuit"),
    ("abort(", "abort"),
    ("the view raised an exception no handler", "unhandled"),
    ("the view raised an exception with its own", "handled"),
    ("no URL rule matches", "missing"),
    ("the rule allows another method", "other_method"),
    ("teardown gets the exception", "teardown"),
)


class FlaskPaths(Rule):
    """Tells each kind of Flask path the first time it happens (then for the first requests),
    and the races of increment loops; closes with the lost updates."""

    def listens(self) -> Iterable[tuple[str, str | None, Handler]]:
        return [("req", "outcome", self.outcome), ("req", "race", self.race)]

    def outcome(self, t: float, who: Any, what: Any, ref: Any) -> None:
        r = int(who)
        text = str(ref)
        kind = next((k for start, k in _KINDS if text.startswith(start)), "other")
        if kind == "teardown":
            return  # a measured run's note; the simulated outcome line says it already
        rec = self.story.records.get(r)
        status = f" -> {rec.http_status}" if rec is not None and rec.http_status else ""
        line = f"{user(r)} (GET {self.story.request_path(r)}{status}): {text}"
        self.story.tell(f"outcome:{kind}", t, r, line)

    def race(self, t: float, who: Any, what: Any, ref: Any) -> None:
        r = int(who)
        text = str(ref)
        name = text.partition(":")[0]
        if "switched out after loading" in text:
            why = (" — its next instruction would have stored it; another thread now runs "
                   "with the GIL")
            self.story.tell("race:load", t, r, f"{user(r)}'s thread: {text}{why}",
                            f"{user(r)}'s thread: {text}", level=LESSON)
        elif "lost" in text:
            why = (f": it stored the value it loaded before the switch, plus one, over "
                   f"theirs — `{name} += 1` is load, add, store, not one step")
            self.story.tell("race:lost", t, r, f"{user(r)}'s thread: {text}{why}",
                            f"{user(r)}'s thread: {text}", level=LESSON)
        else:
            self.story.tell("race:other", t, r, f"{user(r)}'s thread: {text}", level=DETAIL)

    def closing(self) -> str | None:
        rows = self.story.trace.summary.get("increments")
        if not rows:
            return None
        parts = []
        for name, row in rows.items():
            made, lost = row["increments"], row["lost"]
            if lost:
                parts.append(f"`{name}` ends at {row['counted']:,} after {made:,} increments: "
                             f"{lost:,} lost")
            else:
                parts.append(f"`{name}` counted all {made:,} increments")
        machine = self.story.scenario.get("machine", {}) or {}
        python = machine.get("python", "3.11")
        return "; ".join(parts) + f" (CPython {python}'s switch points)"
