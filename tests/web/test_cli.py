"""The ``wsgiscope simulate`` and ``wsgiscope presets`` commands."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from wsgiscope.app.cli import main
from wsgiscope.app.commands.common import load_scenario_arg, merge_profile
from wsgiscope.simulator import presets
from wsgiscope.simulator.scenario import COSTS

SCENARIO = {
    "name": "Three users, one thread",
    "server": {"kind": "werkzeug", "threaded": False},
    "endpoints": {"/sleep": [{"io_ms": 1000}]},
    "workload": [{"at_ms": 0, "count": 3, "path": "/sleep"}],
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_presets_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "presets")
    assert code == 0 and err == ""
    for name, preset in presets.PRESETS.items():
        assert name in out
        assert preset.title in out
        assert preset.lesson in out


def test_json_format_is_the_result_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "simulate", "dev-single-thread", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert len(data["requests"]) == 10
    assert data["summary"]["completed"] == 10
    finished = sorted(r["finished_ms"] for r in data["requests"])
    assert [round(f / 1000) for f in finished] == list(range(1, 11))


def test_csv_format_has_a_row_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "simulate", "gunicorn-sync-2", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 10
    assert {r["status"] for r in rows} == {"ok"}
    assert sorted(round(float(r["finished_ms"]) / 1000) for r in rows) == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
    ]


def test_trace_format_opens_in_perfetto(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "simulate", "gil-cpu-threads", "--format", "trace")
    assert code == 0
    events = json.loads(out)["traceEvents"]
    phases = {e["ph"] for e in events}
    assert {"X", "C", "M"} <= phases
    assert any(e["ph"] == "C" and e["name"] == "backlog" for e in events)
    assert any(e["ph"] == "X" and e["cat"] == "gil" for e in events)


def test_table_is_the_default_and_shows_the_staircase(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "simulate", "dev-single-thread")
    assert code == 0
    assert "| client" in out and "| kernel backlog" in out and "| server" in out
    for k in range(1, 11):
        assert f"user {k} <- 200" in out


def test_scenario_from_a_file_and_from_stdin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "three.json"
    path.write_text(json.dumps(SCENARIO))
    code, out, _ = run(capsys, "simulate", str(path), "--format", "json")
    assert code == 0
    from_file = json.loads(out)
    assert from_file["scenario"] == "Three users, one thread"
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(SCENARIO)))
    code, out, _ = run(capsys, "simulate", "-", "--format", "json")
    assert code == 0
    assert json.loads(out) == from_file


def test_seed_makes_runs_repeatable(capsys: pytest.CaptureFixture[str]) -> None:
    outs = [
        run(capsys, "simulate", "gthread-poisson", "--format", "csv", "--seed", s)[1]
        for s in ("7", "7", "8")
    ]
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]


def test_profile_overrides_machine_and_costs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "measured_on": "a laptop",
                "machine": {"cores": 1},
                "costs": {"parse_ms": 50},
            }
        )
    )
    code, out, _ = run(capsys, "simulate", "dev-single-thread", "--format", "json")
    plain = json.loads(out)
    code, out, _ = run(
        capsys, "simulate", "dev-single-thread", "--format", "json", "--profile", str(profile)
    )
    assert code == 0
    slow = json.loads(out)
    # ten requests each parse 50 ms more, one after another
    assert slow["summary"]["makespan_ms"] == pytest.approx(
        plain["summary"]["makespan_ms"] + 10 * (50 - COSTS["parse_ms"][0]), abs=1.0
    )
    code, out, _ = run(capsys, "simulate", "dev-single-thread", "--profile", str(profile))
    assert "· 1 core ·" in out


def test_merge_profile_keeps_the_rest_of_the_scenario() -> None:
    merged = merge_profile(
        {**SCENARIO, "machine": {"cores": 4, "gil": True}}, {"machine": {"cores": 2}}
    )
    assert merged["machine"] == {"cores": 2, "gil": True}
    assert merged["endpoints"] == SCENARIO["endpoints"]


def test_load_scenario_arg_returns_a_copy_of_a_preset() -> None:
    data = load_scenario_arg("dev-single-thread")
    data["server"]["threaded"] = True
    assert presets.get("dev-single-thread").scenario["server"]["threaded"] is False


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (
            ["simulate", "no-such-preset"],
            None,
            r"'no-such-preset' is neither a scenario file nor a preset "
            r"\(presets: .*dev-single-thread",
        ),
        (["simulate", "missing.json"], None, r"scenario file not found: missing\.json"),
        (
            ["simulate", "-"],
            '{"server": {"kind": "gunicorn",\n  "workers": }',
            r"standard input: invalid JSON at line 2, column 14",
        ),
        (["simulate", "-"], "[1, 2]", r"a scenario must be a JSON object"),
        (
            ["simulate", "-"],
            json.dumps({**SCENARIO, "server": {"kind": "gunicorn", "workers": 0}}),
            r"server\.workers: must be between 1 and 256 \(got 0\)",
        ),
        (
            ["simulate", "-"],
            json.dumps({**SCENARIO, "colour": "red"}),
            r"colour: is not a known field",
        ),
        (
            ["simulate", "dev-single-thread", "--profile", "nope.json"],
            None,
            r"profile file not found: nope\.json",
        ),
    ],
)
def test_errors_are_one_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    stdin: str | None,
    message: str,
) -> None:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("wsgiscope: ")
    import re

    assert re.search(message, err), err


def test_bad_profile_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"machine": [1, 2]}))
    code, _, err = run(capsys, "simulate", "dev-single-thread", "--profile", str(profile))
    assert code == 2 and "machine must be an object" in err
    profile.write_text(json.dumps({"machine": {"cores": 0}}))
    code, _, err = run(capsys, "simulate", "dev-single-thread", "--profile", str(profile))
    assert code == 2 and "machine.cores" in err


# What the ``wsgiscope`` console script runs.
ENTRY = [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())"]


def test_the_command_runs_in_a_subprocess(tmp_path: Path) -> None:
    ok = subprocess.run(
        [*ENTRY, "simulate", "dev-single-thread", "--format", "table"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "user 10 <- 200" in ok.stdout
    bad = subprocess.run(
        [*ENTRY, "simulate", str(tmp_path / "absent.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("wsgiscope: scenario file not found")
