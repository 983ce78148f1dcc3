"""The narrator's core: it hands each event of a Trace to the rules that listen to it, then
orders and thins what they said. It knows no mechanism: each mechanism's rules live in a
module of their own, listed in :data:`rules.RULES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..trace import Trace
from .base import DEFAULT_MAX_LINES, Handler, Rule, Story, fmt_t
from .rules import RULES

# Progress checkpoints in a run too large to tell request by request.
_CHECKPOINTS = 8


def narrate(trace: Trace, max_lines: int | None = None) -> list[tuple[float, str]]:
    """The run in plain words: ``[(t_ms, line), ...]`` in time order.

    Every line starts with its time (``T=1.000 s — ...``) and says what happened and why.
    At most ``max_lines`` lines are returned (default :data:`DEFAULT_MAX_LINES`): the
    opening line, a killed worker and the closing summary always stay; the first occurrence
    of each lesson (a backlog wait, a dropped SYN, a GIL hand-over, a pool wait) next; then
    the detail of individual requests. When lines are left out, a line before the summary
    says how many.
    """
    cap = DEFAULT_MAX_LINES if max_lines is None else max(2, int(max_lines))
    story = Story(trace, cap)
    rules = [rule(story) for rule in RULES]
    _tell(story, rules)
    return _thin(story, rules, cap)


def _tell(story: Story, rules: Sequence[Rule]) -> None:
    """One pass over the events: every rule hears each event it listens to, in the order
    the rules are listed, and says its lines into ``story``."""
    listeners: dict[str, list[tuple[str | None, Handler]]] = {}
    for rule in rules:
        for kind, only, handler in rule.listens():
            listeners.setdefault(kind, []).append((only, handler))
    # kind -> what -> the handlers for it, filled in as new ones turn up. Speed: a run has
    # millions of events, so each costs two dict lookups here and one call per listener.
    routes: dict[str, dict[Any, tuple[Handler, ...]]] = {}

    end = story.trace.end_ms
    step = end / _CHECKPOINTS if story.n_requests > story.detailed else 0.0
    next_check = step if step > 0 else float("inf")
    for rule in rules:
        rule.start()
    for t, kind, who, what, ref in story.trace.events.rows():  # rows: no Event each
        while t > next_check:
            if next_check >= end:  # no checkpoint at or after the end
                next_check = float("inf")
                break
            for rule in rules:
                rule.checkpoint(next_check)
            next_check += step
        try:
            handlers = routes[kind][what]
        except KeyError:
            handlers = routes.setdefault(kind, {})[what] = tuple(
                h for w, h in listeners.get(kind, ()) if w is None or w == what
            )
        for handler in handlers:
            handler(t, who, what, ref)
    for rule in rules:
        rule.finish()


def _thin(story: Story, rules: Sequence[Rule], cap: int) -> list[tuple[float, str]]:
    """The lines to show, in time order: the most important first when there are more
    than ``cap``, a note of how many were left out, and the closing summary last."""
    ranked = sorted(story.lines)  # by level, then time, then order of discovery
    budget = cap - 1  # the closing summary always stays
    if len(ranked) > budget or story.skipped:
        budget -= 1  # room for the "left out" note
    kept = ranked[:budget]
    left_out = len(ranked) - len(kept) + story.skipped
    out = [(t, text) for _, t, _, text in sorted(kept, key=lambda x: (x[1], x[2]))]
    finished = [r.finished_ms for r in story.trace.requests if r.finished_ms is not None]
    final_t = max(finished) if finished else story.trace.end_ms
    if out and out[-1][0] > final_t:
        final_t = out[-1][0]
    if left_out:
        events = "event" if left_out == 1 else "events"
        out.append((final_t, f"{fmt_t(final_t)} — …and {left_out:,} more {events} not told here"))
    closing = "; ".join(c for c in (rule.closing() for rule in rules) if c)
    out.append((final_t, f"{fmt_t(final_t)} — {closing}"))
    return out
