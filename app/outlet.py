"""A viewer's way out: writes never block the sender, and a viewer that stops reading is
dropped.

A WebSocket server that writes with a plain blocking ``send`` lets one viewer who stops
reading (a closed laptop lid, a hostile script) hold a worker and the memory of its run for
as long as TCP keeps the connection, minutes after the viewer is gone. Here:

* Writes are non-blocking. What the kernel does not take at once waits in the outlet's
  ``pending`` bytes, and nothing new is made for the viewer until they are gone: the
  pacer (:mod:`.stream`) skips a viewer that is behind, and the viewer's own handler
  waits (:meth:`Outlet.drain`, at most ``send_timeout_s``) before it reads the next
  message. So a slow viewer costs one bounded kernel buffer (``SO_SNDBUF``) and at most
  one message or one answer of its own, never a growing queue.
* :meth:`Outlet.look` reads the kernel's unsent bytes (``SIOCOUTQ``): more than
  :data:`HIGH_WATER` means the viewer is behind; bytes that have waited ``send_timeout_s``
  with the peer acknowledging none of them (a reader that stopped, a vanished peer, whose
  keep-alive pings pile up) drop the viewer with :class:`ViewerGone`.
* Dropping shuts the socket down, which also ends the socket's reader (simple-websocket's
  background greenlet or thread); the handler ends, and with it the viewer's hold on its
  run.
* A small message (a playing viewer's frames, 30 times a second) goes out uncompressed, as
  permessage-deflate allows per message (RFC 7692, section 6): compressing a few KB cost
  more CPU than anything else in sending them; larger ones are compressed.

All writes of a socket go through its outlet, keep-alive pings included (simple-websocket's
own pinger is turned off), so a frame is never interleaved with another's bytes. The
outlet's ``lock`` is held by whoever writes: the viewer's handler or the pacer.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import select
import socket
import struct
import threading
import time
from typing import Any

from wsproto.events import Ping, TextMessage

#: ioctl: bytes in a socket's send queue not yet acknowledged by the peer (Linux).
SIOCOUTQ = 0x5411
#: The kernel send buffer asked for each viewer's socket (Linux doubles it).
SEND_BUFFER = 256 * 1024
#: Unsent bytes above which a viewer is behind: no new frames until they drain.
HIGH_WATER = 128 * 1024
#: Messages up to this size go out uncompressed: a playing viewer's frames (a few hundred
#: bytes to a few KB a message), and the larger catch-up messages of a pacer that is late
#: under load, when compressing them would only make it later. A start, a seek, a run at
#: full speed are compressed.
PLAIN_MAX = 4096


class ViewerGone(Exception):
    """The viewer is not reading (or has gone): drop it."""


class Outlet:
    """Writes text messages to a flask-sock socket without blocking (see the module).

    Anything without simple-websocket's ``sock`` and ``ws`` (a test's fake socket) is
    sent to as it is, and never counts as behind.
    """

    def __init__(self, ws: Any, send_timeout_s: float = 10.0) -> None:
        self.ws = ws
        self.send_timeout_s = send_timeout_s
        self.lock = threading.Lock()
        self.pending = b""
        sock = getattr(ws, "sock", None)
        self.sock: socket.socket | None = sock if hasattr(ws, "ws") else None
        self._progress_at = time.monotonic()
        self._written = 0  # bytes the kernel has taken from this outlet
        self._consumed = 0  # of which the peer had acknowledged at the last look
        self._fd = -1
        self._plain_fd = False
        if self.sock is not None:
            self._fd = self.sock.fileno()
            # gevent keeps the descriptor non-blocking: write(2) on it never waits. A real
            # blocking socket (gthread, the development server) is written with MSG_DONTWAIT.
            self._plain_fd = not os.get_blocking(self._fd)
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

    # -- writing ------------------------------------------------------------------------
    def send(self, text: str) -> None:
        """Frame ``text`` and write what the kernel takes now; keep the rest pending."""
        if self.sock is None:
            self.ws.send(text)
            return
        if len(text) <= PLAIN_MAX:
            data = _text_frame(text.encode())
        else:
            data = self.ws.ws.send(TextMessage(data=text))  # framed and compressed by wsproto
        self.write(data)

    def ping(self) -> None:
        """A keep-alive ping; a peer that never takes it is dropped by :meth:`look`."""
        if self.sock is not None:
            self.write(self.ws.ws.send(Ping()))

    def write(self, data: bytes) -> None:
        if not self.ws.connected:
            raise ViewerGone("the socket is closed")
        if self.pending:
            self.pending += data
            self.flush()
            return
        n = self._write_some(data)
        if n < len(data):
            self.pending = data[n:]

    def flush(self) -> bool:
        """Write what is pending, as far as the kernel takes it now; True when none is left."""
        if self.pending:
            n = self._write_some(self.pending)
            self.pending = self.pending[n:]
        return not self.pending

    def drain(self) -> None:
        """Wait until nothing is pending, at most ``send_timeout_s`` without progress."""
        if not self.pending:
            return
        assert self.sock is not None
        poller = select.poll()  # gevent's cooperative poll when monkey-patched
        poller.register(self._fd, select.POLLOUT)
        while not self.flush():
            left = self._progress_at + self.send_timeout_s - time.monotonic()
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                raise ViewerGone(f"a message took more than {self.send_timeout_s:g} s to send")

    def _write_some(self, data: bytes) -> int:
        try:
            if self._plain_fd:
                n = os.write(self._fd, data)
            else:
                assert self.sock is not None
                n = self.sock.send(data, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            raise ViewerGone(str(exc)) from None
        if n:
            self._written += n
            self._progress_at = time.monotonic()
        return n

    # -- watching the kernel's queue -------------------------------------------------------
    def unsent(self) -> int:
        """Bytes the kernel still holds for this viewer (0 if unknown)."""
        if self.sock is None:
            return 0
        buf = array.array("i", [0])
        try:
            fcntl.ioctl(self._fd, SIOCOUTQ, buf, True)
        except (OSError, ValueError):
            return 0
        return buf[0]

    def look(self) -> bool:
        """One look at the kernel's queue: whether the viewer is behind (bytes pending here,
        or more than :data:`HIGH_WATER` in the kernel). Raises :class:`ViewerGone` when bytes
        have waited ``send_timeout_s`` with the peer taking none of them."""
        if self.sock is None:
            return False
        now = time.monotonic()
        unsent = self.unsent()
        consumed = self._written - unsent
        if (unsent == 0 and not self.pending) or consumed > self._consumed:
            self._progress_at = now
            self._consumed = max(consumed, self._consumed)
        elif now - self._progress_at > self.send_timeout_s:
            raise ViewerGone(f"the viewer took nothing for {self.send_timeout_s:g} s")
        return bool(self.pending) or unsent > HIGH_WATER

    def drop(self) -> None:
        """Close the connection at once, without waiting for the viewer."""
        self.pending = b""
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
