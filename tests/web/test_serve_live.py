"""``wsgiscope serve`` with a class at once (gevent workers, a simulation pool): idle sockets
do not block the page, a heavy simulation does not stall other viewers, identical starts
cost one simulation, a viewer that stops reading is dropped and its run freed."""

from __future__ import annotations

import json
import threading
import time

import pytest
import servekit
import simple_websocket
from servekit import get, healthz, serve, ws_connect, ws_receive, ws_send
from wsgiscope import simulator


def lesson(name: str) -> dict:
    return simulator.presets.get(name).scenario


def heavy(seed: int) -> dict:
    """A scenario that takes the engine a second or more (about 2,000 requests)."""
    sc = json.loads(json.dumps(lesson("gthread-poisson")))
    sc["workload"][0]["poisson"]["rate_per_s"] = 200
    return sc


def client(address: str) -> simple_websocket.Client:
    # No Origin: simple-websocket's Host header has no port, so no Origin could match it.
    return simple_websocket.Client.connect(f"ws://{address}/ws")


def next_of(ws: simple_websocket.Client, kind: str, timeout: float = 60.0) -> dict:
    return servekit.next_of(ws, kind, timeout, fail_on_error=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("serve") / "server.log") as address:
        yield address


def test_a_hundred_idle_sockets_leave_the_page_and_the_next_viewer_served(server):
    socks = []
    try:
        for _ in range(100):
            socks.append(ws_connect(server))
        assert healthz(server)["viewers"] >= 100
        status, page = get(f"http://{server}/", timeout=10)
        assert status == 200 and b"<canvas" in page
        ws = client(server)
        try:
            ws.send(json.dumps({"op": "start", "scenario": lesson("dev-single-thread"),
                                "speed": "max", "play": True}))
            assert next_of(ws, "end")["n_frames"] > 0
        finally:
            ws.close()
    finally:
        for s in socks:
            s.close()


def test_identical_starts_cost_one_simulation(server):
    before = healthz(server)["runs"]
    start = json.dumps({"op": "start", "scenario": lesson("gunicorn-gthread-1x4"),
                        "seed": 424242})
    viewers = [client(server) for _ in range(8)]
    try:
        for ws in viewers:  # all eight ask before any answer comes
            ws.send(start)
        keys = {next_of(ws, "meta")["key"] for ws in viewers}
        assert len(keys) == 1
        later = client(server)  # and a latecomer gets it from the cache
        later.send(start)
        assert next_of(later, "meta")["key"] in keys
        later.close()
    finally:
        for ws in viewers:
            ws.close()
    after = healthz(server)["runs"]
    assert after["simulations"] - before["simulations"] == 1
    assert after["cache"]["hits"] > before["cache"]["hits"]


def test_a_heavy_simulation_does_not_stall_another_viewers_frames(server):
    """Viewer A plays at 1x while B asks for three heavy runs. If a simulation ran where
    sockets are served, A's longest gap would be as long as a simulation; it must stay a
    small fraction of it."""
    a = client(server)
    arrivals: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            text = a.receive(timeout=0.5)
            if text is not None and json.loads(text)["type"] == "frames":
                arrivals.append(time.monotonic())

    a.send(json.dumps({"op": "start", "scenario": lesson("mm8-queue"), "play": True,
                       "speed": 1}))
    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    b = client(server)
    try:
        time.sleep(1.0)  # A is playing
        durations = []
        window = time.monotonic()
        for seed in (1, 2, 3):
            t0 = time.monotonic()
            b.send(json.dumps({"op": "start", "scenario": heavy(seed), "seed": seed}))
            while next_of(b, "meta", timeout=120).get("partial"):
                pass  # a large run's head comes first: wait for the whole run
            durations.append(time.monotonic() - t0)
        end = time.monotonic()
    finally:
        stop.set()
        reader.join(timeout=5)
        a.close()
        b.close()
    during = [t for t in arrivals if window <= t <= end]
    gaps = [y - x for x, y in zip(during, during[1:], strict=False)]
    assert len(gaps) > 10, "viewer A got no frames while B's runs were simulated"
    assert max(gaps) / min(durations) < 0.5, (max(gaps), durations)


def test_a_viewer_that_stops_reading_is_dropped_and_its_run_freed(tmp_path):
    with serve(tmp_path / "server.log", "--send-timeout", "1", "--cache-mb", "0") as address:
        sock = ws_connect(address, rcvbuf=4096)
        try:
            # about 1.8 MB of frames at full speed, and this client reads none of it
            ws_send(sock, json.dumps({"op": "start", "scenario": lesson("gevent-io"),
                                      "speed": "max", "play": True}))
            deadline = time.monotonic() + 30
            while True:
                h = healthz(address)
                if h["viewers_dropped"] == 1 and h["viewers"] == 0:
                    break
                assert time.monotonic() < deadline, h
                time.sleep(0.2)
            assert h["runs"]["runs_alive"] == 0  # nothing holds the run any more
            # the server has closed the connection: what is buffered ends, then EOF or reset
            sock.settimeout(10)
            try:
                while sock.recv(1 << 16):
                    pass
            except ConnectionResetError:
                pass
            except TimeoutError:
                raise AssertionError("the server kept the connection open") from None
            # and the server goes on serving others
            ws = client(address)
            ws.send(json.dumps({"op": "start", "scenario": lesson("dev-single-thread")}))
            assert next_of(ws, "meta")["n_requests"] == 10
            ws.close()
        finally:
            sock.close()


def test_a_full_server_says_so_and_serves_the_page(tmp_path):
    with serve(tmp_path / "server.log", "--max-viewers", "2") as address:
        socks = [ws_connect(address) for _ in range(2)]
        try:
            third = ws_connect(address)
            opcode, payload = ws_receive(third)
            msg = json.loads(payload)
            assert opcode == 1 and msg["type"] == "error"
            assert "this server is full (2 viewers)" in msg["error"]
            assert ws_receive(third)[0] == 8  # then the server closes the socket
            third.close()
            assert get(f"http://{address}/")[0] == 200
            assert healthz(address)["viewers_refused"] == 1
        finally:
            for s in socks:
                s.close()
