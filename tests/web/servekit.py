"""Helpers for the serving tests: ``wsgiscope serve`` with flags, a throwaway
``redis-server``, ``/healthz``, and a bare WebSocket client that can stop reading."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session, and everything it started."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
        return resp.status, resp.read()


def healthz(address: str) -> dict[str, Any]:
    return json.loads(get(f"http://{address}/healthz")[1])  # type: ignore[no-any-return]


@contextmanager
def serve(log: Path, *args: str, limit_s: float = 30.0) -> Iterator[str]:
    """``wsgiscope serve ARGS`` on a free loopback port; yields ``127.0.0.1:PORT`` once
    ``/healthz`` answers; always stops the whole process group."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsgiscope.app.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), *args],
            cwd=ROOT, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
        )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + limit_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            try:
                healthz(address)
                break
            except OSError:
                time.sleep(0.1)
        yield address
    finally:
        _stop(proc)


@contextmanager
def redis_server(workdir: Path, limit_s: float = 10.0) -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port (no persistence, 256 MB at
    most); yields its URL; always stopped. Skips the test when redis-server is missing."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    pytest.importorskip("redis")
    import redis

    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--maxmemory", "256mb", "--dir", str(workdir), "--protected-mode", "yes"],
        cwd=workdir, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + limit_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            try:
                redis.Redis.from_url(url, socket_timeout=1).ping()
                break
            except (redis.RedisError, OSError):
                time.sleep(0.05)
        yield url
    finally:
        _stop(proc)


# --- a bare WebSocket client ------------------------------------------------------------------


def ws_connect(address: str, rcvbuf: int | None = None, timeout: float = 10.0) -> socket.socket:
    """Open ``/ws`` without compression and return the socket after the handshake.
    ``rcvbuf`` shrinks the receive buffer (set before connecting, so the window stays small)."""
    host, port = address.rsplit(":", 1)
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: http://{address}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: leave any frame after the head in the socket
        if not chunk:
            raise ConnectionError("the server closed the connection during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode(errors="replace").splitlines()[0])
    return sock


def ws_send(sock: socket.socket, text: str) -> None:
    """Send one masked text frame."""
    data = text.encode()
    mask = os.urandom(4)
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    sock.sendall(head + mask + masked)


def ws_receive(sock: socket.socket) -> tuple[int, bytes]:
    """One frame from the server (unmasked, not compressed): (opcode, payload)."""

    def exactly(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            out += chunk
        return out

    b0, b1 = exactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", exactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", exactly(8))
    return b0 & 0x0F, exactly(n)


class FakeSocket:
    """Stands in for a WebSocket: keeps every message the server sends, decoded."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def take(self, kind: str) -> list[dict[str, Any]]:
        out = [m for m in self.sent if m["type"] == kind]
        self.sent = [m for m in self.sent if m["type"] != kind]
        return out


def next_of(ws: Any, kind: str, timeout: float, fail_on_error: bool = False) -> dict:
    """The next message of type ``kind`` on a live socket, skipping others (an ``error``
    message fails the test when ``fail_on_error``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if text is None:
            break
        msg = json.loads(text)
        if msg["type"] == kind:
            return msg
        if fail_on_error and msg["type"] == "error":
            raise AssertionError(msg["error"])
    raise AssertionError(f"no {kind} message within {timeout} s")
