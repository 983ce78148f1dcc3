"""The guards of a local server that runs things: allowed hosts (DNS rebinding), same origin
for the WebSocket and every state-changing request, the lab's token and loopback rule, the
lab's cost bounds."""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any

import pytest
from wsgiscope.app import create_app, security
from wsgiscope.app.lab import web as lab_web

TOKEN = "t0ken-" + "x" * 40
QUICK = {
    "name": "three quick requests",
    "server": {"kind": "werkzeug", "threaded": True},
    "endpoints": {"/sleep": [{"io_ms": 50}]},
    "workload": [{"at_ms": 0, "count": 3, "path": "/sleep"}],
}
WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}


@pytest.fixture()
def lab_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app with the lab on; a started run only records that it was started."""
    started: list[dict[str, Any]] = []

    def fake_execute(lab: Any, entry: Any, plan: dict[str, Any]) -> None:
        started.append(plan)
        entry.state, entry.progress, entry.result = "done", 1.0, {"trace": {}}
        with lab.lock:
            lab.active = None

    monkeypatch.setattr(lab_web, "_execute", fake_execute)
    app = create_app({"TESTING": True, "LAB_ENABLED": True, "LAB_TOKEN": TOKEN})
    app.started = started
    return app


def _post_run(client: Any, scenario: Any = QUICK, **kw: Any) -> Any:
    return client.post("/lab/run", data={"scenario": json.dumps(scenario)}, **kw)


# --- hosts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000",
                                  "LOCALHOST:1"])
def test_loopback_hosts_are_allowed(client: Any, host: str) -> None:
    assert client.get("/", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                                  "localhost@evil.example", "[::2]:8000", ""])
def test_a_foreign_host_is_refused_everywhere(client: Any, host: str) -> None:
    for path in ("/", "/static/js/main.js", "/lab/status/abc", "/export/scenario.json"):
        resp = client.get(path, headers={"Host": host})
        assert resp.status_code == 403, (path, host)
        text = resp.get_data(as_text=True)
        assert "DNS rebinding" in text and "--allow-host" in text
        assert text.count("\n") <= 1


def test_allowed_hosts_setting_and_wildcard() -> None:
    app = create_app({"TESTING": True, "ALLOWED_HOSTS": ["wsgiscope.lan"]})
    client = app.test_client()
    assert client.get("/", headers={"Host": "wsgiscope.lan:8000"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost"}).status_code == 403
    anyhost = create_app({"TESTING": True, "ALLOWED_HOSTS": ["*"]}).test_client()
    assert anyhost.get("/", headers={"Host": "whatever.example"}).status_code == 200


def test_serve_allows_its_own_host_and_the_named_ones() -> None:
    config = security.serve_config("192.168.1.5", ["class.lan", "[fe80::1]"], False, "tok")
    assert config["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "::1", "192.168.1.5",
                                       "class.lan", "fe80::1"]
    assert config["LAB_TOKEN"] == "tok" and config["LAB_REMOTE"] is False
    assert security.serve_config("0.0.0.0", None, True)["ALLOWED_HOSTS"] == [
        "localhost", "127.0.0.1", "::1"]
    assert len(security.serve_config("127.0.0.1", None, False)["LAB_TOKEN"]) >= 32
    assert security.page_url("127.0.0.1", 8000, "abc") == "http://127.0.0.1:8000/?token=abc"
    assert security.page_url("::1", 8000, "abc") == "http://[::1]:8000/?token=abc"
    assert security.page_url("0.0.0.0", 80, "abc") == "http://127.0.0.1:80/?token=abc"


# --- origins ---------------------------------------------------------------------------------


FORM = {"server.kind": "werkzeug", "endpoints": '{"/a": [{"io_ms": 1}]}',
        "workload": '[{"count": 1, "path": "/a"}]'}


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://localhost:8001"},  # another port is another origin
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Referer": "http://evil.example/page"},
])
@pytest.mark.parametrize("path", ["/simulate", "/scenario/import", "/api/timeline", "/lab/run"])
def test_a_cross_origin_post_is_refused(lab_app: Any, headers: dict[str, str], path: str) -> None:
    client = lab_app.test_client()
    resp = client.post(path, data=FORM, headers={**headers, security.TOKEN_HEADER: TOKEN})
    assert resp.status_code == 403
    assert "refused" in resp.get_data(as_text=True)
    assert lab_app.started == []


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://localhost"},
                                     {"Origin": "https://localhost"},  # behind TLS
                                     {"Sec-Fetch-Site": "same-origin"},
                                     {"Referer": "http://localhost/?preset=x"}])
def test_a_same_origin_post_passes(client: Any, headers: dict[str, str]) -> None:
    assert client.post("/simulate", data=FORM, headers=headers).status_code == 200


@pytest.mark.parametrize(("host", "origin", "ok"), [
    ("127.0.0.1:8000", "http://127.0.0.1:8000", True),
    ("127.0.0.1:8000", "http://127.0.0.1:8001", False),
    ("127.0.0.1:8000", "http://localhost:8000", False),
    ("[::1]:8000", "http://[::1]:8000", True),
    ("localhost", "https://localhost:8443", False),
])
def test_the_origin_must_name_the_host_and_port_the_page_came_from(
    client: Any, host: str, origin: str, ok: bool
) -> None:
    resp = client.post("/simulate", data=FORM, headers={"Host": host, "Origin": origin})
    assert (resp.status_code == 200) is ok


def test_allowed_origins_setting() -> None:
    app = create_app({"TESTING": True, "ALLOWED_ORIGINS": ["https://teach.example"]})
    client = app.test_client()
    ok = client.post("/simulate", data=FORM, headers={"Origin": "https://teach.example"})
    assert ok.status_code == 200
    bad = client.post("/simulate", data=FORM, headers={"Origin": "http://teach.example"})
    assert bad.status_code == 403


def test_a_cross_origin_websocket_upgrade_is_refused_before_the_handshake(client: Any) -> None:
    resp = client.get("/ws", headers={**WS_HEADERS, "Origin": "http://evil.example"})
    assert resp.status_code == 403
    assert "Sec-WebSocket-Accept" not in resp.headers


def _raw_upgrade(address: str, origin: str, host: str | None = None) -> str:
    host_name, port = address.rsplit(":", 1)
    request = (f"GET /ws HTTP/1.1\r\nHost: {host or address}\r\nOrigin: {origin}\r\n"
               + "".join(f"{k}: {v}\r\n" for k, v in WS_HEADERS.items()) + "\r\n")
    with socket.create_connection((host_name, int(port)), timeout=10) as s:
        s.sendall(request.encode())
        return s.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def test_the_live_server_guards_its_websocket(live_server: str) -> None:
    assert " 101 " in _raw_upgrade(live_server, f"http://{live_server}")
    assert " 403 " in _raw_upgrade(live_server, "http://evil.example")
    assert " 403 " in _raw_upgrade(live_server, "http://evil.example",
                                   host="evil.example:" + live_server.rsplit(":", 1)[1])


# --- the lab ---------------------------------------------------------------------------------


def test_the_lab_without_the_token_is_refused(lab_app: Any) -> None:
    client = lab_app.test_client()
    for resp in (_post_run(client), _post_run(client, headers={security.TOKEN_HEADER: "wrong"}),
                 client.get("/lab/status/abc")):
        assert resp.status_code == 403
        assert "token" in resp.get_json()["error"]
    assert lab_app.started == []


def test_the_lab_with_the_token_header_is_accepted(lab_app: Any) -> None:
    client = lab_app.test_client()
    resp = _post_run(client, headers={security.TOKEN_HEADER: TOKEN})
    assert resp.status_code == 202, resp.get_json()
    run_id = resp.get_json()["run_id"]
    assert len(lab_app.started) == 1
    status = client.get(f"/lab/status/{run_id}", headers={security.TOKEN_HEADER: TOKEN})
    assert status.get_json()["state"] == "done"


def test_opening_the_token_address_sets_a_strict_httponly_cookie(lab_app: Any) -> None:
    client = lab_app.test_client()
    resp = client.get(f"/?preset=dev-threaded&token={TOKEN}")
    assert resp.status_code == 303  # to the address without the token
    assert resp.headers["Location"] == "/?preset=dev-threaded"
    assert client.get("/?token=" + TOKEN).headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"wsgiscope-token={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # the page's own requests now carry it
    assert _post_run(client, headers={"Origin": "http://localhost"}).status_code == 202
    # a wrong token sets nothing and shows the page
    wrong = lab_app.test_client().get("/?token=nope")
    assert wrong.status_code == 200 and "Set-Cookie" not in wrong.headers


def test_the_cookie_is_per_port(lab_app: Any) -> None:
    resp = lab_app.test_client().get(f"/?token={TOKEN}", headers={"Host": "127.0.0.1:8123"})
    assert resp.headers["Set-Cookie"].startswith("wsgiscope-token-8123=")


@pytest.mark.parametrize("environ", [
    {"REMOTE_ADDR": "10.1.2.3"},
    {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
    {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.9"},
    {"REMOTE_ADDR": "::1", "HTTP_X_REAL_IP": "203.0.113.9"},
])
def test_the_lab_is_not_for_remote_or_proxied_requests(
    lab_app: Any, environ: dict[str, str]
) -> None:
    client = lab_app.test_client()
    resp = _post_run(client, headers={security.TOKEN_HEADER: TOKEN}, environ_base=environ)
    assert resp.status_code == 403
    assert "--allow-lab" in resp.get_json()["error"]
    assert lab_app.started == []
    # --allow-lab lets them in, with the token only
    lab_app.config["LAB_REMOTE"] = True
    assert _post_run(client, environ_base=environ).status_code == 403
    resp = _post_run(client, headers={security.TOKEN_HEADER: TOKEN}, environ_base=environ)
    assert resp.status_code == 202


def test_a_disabled_lab_still_says_so(client: Any) -> None:
    resp = _post_run(client)
    assert resp.status_code == 403
    assert "--allow-lab" in resp.get_json()["error"]


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"server": {"kind": "gunicorn", "workers": 64}}, "server.workers", "at most 8 worker"),
    ({"server": {"kind": "werkzeug", "threaded": False, "processes": 9}}, "server.processes",
     "at most 8 worker"),
    ({"server": {"kind": "gunicorn", "workers": 4, "threads": 32}}, "server.threads",
     "at most 64 threads"),
    ({"endpoints": {"/sleep": [{"io_ms": 40_000}]}}, "endpoints./sleep", "at most 30 s"),
    ({"endpoints": {"/sleep": [{"cpu_ms": 500}]},
      "workload": [{"count": 200, "path": "/sleep"}]}, "workload", "at most 60 s of CPU work"),
    ({"machine": {"switch_interval_ms": 0.001}, "endpoints": {"/sleep": [{"cpu_ms": 20_000}]},
      "workload": [{"count": 2, "path": "/sleep"}]}, "machine.switch_interval_ms", "hand-overs"),
])
def test_a_costly_lab_run_is_refused_naming_the_field(
    lab_app: Any, change: dict[str, Any], field: str, words: str
) -> None:
    client = lab_app.test_client()
    resp = _post_run(client, {**QUICK, **change}, headers={security.TOKEN_HEADER: TOKEN})
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["field"] == field
    assert words in body["error"]
    assert "\n" not in body["error"]
    assert lab_app.started == []
