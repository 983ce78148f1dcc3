"""The listener query (sock_diag) against sockets this test opens, and its /proc fallback."""

from __future__ import annotations

import socket

from wsgiscope.app.lab import sockdiag
from wsgiscope.app.lab.sockdiag import Listeners


def _listener(backlog: int, family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.listen(backlog)
    return sock


def test_queue_and_limit_of_a_listener_both_families() -> None:
    with _listener(7) as v4, _listener(5, socket.AF_INET6) as v6, Listeners() as q:
        assert q.netlink
        port4, port6 = v4.getsockname()[1], v6.getsockname()[1]
        found = q.query()
        assert found[port4] == (0, 7)
        assert found[port6] == (0, 5)
        clients = [socket.create_connection(("127.0.0.1", port4)) for _ in range(3)]
        try:
            assert q.query()[port4] == (3, 7)  # complete, not yet accepted
            v4.accept()[0].close()
            assert q.query()[port4][0] == 2
        finally:
            for c in clients:
                c.close()
    with Listeners() as q:
        assert port4 not in q.query()


def test_the_proc_fallback_agrees_on_the_queue() -> None:
    with _listener(4) as srv:
        port = srv.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)), Listeners() as q:
            assert q.query()[port][0] == sockdiag._proc_listeners()[port][0] == 1


def test_a_refused_netlink_socket_falls_back_to_proc() -> None:
    with _listener(3) as srv:
        q = Listeners()
        q.close()  # as if the kernel had refused the socket
        assert not q.netlink
        assert srv.getsockname()[1] in q.query()
