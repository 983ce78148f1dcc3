"""Lessons are data files: every bundled one loads, and a bad one is a one-line error."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from wsgiscope import simulator
from wsgiscope.simulator import presets
from wsgiscope.simulator.lesson import (
    FIELDS,
    Lesson,
    LessonError,
    combine,
    parse_lesson,
    parse_lesson_file,
)

GOOD: dict[str, Any] = {
    "title": "Two users, one thread",
    "lesson": "The second user waits for the first.",
    "watch": "The second connection waits in the kernel backlog.",
    "scenario": {
        "server": {"kind": "werkzeug", "threaded": False},
        "endpoints": {"/sleep": [{"io_ms": 100}]},
        "workload": [{"at_ms": 0, "count": 2, "path": "/sleep"}],
    },
}


def bundled_files() -> list[str]:
    folder = resources.files("wsgiscope.simulator").joinpath("lessons")
    return sorted(e.name for e in folder.iterdir() if e.name.endswith(".json"))


def test_every_bundled_file_is_a_preset() -> None:
    files = bundled_files()
    assert len(files) >= 20
    assert sorted(f"{name}.json" for name in presets.PRESETS) == files
    assert presets.names() == list(presets.PRESETS)
    assert presets.all() == list(presets.PRESETS.values())


@pytest.mark.parametrize("filename", bundled_files())
def test_every_bundled_lesson_loads_and_validates(filename: str) -> None:
    text = resources.files("wsgiscope.simulator").joinpath("lessons", filename).read_text(
        encoding="utf-8"
    )
    data = json.loads(text)
    assert set(data) <= set(FIELDS)
    lesson = parse_lesson_file(filename, text)
    assert lesson == presets.get(lesson.name)
    assert lesson.title and lesson.lesson and lesson.watch and lesson.group
    assert isinstance(lesson.order, int)
    assert lesson.scenario == data["scenario"]
    simulator.load_scenario(lesson.scenario)


def test_bundled_lessons_keep_their_order() -> None:
    orders = [p.order for p in presets.PRESETS.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert presets.names()[:3] == ["dev-single-thread", "dev-threaded", "dev-processes-4"]


def test_a_minimal_lesson_gets_defaults() -> None:
    lesson = parse_lesson_file("two-users.json", json.dumps(GOOD))
    assert lesson.name == "two-users"
    assert lesson.group == "basics" and lesson.order is None and lesson.takeaway == ""
    assert lesson.question is None and lesson.focus is None
    assert lesson.scenario["name"] == GOOD["title"]  # a scenario without a name takes the title
    assert "name" not in GOOD["scenario"]


def test_classroom_fields_are_kept() -> None:
    data = dict(GOOD, order=5, takeaway="Threads or processes fix it.",
                question={"prompt": "When does the second user finish?"},
                focus={"lane": "backlog"})
    lesson = parse_lesson(data, "two-users")
    assert lesson.order == 5 and lesson.takeaway == "Threads or processes fix it."
    assert lesson.question == {"prompt": "When does the second user finish?"}
    assert lesson.focus == {"lane": "backlog"}


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"titel": "x"}, "titel", "is not a lesson field (allowed: title,"),
        ({"title": None}, "title", "must be non-empty text on one line"),
        ({"title": "   "}, "title", "must be non-empty text"),
        ({"lesson": "one\ntwo"}, "lesson", "must fit on one line"),
        ({"watch": 3}, "watch", "must be non-empty text (got a number)"),
        ({"title": "x" * 201}, "title", "at most 200 characters"),
        ({"order": -1}, "order", "between 0 and 1000000"),
        ({"order": True}, "order", "whole number"),
        ({"order": 1.5}, "order", "whole number"),
        ({"question": "why?"}, "question", "must be a JSON object (got a string)"),
        ({"focus": [1, 2]}, "focus", "must be a JSON object (got a list)"),
        ({"scenario": []}, "scenario", "must be a JSON object"),
        ({"scenario": dict(GOOD["scenario"], server={"kind": "gunicorn", "workers": 0})},
         "scenario.server.workers", "must be between 1 and"),
        ({"scenario": dict(GOOD["scenario"], servr={})}, "scenario.servr", "not a known field"),
    ],
)
def test_a_bad_field_is_one_line_naming_file_and_field(
    change: dict[str, Any], field: str, words: str
) -> None:
    data = dict(GOOD, **change)
    with pytest.raises(LessonError) as info:
        parse_lesson_file("two-users.json", json.dumps(data), where="class/two-users.json")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"class/two-users.json: {field}: ")
    assert words in message
    assert info.value.field == field


@pytest.mark.parametrize("missing", ["title", "lesson", "watch", "scenario"])
def test_a_missing_field_is_named(missing: str) -> None:
    data = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(LessonError, match=rf"^x\.json: {missing}: is missing \(a lesson needs"):
        parse_lesson_file("x.json", json.dumps(data))


@pytest.mark.parametrize(
    ("filename", "text", "words"),
    [
        ("x.json", '{"title": "a",', "x.json: invalid JSON at line 1, column"),
        ("x.json", "[1, 2]", "x.json: a lesson must be a JSON object, got a list"),
        ("x.json", '{"title": "a", "title": "b"}', "x.json: title: appears twice"),
        ("my lesson.json", json.dumps(GOOD), "my lesson.json: a lesson file is named"),
        ("x.txt", json.dumps(GOOD), "x.txt: a lesson file is named <lesson-name>.json"),
    ],
)
def test_an_unreadable_file_is_one_line(filename: str, text: str, words: str) -> None:
    with pytest.raises(LessonError) as info:
        parse_lesson_file(filename, text)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(words)


def lesson(name: str, order: int | None = None, source: str = "") -> Lesson:
    return parse_lesson(dict(GOOD, **({} if order is None else {"order": order})), name,
                        source or f"class/{name}.json")


def test_teacher_lessons_join_the_bundled_ones_in_order() -> None:
    joined = presets.with_lessons([lesson("zz-last"), lesson("aa-unordered"),
                                   lesson("after-the-first", order=15)])
    names = list(joined)
    assert names[:3] == ["dev-single-thread", "after-the-first", "dev-threaded"]
    assert names[-2:] == ["aa-unordered", "zz-last"]
    assert len(joined) == len(presets.PRESETS) + 3
    assert presets.get("zz-last", joined).source == "class/zz-last.json"
    with pytest.raises(KeyError, match="zz-last"):
        presets.get("nope", joined)
    assert "zz-last" not in presets.PRESETS


def test_a_name_taken_twice_names_both_files() -> None:
    bundled = presets.get("dev-threaded").source
    with pytest.raises(LessonError) as info:
        presets.with_lessons([lesson("dev-threaded")])
    message = str(info.value)
    assert message.startswith("class/dev-threaded.json: ")
    assert bundled in message and "dev-threaded.json" in bundled
    assert "rename one of the two files" in message and "\n" not in message
    with pytest.raises(LessonError, match="b/x.json: .*already taken by a/x.json"):
        combine([lesson("x", source="a/x.json")], [lesson("x", source="b/x.json")])


NUMBER_Q = {"prompt": "The second user waits how long?", "kind": "number", "unit": "s",
            "answer": {"of": "latency", "user": 2}, "tolerance": 0.1}
CHOICE_Q = {"prompt": "Which finishes first?", "kind": "choice", "correct": "min",
            "options": [{"label": "user 1", "value": {"of": "finished", "user": 1}},
                        {"label": "user 2", "value": {"of": "finished", "user": 2}}]}


@pytest.mark.parametrize("question", [
    {"prompt": "Why does the second user wait?"},
    NUMBER_Q,
    CHOICE_Q,
    {"prompt": "Click where user 2 is answered.", "kind": "click",
     "answer": {"of": "finished", "user": 2}},
    {"prompt": "Mean wait?", "kind": "number", "unit": "ms",
     "answer": {"of": "wait", "stat": "mean", "path": "/sleep"}},
    {"prompt": "How deep does the queue get?", "kind": "number",
     "answer": {"of": "max_backlog"}, "explain": "One waits while the other is served."},
])
def test_questions_of_each_kind_validate(question: dict[str, Any]) -> None:
    lesson = parse_lesson(dict(GOOD, question=question), "two-users")
    assert lesson.question == question


@pytest.mark.parametrize(
    ("question", "field", "words"),
    [
        ({"kind": "number"}, "question.prompt", "is missing"),
        ({"prompt": "x", "kind": "guess"}, "question.kind", "one of number, choice, click"),
        ({"prompt": "x", "kind": "number"}, "question.answer", "is missing"),
        ({"prompt": "x", "answer": {"of": "makespan"}}, "question.answer",
         "does not apply to a discuss question"),
        (dict(NUMBER_Q, answer={"of": "speed"}), "question.answer.of", "must be one of latency"),
        (dict(NUMBER_Q, answer={"of": "latency"}), "question.answer", "needs either a user"),
        (dict(NUMBER_Q, answer={"of": "latency", "user": 0}), "question.answer.user",
         "whole number from 1"),
        (dict(NUMBER_Q, answer={"of": "makespan", "user": 2}), "question.answer.user",
         "does not apply to 'makespan'"),
        (dict(NUMBER_Q, answer={"of": "wait", "stat": "p99"}), "question.answer.stat",
         "one of mean, median"),
        (dict(NUMBER_Q, answer={"of": "wait", "stat": "mean", "path": "sleep"}),
         "question.answer.path", "a path like /sleep"),
        (dict(NUMBER_Q, answer=10.1), "question.answer", "must be a query"),
        (dict(NUMBER_Q, tolerance=0), "question.tolerance", "above 0 to 1"),
        (dict(NUMBER_Q, unit="h"), "question.unit", "must be s, ms"),
        (dict(NUMBER_Q, wrong=1), "question.wrong", "is not allowed here"),
        (dict(CHOICE_Q, correct="first"), "question.correct", "must be min or max"),
        (dict(CHOICE_Q, options=[CHOICE_Q["options"][0]]), "question.options", "2 to 6"),
        (dict(CHOICE_Q, options=[{"label": "a"}, {"label": "b"}]), "question.options[0]",
         "needs a label and a value"),
        (dict(CHOICE_Q, unit="s"), "question.unit", "does not apply to a choice question"),
        (dict(NUMBER_Q, prompt="two\nlines"), "question.prompt", "one line"),
    ],
)
def test_a_bad_question_is_one_line_naming_the_field(
    question: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(LessonError) as info:
        parse_lesson(dict(GOOD, question=question), "two-users", "class/two-users.json")
    assert info.value.field == field
    assert words in info.value.message
    assert str(info.value).startswith(f"class/two-users.json: {field}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("focus", "field", "words"),
    [
        ({"from_ms": 100}, "focus", "go together"),
        ({"from_ms": 200, "to_ms": 100}, "focus.to_ms", "above 200"),
        ({"from_ms": -1, "to_ms": 100}, "focus.from_ms", "from 0"),
        ({"lane": "kernel"}, "focus.lane", "one of backlog, threads, gil"),
        ({"request": 1.5}, "focus.request", "whole number"),
        ({"zoom": 2}, "focus.zoom", "is not allowed here"),
    ],
)
def test_a_bad_focus_is_one_line_naming_the_field(
    focus: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(LessonError) as info:
        parse_lesson(dict(GOOD, focus=focus), "two-users")
    assert info.value.field == field
    assert words in info.value.message


def test_a_good_focus_is_kept() -> None:
    focus = {"from_ms": 180, "to_ms": 420, "lane": "gil", "request": 2, "note": "Look here."}
    assert parse_lesson(dict(GOOD, focus=focus), "two-users").focus == focus
