"""The load driver sleeps between sends instead of polling: it shares the cores with the
server it measures."""

from __future__ import annotations

import json
import selectors
import socket
import threading
from pathlib import Path

import pytest
from wsgiscope.app.lab import driver

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def _responder(listener: socket.socket, n: int, peers: list[str] | None = None) -> None:
    """Answer ``n`` connections at once (no server stage to wait for)."""
    for _ in range(n):
        conn, addr = listener.accept()
        if peers is not None:
            peers.append(addr[0])
        with conn:
            conn.recv(4096)
            conn.sendall(RESPONSE)


def test_driver_sleeps_between_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    polls = 0
    base = selectors.DefaultSelector

    class Counting(base):  # type: ignore[valid-type,misc]
        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            nonlocal polls
            polls += 1
            found: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
            return found

    monkeypatch.setattr(driver.selectors, "DefaultSelector", Counting)
    n, gap_ms = 40, 5.0
    with socket.create_server(("127.0.0.1", 0)) as listener:
        serving = threading.Thread(target=_responder, args=(listener, n), daemon=True)
        serving.start()
        plan = {
            "port": listener.getsockname()[1],
            "timeout_s": 10,
            "start_in_ms": 20,
            "requests": [
                {"id": i, "at_ms": i * gap_ms, "path": "/", "segments": None} for i in range(n)
            ],
        }
        out = tmp_path / "driver.jsonl"
        assert driver.run(plan, str(out)) == 0
        serving.join(timeout=5)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    recs = [r for r in lines if "id" in r]
    assert len(recs) == n and all(r["status"] == "ok" for r in recs)
    late = sorted(r["connect"] - r["planned"] for r in recs)
    assert late[0] >= 0.0  # never early
    # Polling the last millisecond before each send, as it once did, made about 80 polls a
    # request 5 ms apart; sleeping until SPIN_MS before it makes about 4 here (the connect,
    # the response, the sleep's end, the short spin), and at most about 20 where the sleep
    # ends early in its 0.1 ms and each poll takes 5 us.
    assert polls < 40 * n, f"{polls / n:.0f} polls a request"


def test_clients_connect_from_the_plans_fresh_address(tmp_path: Path) -> None:
    """Each run's clients come from an address of their own, so what the kernel learned of
    one run's connections (tcp_metrics) does not carry into the next."""
    sources = {driver.fresh_source() for _ in range(20)}
    assert len(sources) > 1
    for source in sources:
        parts = [int(p) for p in source.split(".")]
        assert len(parts) == 4 and parts[0] == 127 and source != "127.0.0.1"
        assert all(0 <= p <= 255 for p in parts)
    source = sorted(sources)[0]
    peers: list[str] = []
    n = 3
    with socket.create_server(("127.0.0.1", 0)) as listener:
        serving = threading.Thread(target=_responder, args=(listener, n, peers), daemon=True)
        serving.start()
        plan = {
            "port": listener.getsockname()[1],
            "timeout_s": 10,
            "start_in_ms": 10,
            "source": source,
            "requests": [{"id": i, "at_ms": 0.0, "path": "/", "segments": None} for i in range(n)],
        }
        out = tmp_path / "driver.jsonl"
        assert driver.run(plan, str(out)) == 0
        serving.join(timeout=5)
    assert peers == [source] * n


def test_an_address_the_machine_lacks_falls_back_to_the_default(tmp_path: Path) -> None:
    """Where only 127.0.0.1 is loopback (not Linux), binding fails and the run goes on."""
    peers: list[str] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        serving = threading.Thread(target=_responder, args=(listener, 2, peers), daemon=True)
        serving.start()
        plan = {
            "port": listener.getsockname()[1],
            "timeout_s": 10,
            "start_in_ms": 10,
            "source": "192.0.2.1",  # documentation range: never this machine's
            "requests": [{"id": i, "at_ms": 0.0, "path": "/", "segments": None} for i in range(2)],
        }
        out = tmp_path / "driver.jsonl"
        assert driver.run(plan, str(out)) == 0
        serving.join(timeout=5)
    assert peers == ["127.0.0.1", "127.0.0.1"]
