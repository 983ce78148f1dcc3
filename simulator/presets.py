"""The bundled lessons, one JSON file each in ``lessons/`` (package data).

Each preset names the lesson it teaches in one line (``lesson``) and says what to watch for
(``watch``); ``get(name).scenario`` is a scenario dict. The file format is described in
:mod:`.lesson`. A teacher's own folder of lesson files is read by the caller (the command
line, the web app) and joined to these with :func:`with_lessons`.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from .lesson import Lesson, combine, parse_lesson_file

#: A preset is a lesson that ships with wsgiscope.
Preset = Lesson

_PACKAGE = __name__.rpartition(".")[0]


def _bundled() -> dict[str, Lesson]:
    folder = resources.files(_PACKAGE).joinpath("lessons")
    found = [
        parse_lesson_file(entry.name, entry.read_text(encoding="utf-8"), where=str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".json") and entry.is_file()
    ]
    return combine(found)


#: Bundled lessons by name, in picker order.
PRESETS: dict[str, Preset] = _bundled()


def get(name: str, lessons: dict[str, Lesson] | None = None) -> Preset:
    """The lesson called ``name`` (from ``lessons``, default the bundled ones); KeyError
    lists the known names."""
    known = PRESETS if lessons is None else lessons
    try:
        return known[name]
    except KeyError:
        raise KeyError(f"no preset {name!r} (known: {', '.join(known)})") from None


def names() -> list[str]:
    """The bundled lessons' names, in picker order."""
    return list(PRESETS)


def all() -> list[Preset]:
    """The bundled lessons, in picker order."""
    return list(PRESETS.values())


def with_lessons(extra: Iterable[Lesson]) -> dict[str, Lesson]:
    """The bundled lessons and ``extra`` (a teacher's), in picker order. A name used twice
    raises :class:`~.lesson.LessonError` naming both files."""
    return combine(PRESETS.values(), extra)
