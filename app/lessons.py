"""A teacher's own lesson folders, read from disk and joined to the bundled lessons.

A folder holds ``<lesson-name>.json`` files in the format of
:mod:`wsgiscope.simulator.lesson`; other files are ignored. The command line takes folders
with ``--lessons DIR``; the page takes them from the ``LESSONS`` setting, by default the
``WSGISCOPE_LESSONS`` environment variable, a path list like ``PATH``. A lesson whose name
is taken (by a bundled lesson or one in another folder) is an error naming both files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wsgiscope.simulator import presets
from wsgiscope.simulator.lesson import Lesson, LessonError, parse_lesson_file

#: The environment variable the page and the commands read a teacher's lesson folders from.
ENV = "WSGISCOPE_LESSONS"
#: Where :func:`init_app` keeps an app's lessons (``app.extensions``).
EXTENSION = "wsgiscope.lessons"


def lesson_dirs(value: Any) -> list[str]:
    """Folder paths from a setting: a path list string (``os.pathsep``-separated), a list of
    paths, or nothing. The same folder given twice counts once."""
    if not value:
        return []
    parts = str(value).split(os.pathsep) if isinstance(value, str | os.PathLike) else value
    out: list[str] = []
    seen: set[str] = set()
    for part in parts:
        text = str(part).strip()
        key = os.path.realpath(text) if text else ""
        if text and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def read_folder(folder: str) -> list[Lesson]:
    """The lessons in one folder, validated. Raises ``LessonError`` on the first bad file."""
    path = Path(folder)
    if not path.exists():
        raise LessonError(folder, "", "no such lesson folder")
    if not path.is_dir():
        raise LessonError(folder, "", "is not a folder (give the folder of <lesson-name>.json "
                                      "files)")
    out = []
    for entry in sorted(path.iterdir()):
        if entry.suffix != ".json" or entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            text = entry.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LessonError(str(entry), "", "is not UTF-8 text") from None
        except OSError as exc:
            raise LessonError(str(entry), "", f"cannot be read: {exc.strerror or exc}") from None
        out.append(parse_lesson_file(entry.name, text, where=str(entry)))
    return out


def load_lessons(folders: Any) -> dict[str, Lesson]:
    """The bundled lessons and those in ``folders`` (see :func:`lesson_dirs`), in picker
    order. Raises ``LessonError`` (one line naming the file and field) on a bad file."""
    dirs = lesson_dirs(folders)
    if not dirs:
        return dict(presets.PRESETS)
    return presets.with_lessons(lesson for d in dirs for lesson in read_folder(d))


def init_app(app: Any) -> None:
    """Load the lessons of the app's ``LESSONS`` setting (default: ``$WSGISCOPE_LESSONS``)
    once, at start-up; a bad file stops the app with ``LessonError``."""
    app.config.setdefault("LESSONS", os.environ.get(ENV, ""))
    app.extensions[EXTENSION] = load_lessons(app.config["LESSONS"])


def current() -> dict[str, Lesson]:
    """The lessons of the app handling the request, in picker order."""
    from flask import current_app

    found = current_app.extensions.get(EXTENSION)
    return dict(found) if found is not None else dict(presets.PRESETS)
