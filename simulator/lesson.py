"""A lesson file: its format and its validation.

A lesson is a JSON file named ``<lesson-name>.json``; adding one needs no Python::

    {
      "title": "Ten users, one thread (app.run(threaded=False))",
      "lesson": "One thread serves one request at a time: ...",
      "watch": "The other nine connections wait in the kernel backlog; ...",
      "group": "basics",
      "order": 10,
      "scenario": {"server": {"kind": "werkzeug", "threaded": false}, ...}
    }

``title``, ``lesson`` (the point, one line), ``watch`` (what to look at) and ``scenario``
(checked by :func:`~.scenario.load_scenario`) are required. ``group`` (default ``basics``),
``order`` (the lesson's place in the picker and the tour; lessons without one come after,
by name), ``question`` (an object, asked before playing), ``takeaway`` (one paragraph) and
``focus`` (an object: what the page should pan or zoom to) are optional. Any other key is
an error.

Everything here is pure: it takes text or parsed data and returns a :class:`Lesson` or
raises :class:`LessonError`, one line naming the file and the field. Reading files is the
caller's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .scenario import ScenarioError, load_scenario

#: Keys a lesson file may hold, in the order a file lists them.
FIELDS = ("title", "lesson", "watch", "group", "order", "question", "takeaway", "focus",
          "scenario")
REQUIRED = ("title", "lesson", "watch", "scenario")
DEFAULT_GROUP = "basics"

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
ORDER_MAX = 1_000_000

# field: (most characters, must fit on one line)
_TEXTS = {
    "title": (200, True),
    "lesson": (300, True),
    "watch": (2000, False),
    "group": (40, True),
    "takeaway": (2000, False),
}


class LessonError(ValueError):
    """A lesson file is unreadable, or one of its fields is missing, unknown or wrong.

    ``str()`` is one line: ``<file>: <field>: <what is wrong>``.
    """

    def __init__(self, where: str, field: str, message: str) -> None:
        parts = [p for p in (where, field, message) if p]
        super().__init__(": ".join(parts))
        self.where = where
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Lesson:
    """One lesson: a scenario and the words around it."""

    name: str
    title: str
    lesson: str
    watch: str
    scenario: dict[str, Any] = field(repr=False)
    group: str = DEFAULT_GROUP
    order: int | None = None
    question: dict[str, Any] | None = field(default=None, repr=False)
    takeaway: str = ""
    focus: dict[str, Any] | None = field(default=None, repr=False)
    #: Where the lesson came from (a file path), for messages; not part of its identity.
    source: str = field(default="", compare=False, repr=False)


def lesson_name(filename: str, where: str = "") -> str:
    """The lesson name a file name gives: ``dev-threaded.json`` -> ``dev-threaded``."""
    where = where or filename
    stem = filename[:-5] if filename.endswith(".json") else ""
    if not NAME_RE.fullmatch(stem):
        raise LessonError(
            where, "",
            "a lesson file is named <lesson-name>.json, the name 1 to 80 letters, digits, "
            "'-' or '_', starting with a letter or digit",
        )
    return stem


def parse_lesson_file(filename: str, text: str, where: str = "") -> Lesson:
    """A lesson from a file's name and its text; ``where`` (default: the name) is how
    messages refer to the file."""
    where = where or filename
    name = lesson_name(filename, where)
    return parse_lesson(parse_json(text, where), name, where)


def parse_json(text: str, where: str) -> Any:
    """JSON text, with a key given twice in one object treated as the mistake it is."""

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise LessonError(where, key, "appears twice in the same object")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=no_repeats)
    except json.JSONDecodeError as exc:
        raise LessonError(
            where, "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def parse_lesson(data: Any, name: str, where: str = "") -> Lesson:
    """Validate parsed lesson data. Raises :class:`LessonError` on the first problem."""
    where = where or f"{name}.json"
    if not isinstance(data, dict):
        raise LessonError(where, "", f"a lesson must be a JSON object, got {_kind(data)}")
    for key in data:
        if key not in FIELDS:
            raise LessonError(where, key, f"is not a lesson field (allowed: {', '.join(FIELDS)})")
    for key in REQUIRED:
        if key not in data:
            raise LessonError(
                where, key, f"is missing (a lesson needs {', '.join(REQUIRED)})"
            )
    texts = {key: _text(where, key, data[key]) for key in _TEXTS if key in data}
    return Lesson(
        name=name,
        title=texts["title"],
        lesson=texts["lesson"],
        watch=texts["watch"],
        scenario=_scenario(where, data["scenario"], texts["title"]),
        group=texts.get("group", DEFAULT_GROUP),
        order=_order(where, data.get("order")),
        question=_object(where, "question", data.get("question")),
        takeaway=texts.get("takeaway", ""),
        focus=_object(where, "focus", data.get("focus")),
        source=where,
    )


def combine(*groups: Iterable[Lesson]) -> dict[str, Lesson]:
    """Lessons by name, in picker order: by ``order``, then those without one, by name.

    Two lessons with the same name are an error naming both files: a lesson in a
    teacher's folder does not quietly replace a bundled one (rename the file instead).
    """
    found: dict[str, Lesson] = {}
    for group in groups:
        for item in group:
            if item.name in found:
                other = found[item.name].source or "another lesson"
                raise LessonError(
                    item.source, "",
                    f"lesson name {item.name!r} is already taken by {other}; "
                    "rename one of the two files",
                )
            found[item.name] = item
    ordered = sorted(found.values(), key=_sort_key)
    return {item.name: item for item in ordered}


def _sort_key(item: Lesson) -> tuple[bool, int, str]:
    return (item.order is None, item.order or 0, item.name)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _text(where: str, key: str, value: Any) -> str:
    most, one_line = _TEXTS[key]
    line = " on one line" if one_line else ""
    if not isinstance(value, str) or not value.strip():
        raise LessonError(where, key, f"must be non-empty text{line} (got {_kind(value)})")
    if len(value) > most:
        raise LessonError(where, key, f"must be at most {most} characters (got {len(value)})")
    if one_line and ("\n" in value or "\r" in value):
        raise LessonError(where, key, "must fit on one line (no line breaks)")
    return value


def _order(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= ORDER_MAX:
        raise LessonError(
            where, "order", f"must be a whole number between 0 and {ORDER_MAX} (got {value!r})"
        )
    return value


def _object(where: str, key: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise LessonError(where, key, f"must be a JSON object (got {_kind(value)})")
    return value


def _scenario(where: str, value: Any, title: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LessonError(where, "scenario", f"must be a JSON object (got {_kind(value)})")
    scenario: dict[str, Any] = value if "name" in value else {"name": title, **value}
    try:
        load_scenario(scenario)
    except ScenarioError as exc:
        field = f"scenario.{exc.field}" if exc.field else "scenario"
        raise LessonError(where, field, exc.message) from None
    return scenario
