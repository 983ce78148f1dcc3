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
by name), ``question`` (asked before playing), ``takeaway`` (one paragraph) and ``focus``
(what the page pans and zooms to) are optional. Any other key is an error.

A ``question`` is asked before the run plays; its answer is never typed into the file but
read from the run itself, by a *query* (see :data:`QUERY_METRICS`)::

    {"prompt": "The tenth user waits how long for its response?",
     "kind": "number", "unit": "s", "answer": {"of": "latency", "user": 10},
     "tolerance": 0.1, "explain": "Each user waits for everyone before it."}

    {"prompt": "Which finishes first?", "kind": "choice", "correct": "min",
     "options": [{"label": "the /report", "value": {"of": "finished", "user": 1}},
                 {"label": "the last /ping", "value": {"of": "finished", "user": 21}}]}

    {"prompt": "Click where the last user gets its response.", "kind": "click",
     "answer": {"of": "finished", "user": 10}}

``kind`` is ``number`` (the student types a number, in ``unit``), ``choice`` (the option
whose value is the smallest, ``correct: "min"``, or the largest, ``"max"``, is right),
``click`` (the student clicks a moment on the timeline) or ``discuss`` (the default: no
answer to check). ``tolerance`` is how far off (a fraction of the true value, default
0.15) still counts as right.

A ``focus`` says what to show when the lesson loads::

    {"from_ms": 180, "to_ms": 420, "lane": "gil", "request": 2,
     "note": "Each red sliver is /ping waiting for the GIL after a blocking call."}

(a time window to zoom to, a lane to point at, a user to select, a line to show; each
optional, no other keys).

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
    if key == "question":
        _question(where, value)
    elif key == "focus":
        _focus(where, value)
    return value


#: What a query may read of a run. Per request (``user`` picks one, 1-based; or ``stat``
#: over all of them, or those of one ``path``): ``latency`` (sent to response, ms),
#: ``finished`` (when its response came, ms), ``wait`` (sent to accepted, ms),
#: ``gil_wait`` (ms). For the whole run: ``makespan`` (the last response, ms),
#: ``max_backlog``, ``failed``, ``completed`` (counts).
QUERY_METRICS = {
    "latency": "request", "finished": "request", "wait": "request", "gil_wait": "request",
    "makespan": "run", "max_backlog": "run", "failed": "run", "completed": "run",
}
QUERY_STATS = ("mean", "median", "min", "max")
QUESTION_KINDS = ("number", "choice", "click", "discuss")
QUESTION_UNITS = ("s", "ms", "")
FOCUS_LANES = ("backlog", "threads", "gil", "cores", "requests")
USER_MAX = 1_000_000


def _keys(where: str, key: str, value: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for k in value:
        if k not in allowed:
            raise LessonError(where, f"{key}.{k}", f"is not allowed here (allowed: "
                                                    f"{', '.join(allowed)})")


def _line(where: str, key: str, value: Any, most: int = 300) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LessonError(where, key, f"must be non-empty text on one line (got {_kind(value)})")
    if len(value) > most:
        raise LessonError(where, key, f"must be at most {most} characters (got {len(value)})")
    if "\n" in value or "\r" in value:
        raise LessonError(where, key, "must fit on one line (no line breaks)")
    return value


def _number(where: str, key: str, value: Any, low: float, high: float,
            whole: bool = False, above: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int if whole else int | float)
    if ok and (value > low if above else value >= low) and value <= high:
        return float(value)
    what = "a whole number" if whole else "a number"
    side = "above" if above else "from"
    raise LessonError(where, key, f"must be {what} {side} {low:g} to {high:g} (got {value!r})")


def _query(where: str, key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise LessonError(where, key, f"must be a query, a JSON object like "
                                      f'{{"of": "latency", "user": 10}} (got {_kind(value)})')
    _keys(where, key, value, ("of", "user", "stat", "path"))
    of = value.get("of")
    if of not in QUERY_METRICS:
        raise LessonError(where, f"{key}.of", f"must be one of {', '.join(QUERY_METRICS)} "
                                              f"(got {of!r})")
    if QUERY_METRICS[of] == "run":
        for extra in ("user", "stat", "path"):
            if extra in value:
                raise LessonError(where, f"{key}.{extra}",
                                  f"does not apply to {of!r}, a figure of the whole run")
        return
    if ("user" in value) == ("stat" in value):
        raise LessonError(where, key, f"{of!r} needs either a user (1 = the first) or a stat "
                                      f"({', '.join(QUERY_STATS)})")
    if "user" in value:
        _number(where, f"{key}.user", value["user"], 1, USER_MAX, whole=True)
        if "path" in value:
            raise LessonError(where, f"{key}.path", "goes with a stat, not with one user")
    elif value["stat"] not in QUERY_STATS:
        raise LessonError(where, f"{key}.stat", f"must be one of {', '.join(QUERY_STATS)} "
                                                f"(got {value['stat']!r})")
    path = value.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/"):
        raise LessonError(where, f"{key}.path", f"must be a path like /sleep (got {path!r})")


def _question(where: str, q: dict[str, Any]) -> None:
    _keys(where, "question", q, ("prompt", "kind", "unit", "answer", "options", "correct",
                                 "tolerance", "explain"))
    if "prompt" not in q:
        raise LessonError(where, "question.prompt", "is missing (the question to ask)")
    _line(where, "question.prompt", q["prompt"])
    kind = q.get("kind", "discuss")
    if kind not in QUESTION_KINDS:
        raise LessonError(where, "question.kind", f"must be one of {', '.join(QUESTION_KINDS)} "
                                                  f"(got {kind!r})")
    needs = {"number": ("answer",), "click": ("answer",), "choice": ("options", "correct"),
             "discuss": ()}[kind]
    only = {"number": ("answer", "unit", "tolerance"), "click": ("answer", "tolerance"),
            "choice": ("options", "correct"), "discuss": ()}[kind]
    for k in ("answer", "unit", "options", "correct", "tolerance"):
        if k in q and k not in only:
            raise LessonError(where, f"question.{k}", f"does not apply to a {kind} question")
    for k in needs:
        if k not in q:
            raise LessonError(where, f"question.{k}", f"is missing (a {kind} question needs "
                                                      f"{' and '.join(needs)})")
    if "answer" in q:
        _query(where, "question.answer", q["answer"])
    if "unit" in q and q["unit"] not in QUESTION_UNITS:
        raise LessonError(where, "question.unit", f"must be s, ms or \"\" (got {q['unit']!r})")
    if "tolerance" in q:
        _number(where, "question.tolerance", q["tolerance"], 0, 1, above=True)
    if "correct" in q and q["correct"] not in ("min", "max"):
        raise LessonError(where, "question.correct",
                          f"must be min or max: the option whose value is smallest or largest "
                          f"is right (got {q['correct']!r})")
    if "options" in q:
        opts = q["options"]
        if not isinstance(opts, list) or not 2 <= len(opts) <= 6:
            raise LessonError(where, "question.options", "must be a list of 2 to 6 options")
        for i, opt in enumerate(opts):
            key = f"question.options[{i}]"
            if not isinstance(opt, dict):
                raise LessonError(where, key, f"must be an object with a label and a value "
                                              f"(got {_kind(opt)})")
            _keys(where, key, opt, ("label", "value"))
            if "label" not in opt or "value" not in opt:
                raise LessonError(where, key, "needs a label and a value (a query)")
            _line(where, f"{key}.label", opt["label"], 120)
            _query(where, f"{key}.value", opt["value"])
    if "explain" in q:
        _line(where, "question.explain", q["explain"], 600)


def _focus(where: str, f: dict[str, Any]) -> None:
    _keys(where, "focus", f, ("from_ms", "to_ms", "lane", "request", "note"))
    if ("from_ms" in f) != ("to_ms" in f):
        raise LessonError(where, "focus", "from_ms and to_ms go together (the window to show)")
    if "from_ms" in f:
        low = _number(where, "focus.from_ms", f["from_ms"], 0, 1e9)
        _number(where, "focus.to_ms", f["to_ms"], low, 1e9, above=True)
    if "lane" in f and f["lane"] not in FOCUS_LANES:
        raise LessonError(where, "focus.lane", f"must be one of {', '.join(FOCUS_LANES)} "
                                               f"(got {f['lane']!r})")
    if "request" in f:
        _number(where, "focus.request", f["request"], 1, USER_MAX, whole=True)
    if "note" in f:
        _line(where, "focus.note", f["note"])


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
