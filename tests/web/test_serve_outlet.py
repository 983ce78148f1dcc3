"""A viewer's outlet on a real socket pair: writes never block, a viewer that reads gets
every byte in order, one that stops reading is found behind and then dropped."""

from __future__ import annotations

import json
import socket
import struct
import time
import types

import pytest
from wsgiscope.app.outlet import HIGH_WATER, PLAIN_MAX, Outlet, ViewerGone
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request


def websocket_pair():
    """A server-side wsproto connection, open, as simple-websocket's Server holds it."""
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="x", target="/ws")))
    for event in server.events():
        if isinstance(event, Request):
            client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    return server, client


@pytest.fixture()
def pair():
    here, there = socket.socketpair()
    here.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    there.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024)
    server, client = websocket_pair()
    ws = types.SimpleNamespace(sock=here, ws=server, connected=True)
    yield ws, there, client
    here.close()
    there.close()


def read_messages(sock, client, want, timeout=5.0):
    sock.settimeout(timeout)
    out = []
    while len(out) < want:
        client.receive_data(sock.recv(1 << 16))
        out += [e.data for e in client.events() if hasattr(e, "data")]
    return out


def test_small_messages_go_plain_and_large_ones_compressed_framing_in_order(pair):
    ws, there, client = pair
    outlet = Outlet(ws, send_timeout_s=1)
    small, large = "x" * 10, json.dumps(list(range(2000)))
    assert len(large) > PLAIN_MAX
    outlet.send(small)
    assert there.recv(2) == struct.pack("!BB", 0x81, 10)  # final text frame, no RSV1
    assert there.recv(10) == b"x" * 10
    outlet.send(large)
    outlet.send(small)
    outlet.drain()
    assert read_messages(there, client, 2) == [large, small]


def test_a_viewer_that_stops_reading_is_behind_then_dropped(pair):
    ws, there, _ = pair
    outlet = Outlet(ws, send_timeout_s=0.3)
    chunk = "y" * 60_000
    while not outlet.look():  # writes never block: what the kernel refuses waits here
        outlet.send(chunk)
    assert outlet.pending or outlet.unsent() > HIGH_WATER
    with pytest.raises(ViewerGone, match="took nothing for 0.3 s"):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            outlet.look()
            time.sleep(0.05)
    outlet.drop()
    assert not ws.connected and outlet.pending == b""


def test_an_answer_that_cannot_leave_in_time_drops_the_viewer(pair):
    ws, _, _ = pair
    outlet = Outlet(ws, send_timeout_s=0.3)
    for _ in range(20):
        outlet.send("z" * 60_000)
    t0 = time.monotonic()
    with pytest.raises(ViewerGone, match="took more than 0.3 s to send"):
        outlet.drain()
    assert time.monotonic() - t0 < 3


def test_a_fake_socket_is_written_as_it_is():
    sent = []
    outlet = Outlet(types.SimpleNamespace(send=sent.append))
    outlet.send("hello")
    assert sent == ["hello"] and outlet.look() is False
