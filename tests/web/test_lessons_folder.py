"""A teacher's own lesson folder: ``--lessons DIR`` on the command line, ``LESSONS`` /
``WSGISCOPE_LESSONS`` for the page."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from wsgiscope.app import create_app
from wsgiscope.app.cli import build_parser, main
from wsgiscope.app.commands.common import CliError
from wsgiscope.app.commands.serve import serve
from wsgiscope.app.lessons import ENV, lesson_dirs, load_lessons
from wsgiscope.simulator import presets
from wsgiscope.simulator.lesson import LessonError

ROOT = Path(__file__).resolve().parents[2]

LESSON: dict[str, Any] = {
    "title": "Three users on two threads",
    "lesson": "Two threads serve the first two users; the third waits for one of them.",
    "watch": "The third request waits in the thread pool's queue.",
    "group": "my class",
    "scenario": {
        "name": "Three users, gunicorn -w 1 --threads 2",
        "server": {"kind": "gunicorn", "worker_class": "gthread", "workers": 1, "threads": 2},
        "endpoints": {"/sleep": [{"io_ms": 1000}]},
        "workload": [{"at_ms": 0, "count": 3, "path": "/sleep"}],
    },
}


def write(folder: Path, name: str, data: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_lessons_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture()
def lessons(tmp_path: Path) -> Path:
    folder = tmp_path / "lessons"
    write(folder, "three-users", LESSON)
    (folder / "README.md").write_text("not a lesson", encoding="utf-8")
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- command line -------------------------------------------------------------------------


def test_presets_lists_a_teachers_lessons(capsys: pytest.CaptureFixture[str],
                                          lessons: Path) -> None:
    code, out, err = run(capsys, "presets", "--lessons", str(lessons))
    assert code == 0 and err == ""
    assert "three-users" in out and LESSON["title"] in out and LESSON["lesson"] in out
    for name in presets.PRESETS:
        assert name in out
    # without the flag, the bundled lessons only, as before
    code, plain, _ = run(capsys, "presets")
    assert "three-users" not in plain and plain.splitlines() == [
        line for line in out.splitlines() if "three-users" not in line
        and LESSON["lesson"] not in line
    ]


def test_simulate_runs_a_teachers_lesson_by_name(capsys: pytest.CaptureFixture[str],
                                                 lessons: Path) -> None:
    code, out, err = run(capsys, "simulate", "three-users", "--lessons", str(lessons),
                         "--format", "json")
    assert code == 0, err
    finished = sorted(r["finished_ms"] for r in json.loads(out)["requests"])
    assert len(finished) == 3 and finished[2] > 1.9 * finished[0]
    code, _, err = run(capsys, "simulate", "three-users")
    assert code == 2 and "three-users" in err and "neither a scenario file nor a preset" in err


def test_the_commands_read_the_environment_unless_given_a_flag(
        capsys: pytest.CaptureFixture[str], lessons: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(lessons))
    code, out, _ = run(capsys, "presets")
    assert code == 0 and LESSON["title"] in out
    code, _, err = run(capsys, "simulate", "three-users", "--format", "csv")
    assert code == 0, err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, _ = run(capsys, "presets", "--lessons", str(empty))
    assert code == 0 and LESSON["title"] not in out


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (dict(LESSON, colour="red"), "bad.json: colour: is not a lesson field"),
        ({k: v for k, v in LESSON.items() if k != "title"}, "bad.json: title: is missing"),
        (dict(LESSON, scenario=dict(LESSON["scenario"], server={"kind": "iis"})),
         "bad.json: scenario.server.kind: "),
        ('{"title": ', "bad.json: invalid JSON at line 1"),
    ],
)
@pytest.mark.parametrize("command", [["presets"], ["simulate", "dev-threaded"]])
def test_a_bad_lesson_file_is_a_one_line_error(capsys: pytest.CaptureFixture[str],
                                               lessons: Path, data: Any, words: str,
                                               command: list[str]) -> None:
    bad = write(lessons, "bad", data)
    code, out, err = run(capsys, *command, "--lessons", str(lessons))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("wsgiscope: ")
    assert str(bad.parent) in err and words in err


def test_a_name_taken_by_a_bundled_lesson_names_both_files(capsys: pytest.CaptureFixture[str],
                                                           lessons: Path) -> None:
    mine = write(lessons, "dev-threaded", LESSON)
    code, _, err = run(capsys, "presets", "--lessons", str(lessons))
    assert code == 2 and err.count("\n") == 1
    assert str(mine) in err and presets.get("dev-threaded").source in err
    assert "rename one of the two files" in err


def test_several_folders_and_a_missing_one(capsys: pytest.CaptureFixture[str], lessons: Path,
                                           tmp_path: Path) -> None:
    other = tmp_path / "more"
    write(other, "four-users", dict(LESSON, title="Four users", order=15))
    code, out, _ = run(capsys, "presets", "--lessons", str(lessons), "--lessons", str(other))
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert names[:2] == ["dev-single-thread", "four-users"] and names[-1] == "three-users"
    code, _, err = run(capsys, "presets", "--lessons", str(tmp_path / "nope"))
    assert code == 2 and "nope: no such lesson folder" in err


def test_serve_checks_the_folder_before_it_starts(tmp_path: Path) -> None:
    write(tmp_path, "bad", dict(LESSON, title=""))
    args = build_parser().parse_args(["serve", "--lessons", str(tmp_path)])
    with pytest.raises(CliError, match=r"bad\.json: title: must be non-empty text"):
        serve(args)


def test_lesson_dirs_reads_a_path_list() -> None:
    assert lesson_dirs(None) == [] and lesson_dirs("") == []
    assert lesson_dirs(os.pathsep.join(["a", "", "b", "a"])) == ["a", "b"]
    assert lesson_dirs(["a", "b"]) == ["a", "b"]
    assert list(load_lessons("")) == list(presets.PRESETS)


# --- the page -----------------------------------------------------------------------------


def check_page_lists(client: Any) -> None:
    html = client.get("/").get_data(as_text=True)
    assert 'value="three-users"' in html and LESSON["title"] in html
    page = client.get("/?preset=three-users")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert LESSON["lesson"] in text and "Three users, gunicorn -w 1 --threads 2" in text
    fragment = client.get("/fragments/preset?preset=three-users")
    assert fragment.status_code == 200 and LESSON["lesson"] in fragment.get_data(as_text=True)


def test_the_page_lists_and_loads_a_teachers_lesson(lessons: Path) -> None:
    check_page_lists(create_app({"TESTING": True, "LESSONS": str(lessons)}).test_client())


def test_the_page_reads_the_environment(lessons: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, os.pathsep.join([str(lessons), str(lessons.parent / "nothing")]))
    with pytest.raises(LessonError, match="nothing: no such lesson folder"):
        create_app({"TESTING": True})
    monkeypatch.setenv(ENV, str(lessons))
    check_page_lists(create_app({"TESTING": True}).test_client())
    # the setting wins over the environment
    client = create_app({"TESTING": True, "LESSONS": []}).test_client()
    assert "three-users" not in client.get("/").get_data(as_text=True)


def test_without_a_folder_the_page_has_the_bundled_lessons_only(client: Any) -> None:
    html = client.get("/").get_data(as_text=True)
    assert html.count("<option value=") - html.count('<option value=""') >= len(presets.PRESETS)
    assert client.get("/?preset=three-users").status_code == 422


def test_a_bad_lesson_folder_stops_the_app_with_one_line(lessons: Path) -> None:
    write(lessons, "bad", dict(LESSON, watch=None))
    with pytest.raises(LessonError) as info:
        create_app({"TESTING": True, "LESSONS": [str(lessons)]})
    assert "\n" not in str(info.value) and "bad.json: watch: " in str(info.value)


def test_wsgiscope_serve_lessons_shows_them_on_the_page(lessons: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsgiscope.app.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--threads", "4", "--lessons", str(lessons)],
            cwd=ROOT, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != ENV},
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    html = resp.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert 'value="three-users"' in html and LESSON["title"] in html
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
