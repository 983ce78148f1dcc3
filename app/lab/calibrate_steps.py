"""Per-step costs timed in this process, without a server: ``accept()``, loopback round
trip, context switch, gunicorn gthread's own steps, the GIL hand-off. Used by
:mod:`.calibrate` (whose docstring says how each figure is obtained)."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any


def _median(values: list[float]) -> float:
    clean = [v for v in values if v is not None and v >= 0]
    return round(statistics.median(clean), 4) if clean else 0.0


def accept_cost_ms(n: int = 200) -> float:
    """Median time of ``accept()`` on a loopback listener with connections waiting."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    clients: list[socket.socket] = []
    times: list[float] = []
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(n + 8)
        addr = lsock.getsockname()
        for _ in range(n):
            c = socket.create_connection(addr, timeout=2.0)
            clients.append(c)
        for _ in range(n):
            t = time.perf_counter()
            conn, _peer = lsock.accept()
            times.append((time.perf_counter() - t) * 1000.0)
            conn.close()
    finally:
        for c in clients:
            c.close()
        lsock.close()
    return _median(times)


def gil_handoff_ms(samples: int = 60) -> float:
    """Median extra wait, beyond the sleep itself, of a thread waking from a 1 ms sleep
    while another thread of the process spins on pure-Python bytecode."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            for i in range(200):
                x += i

    hog = threading.Thread(target=spin, daemon=True)
    hog.start()
    extra: list[float] = []
    try:
        time.sleep(0.02)
        for _ in range(samples):
            t = time.perf_counter()
            time.sleep(0.001)
            extra.append((time.perf_counter() - t) * 1000.0 - 1.0)
    finally:
        stop.set()
        hog.join()
    return _median(extra)


def rtt_ms(n: int = 100) -> float:
    """Median duration of a loopback ``connect()`` (SYN out, SYN-ACK back)."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    times: list[float] = []
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(n + 8)
        addr = lsock.getsockname()
        for _ in range(n):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t = time.perf_counter()
            c.connect(addr)
            times.append((time.perf_counter() - t) * 1000.0)
            conn, _peer = lsock.accept()
            conn.close()
            c.close()
    finally:
        lsock.close()
    return _median(times)


def context_switch_ms(rounds: int = 2000) -> float:
    """Half a pipe round trip between two processes on one core, less the system calls."""
    core = min(os.sched_getaffinity(0))
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    echo = (
        "import os, sys\n"
        "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
        "r, w = int(sys.argv[2]), int(sys.argv[3])\n"
        "while os.read(r, 1):\n"
        "    os.write(w, b'x')\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", echo, str(core), str(a_r), str(b_w)],
        pass_fds=(a_r, b_w), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {core})
        os.write(a_w, b"x")  # the child is up once it answers
        os.read(b_r, 1)
        t = time.perf_counter()
        for _ in range(rounds):
            os.write(a_w, b"x")
            os.read(b_r, 1)
        trip = (time.perf_counter() - t) / rounds
        # the same calls with no switch: write and read back on one pipe
        t = time.perf_counter()
        for _ in range(rounds):
            os.write(b_w, b"x")
            os.read(b_r, 1)
        calls = (time.perf_counter() - t) / rounds
    finally:
        os.sched_setaffinity(0, old)
        os.close(a_w)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        for fd in (a_r, b_r, b_w):
            os.close(fd)
    return round(max(0.0, (trip - calls) / 2.0) * 1000.0, 5)


def gthread_costs(n: int = 200) -> dict[str, float]:
    """gunicorn gthread's own per-connection steps, timed (see the module docstring)."""
    import selectors
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.workers import gthread

    cfg = Config()
    worker = SimpleNamespace(nr_conns=0, alive=True, cfg=cfg)
    queue = gthread.PollableMethodQueue()
    queue.init()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    pool = ThreadPoolExecutor(1)
    submit: list[float] = []
    handle: list[float] = []
    defer: list[float] = []
    finish: list[float] = []

    def work(conn: Any) -> bool:
        t = time.perf_counter()
        conn.wait_for_data(1.0)
        conn.sock.setblocking(True)
        conn.init()
        handle.append(time.perf_counter() - t)
        return False  # not kept alive: finish_request closes it

    def done(conn: Any, fut: Any) -> None:
        t = time.perf_counter()
        queue.defer(gthread.ThreadWorker.finish_request, worker, conn, fut)
        defer.append(time.perf_counter() - t)

    sel = selectors.DefaultSelector()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sel.register(queue.fileno(), selectors.EVENT_READ)
        for _ in range(n):
            client = socket.create_connection(listener.getsockname(), timeout=2.0)
            try:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                sock, addr = listener.accept()
                t = time.perf_counter()
                conn = gthread.TConn(cfg, sock, addr, listener.getsockname())
                fut = pool.submit(work, conn)
                fut.add_done_callback(lambda f, c=conn: done(c, f))
                submit.append(time.perf_counter() - t)
                fut.result(timeout=5.0)
                sel.select(timeout=5.0)
                client.shutdown(socket.SHUT_WR)  # the client has read the response
                t = time.perf_counter()
                queue.run_callbacks(None)
                finish.append(time.perf_counter() - t)
            finally:
                client.close()
    finally:
        sel.close()
        pool.shutdown(wait=True)
        queue.close()
        listener.close()

    def ms(values: list[float]) -> float:
        return _median([v * 1000.0 for v in values[5:]])

    return {
        "gthread_submit_ms": ms(submit),
        "gthread_handle_ms": ms(handle),
        "gthread_defer_ms": ms(defer),
        "gthread_finish_ms": ms(finish),
    }


def instruction_ms(n: int = 300_000, repeat: int = 5) -> float:
    """One bytecode instruction of ``for _ in range(n): counter += 1`` on a module global:
    the loop's time over its iterations and the instructions ``dis`` lists per iteration
    (the fastest of ``repeat`` runs: the interpreter's speed, not the machine's load)."""
    import dis

    space: dict[str, Any] = {"counter": 0}
    exec(  # a fixed loop, no user input
        "def loop(n):\n    global counter\n    for _ in range(n):\n        counter += 1\n",
        space,
    )
    loop = space["loop"]
    names = [i.opname for i in dis.get_instructions(loop)]
    start = names.index("FOR_ITER")
    end = next(i for i, name in enumerate(names) if name.startswith("JUMP_") and i > start)
    per_iteration = end - start + 1
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        loop(n)
        best = min(best, time.perf_counter() - t)
    return round(best * 1000.0 / (n * per_iteration), 8)


def error_ms(n: int = 150) -> float:
    """What Flask adds to a request whose view raises: ``handle_user_exception``,
    ``handle_exception``, the 500 response and the traceback logged (to a discarded
    stream), as the median of such requests less the median of plain ones."""
    import io
    import logging

    from flask import Flask

    app = Flask("wsgiscope_calibrate_error")
    app.logger.handlers[:] = [logging.StreamHandler(io.StringIO())]
    app.logger.propagate = False

    @app.get("/ok")
    def ok() -> str:
        return "ok"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("calibration")

    client = app.test_client()
    plain: list[float] = []
    failing: list[float] = []
    for _ in range(n):
        t = time.perf_counter()
        client.get("/ok")
        plain.append((time.perf_counter() - t) * 1000.0)
        t = time.perf_counter()
        client.get("/boom")
        failing.append((time.perf_counter() - t) * 1000.0)
    return round(max(0.0, _median(failing[5:]) - _median(plain[5:])), 4)


def thread_boot_ms(n: int = 200) -> float:
    """A new thread's own CPU before its target runs (threading's bootstrap): the thread's
    CPU clock, which starts at zero, read first thing in ``run``."""
    seen: list[float] = []

    class Probe(threading.Thread):
        def run(self) -> None:
            seen.append(time.thread_time() * 1000.0)

    for _ in range(n):
        th = Probe()
        th.start()
        th.join()
    return _median(seen)


def close_ms(n: int = 200) -> float:
    """Python's work between a response's last write and the shutdown the client waits for,
    as werkzeug runs it on a loopback connection: the drain's selector registered, polled
    (nothing left to read) and closed, the handler's files closed, ``shutdown(SHUT_WR)``,
    ``close()`` (the system calls themselves are in it: they are a few microseconds)."""
    import selectors

    listener = socket.create_server(("127.0.0.1", 0))
    times: list[float] = []
    try:
        for _ in range(n):
            client = socket.create_connection(listener.getsockname())
            conn, _addr = listener.accept()
            rfile, wfile = conn.makefile("rb"), conn.makefile("wb", buffering=0)
            t0 = time.perf_counter()
            selector = selectors.DefaultSelector()
            selector.register(conn, selectors.EVENT_READ)
            selector.select(timeout=0)
            selector.close()
            wfile.close()
            rfile.close()
            conn.shutdown(socket.SHUT_WR)
            conn.close()
            times.append((time.perf_counter() - t0) * 1000.0)
            client.close()
    finally:
        listener.close()
    return _median(times)
