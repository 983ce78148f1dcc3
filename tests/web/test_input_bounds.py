"""Text from users is parsed safely everywhere (bounded size, no NaN or Infinity, bounded
nesting), costly runs are refused in one line naming the field, and a socket survives any
message: an error frame each time, never an HTTP 500 into the stream."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zlib
from typing import Any

import pytest
from servekit import FakeSocket
from wsgiscope import simulator
from wsgiscope.app.cli import main
from wsgiscope.app.stream import Session

SMALL = {"endpoints": {"/a": [{"io_ms": 10}]}, "workload": [{"count": 2, "path": "/a"}]}
COSTLY = {"machine": {"switch_interval_ms": 0.05}, "endpoints": {"/cpu": [{"cpu_ms": 60_000}]},
          "workload": [{"count": 2, "path": "/cpu"}]}
DEEP = "[" * 5000 + "]" * 5000


def _session(app: Any) -> tuple[Session, FakeSocket]:
    ws = FakeSocket()
    s = Session(ws, 4000)
    with app.app_context():
        s.handle(json.dumps({"op": "start", "scenario": SMALL}))
    assert ws.take("meta")
    ws.take("frames")
    return s, ws


# --- the WebSocket -----------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "field", "words"), [
    ('{"op": "start", "scenario": {"machine": {"cores": NaN}}}', "", "NaN"),
    ('{"op": "seek", "t": Infinity}', "", "Infinity"),
    ('{"op": "start", "scenario": ' + DEEP + "}", "", "levels deep"),
    ('{"op": "start", "seed": -5, "scenario": {}}', "seed", "between 0 and 4294967295"),
    ('{"op": "start", "seed": 4294967296, "scenario": {}}', "seed", "between 0 and 4294967295"),
    (json.dumps({"op": "start", "scenario": COSTLY}), "machine.switch_interval_ms",
     "GIL hand-overs"),
    (json.dumps({"op": "start", "scenario": {**SMALL, "workload": [
        {"count": 1, "path": "/a", "at_ms": 1e400}]}}), "", "Infinity"),
], ids=["nan", "infinity", "deep", "seed-5", "seed-2**32", "costly", "1e400"])
def test_a_bad_start_gets_one_error_frame_and_the_run_goes_on(
    app: Any, message: str, field: str, words: str
) -> None:
    s, ws = _session(app)
    with app.app_context():
        s.handle(message)
    errors = ws.take("error")
    assert len(errors) == 1, errors
    assert words in errors[0]["error"] and "\n" not in errors[0]["error"]
    if field:
        assert errors[0]["field"] == field
    with app.app_context():
        s.handle(json.dumps({"op": "seek", "t": 15}))
    assert ws.take("frames") or s.sent == s.run.n


def test_a_failing_handler_is_an_error_frame_not_a_broken_socket(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, ws = _session(app)

    def boom(msg: dict[str, Any]) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(s, "op_seek", boom)
    with app.app_context():
        s.handle('{"op": "seek", "t": 1}')
    errors = ws.take("error")
    assert len(errors) == 1 and "still open" in errors[0]["error"]
    monkeypatch.undo()
    with app.app_context():
        s.handle(json.dumps({"op": "step", "t": 0}))
    assert ws.take("goto")


# --- HTTP ----------------------------------------------------------------------------------


FORM = {"server.kind": "werkzeug", "endpoints": '{"/a": [{"io_ms": 1}]}',
        "workload": '[{"count": 1, "path": "/a"}]'}


@pytest.mark.parametrize(("change", "field"), [
    ({"endpoints": '{"/a": [{"io_ms": NaN}]}'}, "endpoints"),
    ({"workload": DEEP}, "workload"),
    ({"machine.switch_interval_ms": "0.05", "endpoints": '{"/a": [{"cpu_ms": 60000}]}',
      "workload": '[{"count": 2, "path": "/a"}]'}, "machine.switch_interval_ms"),
], ids=["nan", "deep", "costly"])
def test_the_form_refuses_bad_json_and_costly_runs_marking_the_field(
    client: Any, change: dict[str, str], field: str
) -> None:
    resp = client.post("/simulate", data={**FORM, **change})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert f'name="{field}"' in html and "aria-invalid" in html or field in html


def test_import_refuses_nan_deep_and_oversized_files(client: Any, app: Any) -> None:
    for body, words in ((b'{"seed": NaN}', "NaN"), (DEEP.encode(), "levels deep")):
        data = {"file": (io.BytesIO(body), "s.json")}
        resp = client.post("/scenario/import", data=data, content_type="multipart/form-data")
        assert resp.status_code == 422
        assert words in resp.get_data(as_text=True)
    big = " " * app.config["MAX_UPLOAD_BYTES"] + "{}"
    assert client.post("/scenario/import", data={"text": big}).status_code in (413, 422)


def _share(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/", "/export/scenario.json", "/export/trace.json"])
@pytest.mark.parametrize(("text", "words"), [
    (DEEP, "levels deep"), ('{"seed": NaN}', "NaN"), (json.dumps(COSTLY), "hand-overs"),
], ids=["deep", "nan", "costly"])
def test_share_links_are_parsed_safely(client: Any, path: str, text: str, words: str) -> None:
    resp = client.get(f"{path}?s={_share(text)}")
    assert resp.status_code == 422
    assert words in resp.get_data(as_text=True)


@pytest.mark.parametrize("seed", ["-5", "4294967296", "1e3", "99999999999999999999999"])
def test_a_share_links_seed_is_in_the_scenarios_range(client: Any, seed: str) -> None:
    s = _share(json.dumps(SMALL))
    resp = client.get(f"/export/scenario.json?s={s}&seed={seed}")
    assert resp.status_code == 422
    assert "seed" in resp.get_data(as_text=True)
    assert client.get(f"/export/scenario.json?s={s}&seed=4294967295").status_code == 200


def test_the_timeline_api_parses_safely(client: Any) -> None:
    for body in (b'{"trace": {"end_ms": NaN}}', DEEP.encode(), b"\xff\xfe"):
        resp = client.post("/api/timeline", data=body, content_type="application/json")
        assert resp.status_code == 422
        assert resp.get_json()["field"] == "trace"


# --- the command line ----------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_simulate_dev_zero_stops_at_once() -> None:
    out = subprocess.run([sys.executable, "-m", "wsgiscope.app.cli", "simulate", "/dev/zero"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert "larger than 1,000,000 bytes" in out.stderr


def test_simulate_refuses_endless_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(" " * 2_000_000))
    code, err = _cli(capsys, "simulate", "-")
    assert code == 2 and "standard input is larger than" in err


@pytest.mark.parametrize(("text", "words"), [
    ('{"seed": NaN}', "NaN"), (DEEP, "levels deep"),
    (json.dumps(SMALL)[:-1] + ', "seed": 1e400}', "seed: must be a finite number"),
], ids=["nan", "deep", "1e400"])
def test_simulate_parses_files_safely(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, text: str, words: str
) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    code, err = _cli(capsys, "simulate", str(path))
    assert code == 2 and words in err and err.count("\n") == 1


@pytest.mark.parametrize("seed", ["-5", "4294967296"])
def test_the_cli_seed_has_the_scenarios_range(capsys: pytest.CaptureFixture[str],
                                              seed: str) -> None:
    code, err = _cli(capsys, "simulate", "dev-single-thread", "--seed", seed)
    assert code == 2
    assert err.startswith("wsgiscope: --seed: must be between 0 and 4294967295")


def test_the_cli_refuses_a_costly_run_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(COSTLY))
    code, err = _cli(capsys, "simulate", str(path))
    assert code == 2 and err.startswith("wsgiscope: machine.switch_interval_ms: 0.05 ms")
    assert simulator.presets.get("dev-single-thread")  # the presets are untouched
