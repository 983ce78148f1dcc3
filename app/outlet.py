"""A viewer's way out: every send has a deadline, and a viewer that stops reading is dropped.

A WebSocket server that writes with a plain blocking ``send`` lets one viewer who stops
reading (a closed laptop lid, a hostile script) hold a worker and the memory of its run for
as long as TCP keeps the connection, minutes after the viewer is gone. Here:

* The kernel's send buffer of each socket is bounded (``SO_SNDBUF``), and it is the only
  queue a viewer has: the session makes a frames message only when the previous ones have
  left (:meth:`Outlet.behind` reads the unsent bytes with ``SIOCOUTQ``), so a slow viewer
  costs at most one buffer and one message, never a growing queue.
* A send that cannot finish within ``send_timeout_s`` drops the viewer, and so does a
  socket whose unsent bytes have not gone down for that long (a vanished peer, or a
  reader that stopped): :meth:`Outlet.stalled`.
* Dropping shuts the socket down, which also frees the socket's reader (simple-websocket's
  background greenlet or thread, possibly stuck sending a ping); the session ends, and
  with it the viewer's hold on its run.
* A small message (a playing viewer's frames, 30 times a second) goes out uncompressed, as
  permessage-deflate allows per message (RFC 7692, section 6): compressing a few hundred
  bytes cost more CPU than anything else in sending it; larger ones are compressed.

Under gevent the deadline is a ``gevent.Timeout`` around ``sendall``; with threads, a
non-blocking ``send`` and ``poll`` for room.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import select
import socket
import struct
import time
from typing import Any

from wsproto.events import TextMessage

#: ioctl: bytes in a socket's send queue not yet acknowledged by the peer (Linux).
SIOCOUTQ = 0x5411
#: The kernel send buffer asked for each viewer's socket (Linux doubles it).
SEND_BUFFER = 256 * 1024
#: Unsent bytes above which a viewer is behind: no new frames until they drain.
HIGH_WATER = 128 * 1024
#: Messages up to this size go out uncompressed.
PLAIN_MAX = 1024


class ViewerGone(Exception):
    """The viewer is not reading (or has gone): drop it."""


class Outlet:
    """Sends text messages on a flask-sock socket, within a deadline.

    Anything without simple-websocket's ``sock`` and ``ws`` (a test's fake socket) is
    sent to as it is, and never counts as behind.
    """

    def __init__(self, ws: Any, send_timeout_s: float = 10.0) -> None:
        self.ws = ws
        self.send_timeout_s = send_timeout_s
        sock = getattr(ws, "sock", None)
        self.sock: socket.socket | None = sock if hasattr(ws, "ws") else None
        self._gevent = type(sock).__module__.startswith("gevent")
        self._progress_at = time.monotonic()
        self._written = 0  # bytes this outlet has handed to the kernel
        self._consumed = 0  # of which the peer had acknowledged at the last look
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

    # -- sending ------------------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.sock is None:
            self.ws.send(text)
            return
        if not self.ws.connected:
            raise ViewerGone("the socket is closed")
        if len(text) <= PLAIN_MAX:
            data = _text_frame(text.encode())
        else:
            data = self.ws.ws.send(TextMessage(data=text))  # framed and compressed by wsproto
        try:
            if self._gevent:
                self._sendall_gevent(data)
            else:
                self._sendall_threads(data)
        except OSError as exc:
            raise ViewerGone(str(exc)) from None
        self._written += len(data)

    def _sendall_gevent(self, data: bytes) -> None:
        import gevent

        assert self.sock is not None
        done = False
        with gevent.Timeout(self.send_timeout_s, False):
            self.sock.sendall(data)
            done = True
        if not done:
            raise ViewerGone(f"a message took more than {self.send_timeout_s:g} s to send")

    def _sendall_threads(self, data: bytes) -> None:
        assert self.sock is not None
        deadline = time.monotonic() + self.send_timeout_s
        view = memoryview(data)
        poller = None
        while view:
            try:
                n = self.sock.send(view, socket.MSG_DONTWAIT)
            except BlockingIOError:
                n = 0
            view = view[n:]
            if not view:
                break
            left = deadline - time.monotonic()
            if poller is None:
                poller = select.poll()
                poller.register(self.sock, select.POLLOUT)
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                raise ViewerGone(f"a message took more than {self.send_timeout_s:g} s to send")

    # -- watching the kernel's queue -------------------------------------------------------
    def unsent(self) -> int:
        """Bytes the kernel still holds for this viewer (0 if unknown)."""
        if self.sock is None:
            return 0
        buf = array.array("i", [0])
        try:
            fcntl.ioctl(self.sock.fileno(), SIOCOUTQ, buf, True)
        except (OSError, ValueError):
            return 0
        return buf[0]

    def look(self) -> bool:
        """One look at the kernel's queue: whether the viewer is behind (more than
        :data:`HIGH_WATER` bytes still to read). Raises :class:`ViewerGone` when bytes have
        waited ``send_timeout_s`` with the peer taking none of them."""
        now = time.monotonic()
        unsent = self.unsent()
        consumed = self._written - unsent
        if unsent == 0 or consumed > self._consumed:
            self._progress_at = now
            self._consumed = max(consumed, self._consumed)
        elif now - self._progress_at > self.send_timeout_s:
            raise ViewerGone(f"the viewer took nothing for {self.send_timeout_s:g} s")
        return unsent > HIGH_WATER

    def drop(self) -> None:
        """Close the connection at once, without waiting for the viewer."""
        if self.sock is None:
            return
        self.ws.connected = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


def _text_frame(payload: bytes) -> bytes:
    """One unmasked, uncompressed, final text frame (a server's)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload
