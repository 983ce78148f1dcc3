"""The lab's load driver: fires a planned workload at a server on 127.0.0.1.

Run as its own process (``python -m wsgiscope.app.lab.driver PLAN OUT``) so the lab can stop it like
any other process. The plan is JSON::

    {"port": 8000, "timeout_s": 60, "start_in_ms": 100, "source": "127.38.5.201",
     "requests": [{"id": 0, "at_ms": 0.0, "path": "/sleep", "segments": null}, ...]}

One thread drives every connection with non-blocking sockets and ``epoll``, so a thousand
"simultaneous" clients leave within a fraction of a millisecond of their planned time, and
each request gets its own connection (``Connection: close``), like ``ab -c N`` without
keep-alive. The clients connect from the plan's ``source`` address (:func:`fresh_source`), if
it names one. For every request it appends one JSON line to OUT as soon as it ends::

    {"id", "path", "planned", "connect", "connected", "sent", "first_byte", "finished",
     "status": "ok"|"error"|"reset"|"timeout", "http_status", "syn_retransmits",
     "local_port", "error"}

Times are the lab clock (CLOCK_MONOTONIC, ms). A first line ``{"start": t}`` gives the
planned time of ``at_ms = 0``. SYN retransmits are read from the kernel (``TCP_INFO``
total retransmits at connect time) and otherwise counted from the connect time: a
connect that takes 1 s or more means the first SYN was dropped.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import select
import selectors
import socket
import struct
import sys
from typing import Any

from .recorder import now_ms

_TCP_INFO_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans in struct tcp_info (Linux)


#: How long before a planned send the driver stops sleeping and polls without sleeping (ms).
#: A poll loop holds a core the server under test could use: the last millisecond before every
#: send, as the driver once polled, cost it about 0.4 ms of CPU a request (``perf sched``,
#: 100 requests/s).
SPIN_MS = 0.1


def fresh_source() -> str:
    """A loopback address for one run's clients to connect from, a new one each run.

    Linux keeps what it learns of a peer (``tcp_metrics``: round-trip time and its variance,
    per pair of addresses) after a connection closes, and starts the next connection between
    the same addresses from it. A connection that waited in a full accept queue leaves a
    round-trip time of hundreds of milliseconds behind, and the next run's retransmissions
    wait longer for it (``ip tcp_metrics show 127.0.0.1``): runs from one address are not
    independent. Every 127.x.y.z is this machine's loopback."""
    draw = random.SystemRandom().randint
    return f"127.{draw(1, 254)}.{draw(0, 255)}.{draw(1, 254)}"


def syn_retransmits(sock: socket.socket, connect_ms: float) -> int:
    """How many SYNs were resent before this connection was established."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        if len(info) >= 104:
            return int(struct.unpack_from("I", info, _TCP_INFO_TOTAL_RETRANS)[0])
    except OSError:
        pass
    return 1 if connect_ms >= 1000.0 else 0


class _Conn:
    __slots__ = ("req", "sock", "rec", "buf", "deadline", "state", "rest", "due")

    def __init__(self, req: dict[str, Any], sock: socket.socket, deadline: float) -> None:
        self.req = req
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.state = "connecting"
        self.rest = b""  # a slow client's request bytes not sent yet
        self.due = 0.0  # ... and when it sends them
        self.rec: dict[str, Any] = {
            "id": req["id"], "path": req["path"], "planned": None, "connect": None,
            "connected": None, "sent": None, "first_byte": None, "finished": None,
            "status": "", "http_status": None, "syn_retransmits": 0, "local_port": 0,
            "error": "",
        }  # fmt: skip


def request_bytes(req: dict[str, Any], port: int) -> bytes:
    lines = [
        f"GET {req['path']} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Connection: close",
        "User-Agent: wsgiscope-lab",
        f"X-Lab-Req: {req['id']}",
    ]
    if req.get("segments") is not None:
        lines.append("X-Lab-Seg: " + json.dumps(req["segments"], separators=(",", ":")))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def run(plan: dict[str, Any], out_path: str) -> int:
    port = int(plan["port"])
    source = plan.get("source")  # the clients' own address (fresh_source)
    timeout_ms = float(plan.get("timeout_s", 60)) * 1000.0
    todo = sorted(plan["requests"], key=lambda r: (r["at_ms"], r["id"]))
    out = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def emit(obj: dict[str, Any]) -> None:
        os.write(out, (json.dumps(obj, separators=(",", ":")) + "\n").encode())

    start = now_ms() + float(plan.get("start_in_ms", 100))
    emit({"start": start})
    sel = selectors.DefaultSelector()
    conns: dict[int, _Conn] = {}
    nxt = 0
    next_sweep = 0.0

    def finish(c: _Conn, status: str, error: str = "") -> None:
        now = now_ms()
        c.rec["finished"] = now
        c.rec["status"] = status
        c.rec["error"] = error
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(c.sock)
        c.sock.close()
        conns.pop(id(c), None)
        emit(c.rec)

    while nxt < len(todo) or conns:
        now = now_ms()
        while nxt < len(todo) and start + todo[nxt]["at_ms"] <= now:
            req = todo[nxt]
            nxt += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if source:
                try:
                    sock.bind((source, 0))
                except OSError:  # a system whose loopback is 127.0.0.1 alone
                    source = None
            sock.setblocking(False)
            c = _Conn(req, sock, 0.0)
            c.rec["planned"] = start + req["at_ms"]
            c.rec["connect"] = t = now_ms()
            c.deadline = t + timeout_ms
            err = sock.connect_ex(("127.0.0.1", port))
            conns[id(c)] = c
            if err not in (0, errno.EINPROGRESS):
                finish(c, "reset", os.strerror(err))
                continue
            c.rec["local_port"] = sock.getsockname()[1]
            sel.register(sock, selectors.EVENT_WRITE, c)
            now = now_ms()
        if now >= next_sweep:  # client timeouts, checked every 10 ms
            next_sweep = now + 10.0
            for c in [c for c in conns.values() if c.deadline <= now]:
                finish(c, "timeout", f"no response within {timeout_ms / 1000:g} s")
        for c in [c for c in conns.values() if c.state == "trickling" and c.due <= now]:
            try:
                c.sock.send(c.rest)
            except OSError as exc:
                finish(c, "reset", str(exc))
                continue
            c.rest = b""
            c.rec["sent"] = now_ms()
            c.state = "reading"
        wait_ms = 10.0
        if nxt < len(todo):
            wait_ms = min(wait_ms, start + todo[nxt]["at_ms"] - now)
        for c in conns.values():
            if c.state == "trickling":
                wait_ms = min(wait_ms, c.due - now)
        if wait_ms > SPIN_MS:
            # epoll sleeps in whole milliseconds (rounded up), select in microseconds, and
            # the epoll's own descriptor is readable when a socket is: wait in select until
            # SPIN_MS before the next send, then poll without sleeping so it leaves on time.
            select.select((sel,), (), (), (wait_ms - SPIN_MS) / 1000.0)
        for key, _mask in sel.select(0):
            c = key.data
            if c.state == "connecting":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    finish(c, "reset", os.strerror(err))
                    continue
                c.rec["connected"] = t = now_ms()
                c.rec["syn_retransmits"] = syn_retransmits(c.sock, t - c.rec["connect"])
                data = request_bytes(c.req, port)
                send_ms = float(c.req.get("send_ms") or 0.0)
                if send_ms > 0:
                    # a slow client: the request line now, the rest send_ms later
                    cut = data.index(b"\r\n") + 2
                    data, c.rest, c.due = data[:cut], data[cut:], t + send_ms
                try:
                    c.sock.send(data)
                except OSError as exc:
                    finish(c, "reset", str(exc))
                    continue
                if c.rest:
                    # keep reading meanwhile: a server may give up on a slow client
                    c.state = "trickling"
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                c.rec["sent"] = now_ms()
                c.state = "reading"
                sel.modify(c.sock, selectors.EVENT_READ, c)
            else:
                try:
                    data = c.sock.recv(65536)
                except OSError as exc:
                    finish(c, "reset", str(exc))
                    continue
                if data and c.rec["first_byte"] is None:
                    c.rec["first_byte"] = now_ms()
                if data:
                    c.buf += data
                    continue
                head = bytes(c.buf[:64]).split(b"\r\n", 1)[0].split()
                code = int(head[1]) if len(head) > 1 and head[1].isdigit() else None
                c.rec["http_status"] = code
                if code is None:
                    finish(c, "reset", "connection closed without a response")
                else:
                    finish(c, "error" if code >= 500 else "ok")
    os.close(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m wsgiscope.app.lab.driver PLAN.json OUT.jsonl", file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8") as fh:
        plan = json.load(fh)
    return run(plan, args[1])


if __name__ == "__main__":
    sys.exit(main())
