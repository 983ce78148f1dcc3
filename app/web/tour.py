"""Lessons on the page: which lesson a run is, the tour through them, the words around it.

A run *is* a lesson only while its scenario is the lesson's scenario, unchanged (seed and
name included): a share link of an unchanged lesson opens as the lesson. Change anything
and it becomes "Your scenario (from <lesson>)": the lesson's text, question and takeaway
no longer apply, and its title no longer travels in the share link.
"""

from __future__ import annotations

import json
import re
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.lesson import Lesson

from .forms import all_presets

_OWN = re.compile(r"Your scenario \(from ([A-Za-z0-9][A-Za-z0-9_-]{0,79})\)")
_CLEAN: dict[str, dict[str, Any]] = {}  # a lesson's scenario, validated, by its JSON text


def own_name(origin: str) -> str:
    """The name an edited lesson's scenario gets."""
    return f"Your scenario (from {origin})"


def clean_scenario(lesson: Lesson) -> dict[str, Any]:
    """A lesson's scenario as the engine normalises it (what a page runs and shares)."""
    text = json.dumps(lesson.scenario, sort_keys=True)
    found = _CLEAN.get(text)
    if found is None:
        found = _CLEAN[text] = simulator.load_scenario(lesson.scenario).to_dict()
    return found


def lesson_of(scenario: dict[str, Any]) -> str:
    """The name of the lesson whose scenario this is, unchanged; "" if none is."""
    for name, lesson in all_presets().items():
        if clean_scenario(lesson) == scenario:
            return name
    return ""


def origin_of(scenario: dict[str, Any]) -> str:
    """The lesson an edited scenario came from, read from its name; "" if none."""
    found = _OWN.fullmatch(str(scenario.get("name", "")))
    return found.group(1) if found and found.group(1) in all_presets() else ""


def identify(scenario: dict[str, Any], origin: str = "") -> tuple[dict[str, Any], str, str]:
    """``(scenario, lesson, origin)`` for a run about to be shown.

    ``lesson`` is the lesson it is, unchanged, or "". ``origin`` is the lesson it came
    from (the form says which): an edited lesson that still carries the lesson's name is
    renamed "Your scenario (from <origin>)"; a name the user typed is kept.
    """
    name = lesson_of(scenario)
    if name:
        return scenario, name, name
    lessons = all_presets()
    if origin not in lessons:
        return scenario, "", origin_of(scenario)
    if scenario.get("name") == clean_scenario(lessons[origin]).get("name"):
        scenario = dict(scenario, name=own_name(origin))
    return scenario, "", origin


def own_label(origin: str) -> str:
    """The picker's entry for a scenario that is no lesson."""
    return f"your scenario (from {origin})" if origin else "— your own scenario —"


def tour_neighbours(name: str) -> tuple[str, str]:
    """The lessons before and after ``name`` in the tour (picker order), "" at either end.
    A scenario that is no lesson has the tour's first lesson next."""
    names = list(all_presets())
    if name not in names:
        return "", names[0] if names else ""
    i = names.index(name)
    return (names[i - 1] if i > 0 else "", names[i + 1] if i + 1 < len(names) else "")


def lesson_context(name: str, origin: str = "") -> dict[str, Any]:
    """What ``_fragments/_lesson.html`` shows for the lesson ``name`` ("" for none)."""
    lesson = all_presets().get(name) if name else None
    prev, nxt = tour_neighbours(name)
    lessons = all_presets()
    out: dict[str, Any] = {
        "name": name, "origin": origin, "own_label": own_label(origin), "prev": prev,
        "next": nxt, "prev_title": lessons[prev].title if prev else "",
        "next_title": lessons[nxt].title if nxt else "",
        "lesson": "", "watch": "", "title": "", "takeaway": "", "question": "", "focus": "",
        "position": 0, "count": len(lessons),
    }
    if lesson is not None:
        out.update(
            lesson=lesson.lesson, watch=lesson.watch, title=lesson.title,
            takeaway=lesson.takeaway,
            question=json.dumps(lesson.question) if lesson.question else "",
            focus=json.dumps(lesson.focus) if lesson.focus else "",
            position=list(lessons).index(name) + 1,
        )
    return out
