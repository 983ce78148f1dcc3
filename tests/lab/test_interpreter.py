"""The lab measures a scenario only on the interpreter it describes: a free-threaded
scenario is refused on a GIL build (and the reverse), before anything starts; --python
points the lab at another interpreter."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from wsgiscope.app.cli import main
from wsgiscope.app.lab import interpreter

SCENARIO = {
    "name": "two users",
    "server": {"kind": "werkzeug", "threaded": True},
    "endpoints": {"/sleep": [{"io_ms": 50}]},
    "workload": [{"count": 2, "path": "/sleep"}],
}

GIL = interpreter.probe(sys.executable, ("flask",))["gil"]


def write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("command", ["measure", "compare"])
def test_a_scenario_for_another_interpreter_is_refused_in_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    lab_procs: Callable[[], list],
) -> None:
    other = write(tmp_path, {**SCENARIO, "machine": {"gil": not GIL}})
    assert main([command, other]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wsgiscope: machine.gil: the scenario describes ")
    assert ("--python PATH" in err) if GIL else ("GIL" in err)
    assert "\n" not in err
    assert lab_procs() == []


def test_a_missing_interpreter_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SCENARIO)
    assert main(["measure", path, "--python", str(tmp_path / "no-python")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wsgiscope: --python: cannot run ") and "\n" not in err


def test_the_probe_reports_the_gil_after_importing_the_server_stack() -> None:
    info = interpreter.probe(sys.executable, ("flask", "werkzeug", "no_such_module_x"))
    assert info["gil"] is GIL and info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["imports"]["flask"] is True
    assert str(info["imports"]["no_such_module_x"]).startswith("ModuleNotFoundError")


def test_a_server_package_the_interpreter_lacks_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def probe(python: str, modules: tuple[str, ...] = ()) -> dict:
        imports = {m: True for m in modules}
        imports["gevent"] = "ModuleNotFoundError: No module named 'gevent'"
        return {"python": "3.13.1", "gil": GIL, "imports": imports}

    monkeypatch.setattr(interpreter, "probe", probe)
    sc = {"server": {"kind": "gunicorn", "worker_class": "gevent"}, "machine": {"gil": GIL}}
    with pytest.raises(interpreter.InterpreterError, match="cannot import gevent .*install gevent"):
        interpreter.check(sc, "/opt/python3.13t")
    sc["server"]["worker_class"] = "sync"
    assert interpreter.check(sc, "/opt/python3.13t")["python"] == "3.13.1"


@pytest.mark.lab
def test_python_runs_the_server_on_the_interpreter_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, SCENARIO)
    assert main(["measure", path, "--format", "json", "--python", sys.executable]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in out["requests"]] == ["ok", "ok"]
