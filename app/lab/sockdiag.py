"""Listening TCP sockets and their accept queues, asked of the kernel over sock_diag.

The kernel answers a ``SOCK_DIAG_BY_FAMILY`` dump (netlink, ``linux/inet_diag.h``)
restricted to the LISTEN state from its table of listeners alone; for a listener,
``idiag_rqueue`` is the number of complete connections waiting for ``accept()``
(``sk_ack_backlog``, what ``ss -lnt`` shows as Recv-Q) and ``idiag_wqueue`` the queue's
limit (Send-Q). One question costs about 0.05 ms of CPU here.

Reading ``/proc/net/tcp`` instead makes the kernel walk its whole established-connection
hash table for every read, however few sockets are open: 3-7 ms of CPU per read on this
machine (262,144 buckets), so a sampler polling every 2 ms took about half a core from the
server it was measuring. ``/proc/net/tcp`` stays as the fallback where netlink is refused.
"""

from __future__ import annotations

import contextlib
import socket
import struct

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN = 10
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_REQUEST = struct.Struct("=BBBBI")  # inet_diag_req_v2 up to its (zeroed) socket id
_SOCKID_SIZE = 48  # struct inet_diag_sockid
_PORT = struct.Struct(">H")
_QUEUES = struct.Struct("=II")  # idiag_rqueue, idiag_wqueue
_QUEUES_AT = 4 + _SOCKID_SIZE + 4  # family, state, timer, retrans; id; expires
_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def _proc_listeners() -> dict[int, tuple[int, int]]:
    """The fallback: ``/proc/net/tcp`` and ``tcp6`` (listeners come first in them; the
    limit is not there, so it is given as -1)."""
    out: dict[int, tuple[int, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                fh.readline()  # header
                for line in fh:
                    fields = line.split()
                    if len(fields) < 5 or fields[3] != "0A":
                        break  # listeners come first: the rest are connections
                    port = int(fields[1].rsplit(":", 1)[1], 16)
                    out.setdefault(port, (int(fields[4].split(":")[1], 16), -1))
        except OSError:
            continue
    return out


class Listeners:
    """One netlink socket, asked again and again (:meth:`query`); ``/proc`` if refused."""

    def __init__(self) -> None:
        self._seq = 0
        self._sock: socket.socket | None = None
        with contextlib.suppress(OSError):
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG)

    @property
    def netlink(self) -> bool:
        return self._sock is not None

    def query(self) -> dict[int, tuple[int, int]]:
        """Every listening TCP port (IPv4 and IPv6): ``(waiting to be accepted, limit)``."""
        if self._sock is not None:
            try:
                out: dict[int, tuple[int, int]] = {}
                for family in _FAMILIES:
                    self._dump(self._sock, family, out)
                return out
            except OSError:
                self.close()
        return _proc_listeners()

    def _dump(self, sock: socket.socket, family: int, out: dict[int, tuple[int, int]]) -> None:
        self._seq += 1
        body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN)
        body += bytes(_SOCKID_SIZE)
        sock.send(_HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY,
                               _NLM_F_REQUEST | _NLM_F_DUMP, self._seq, 0) + body)
        while True:
            data = sock.recv(65536)
            if not data:
                raise OSError("sock_diag: empty answer")
            off = 0
            while off + _HEADER.size <= len(data):
                length, kind, _flags, seq, _pid = _HEADER.unpack_from(data, off)
                if length < _HEADER.size:
                    raise OSError("sock_diag: malformed answer")
                if seq == self._seq:
                    if kind == _NLMSG_DONE:
                        return
                    if kind == _NLMSG_ERROR:
                        raise OSError("sock_diag: the kernel refused the question")
                    msg = off + _HEADER.size
                    port = _PORT.unpack_from(data, msg + 4)[0]
                    waiting, limit = _QUEUES.unpack_from(data, msg + _QUEUES_AT)
                    out.setdefault(port, (waiting, limit))
                off += (length + 3) & ~3

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Listeners:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
