"""How often a system call that does not block loses the GIL, beside CPU-bound threads.

CPython lets the GIL go around every system call that may block (``Py_BEGIN_ALLOW_THREADS``),
whether it blocks or not, and ``drop_gil`` signals one waiter each time. A thread back from a
call of a few microseconds usually takes the GIL straight back (the waiter is still waking
up). This script measures how often it does not: a thread sleeps 5 ms, runs ~0.1 ms of
Python (it holds the GIL by then), then makes one short call; a call that took more than
1 ms longer than it takes alone lost the GIL to a CPU-bound thread and waited for it.

    python tests/bench/bench_gil_release.py [--hogs 1,2,3] [--calls 200]
        [--placement free,apart,together] [--only pread] [--work 2000,20000]

``--work`` sets how long the caller runs Python before each call (the loop's length; 2000
is about 0.1 ms): how likely a waiter woken on its core preempts it depends on that.

``--placement`` pins the threads (Linux, two cores or more): ``free`` leaves them to the
scheduler; ``apart`` keeps the calling thread on core 0 and every CPU-bound thread on core 1;
``together`` puts them all on core 0. A call can lose the GIL only to a waiter woken on its
own core, which then runs at once: ``apart`` shows whether anything else takes it.

No server, no network: each call is on a temporary file, a socket pair or an epoll object.
Run it on a quiet machine; it prints one line per hog count and call.
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SLEEP_S = 0.005
LOST_MS = 1.0  # longer than the call alone by this much: it waited for the GIL
#: Where each placement pins (the calling thread's cores, the CPU-bound threads' cores).
PLACEMENTS: dict[str, tuple[set[int] | None, set[int] | None]] = {
    "free": (None, None),
    "apart": ({0}, {1}),
    "together": ({0}, {0}),
}


def _pin(cores: set[int] | None) -> None:
    """Pin the calling thread (not its process) to ``cores``; None leaves it free."""
    if cores is not None:
        os.sched_setaffinity(threading.get_native_id(), cores)


@contextmanager
def _pinned(cores: set[int] | None) -> Iterator[None]:
    before = os.sched_getaffinity(threading.get_native_id())
    _pin(cores)
    try:
        yield
    finally:
        os.sched_setaffinity(threading.get_native_id(), before)


def _calls(fd: int, sock: socket.socket, ep: select.epoll) -> dict[str, Callable[[], object]]:
    return {
        "os.utime (gunicorn's heartbeat)": lambda: os.utime(fd, (1.0, 1.0)),
        "sock.setblocking": lambda: sock.setblocking(True),
        "epoll() and close()": lambda: select.epoll().close(),
        "epoll.poll(0)": lambda: ep.poll(0),
        "os.pread 1 byte": lambda: os.pread(fd, 1, 0),
    }


def _timed(call: Callable[[], object], n: int, work: int = 2000) -> list[float]:
    out = []
    for _ in range(n):
        time.sleep(SLEEP_S)
        x = 0
        for i in range(work):  # 2000: ~0.1 ms of Python, the GIL is ours by now
            x ^= i
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def measure(
    hogs: int, calls: int, placement: str = "free", only: str = "", work: int = 2000
) -> list[tuple[str, float, int]]:
    """(call, its median alone in ms, how many of ``calls`` lost the GIL) beside ``hogs``,
    the threads placed as ``placement`` says; ``only``: the calls whose name contains it;
    ``work``: the loop's length before each call (2000: about 0.1 ms of Python)."""
    stop = threading.Event()
    mine, theirs = PLACEMENTS[placement]

    def hog() -> None:
        _pin(theirs)
        while not stop.is_set():
            for _ in range(1000):
                pass

    a, b = socket.socketpair()
    ep = select.epoll()
    with tempfile.TemporaryFile() as tmp, _pinned(mine):
        table = {k: f for k, f in _calls(tmp.fileno(), a, ep).items() if only in k}
        alone = {name: statistics.median(_timed(fn, 40, work)) for name, fn in table.items()}
        threads = [threading.Thread(target=hog, daemon=True) for _ in range(hogs)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.05)
            rows = []
            for name, fn in table.items():
                took = _timed(fn, calls, work)
                rows.append((name, alone[name], sum(x > alone[name] + LOST_MS for x in took)))
        finally:
            stop.set()
            for t in threads:
                t.join()
            a.close()
            b.close()
            ep.close()
    return rows


def int_list(p: argparse.ArgumentParser, text: str, what: str, lo: int, hi: int) -> list[int]:
    """``text`` (comma-separated) as integers from ``lo`` to ``hi``, or a one-line error
    naming ``what``."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(lo <= v <= hi for v in values):
        p.error(f"{what}: comma-separated counts from {lo} to {hi}")
    return values


def counts(p: argparse.ArgumentParser, args: argparse.Namespace) -> list[int]:
    """``--hogs`` as a list, ``--calls`` checked: a one-line error for either out of range."""
    if not 1 <= args.calls <= 2000:
        p.error("--calls: from 1 to 2000")
    return int_list(p, args.hogs, "--hogs", 1, 8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hogs", default="1,2,3", help="CPU-bound threads beside, e.g. 1,2,3")
    p.add_argument("--calls", type=int, default=200, help="calls of each kind (1-2000)")
    p.add_argument(
        "--placement",
        default="free",
        help="comma-separated: free, apart (calling thread on core 0, CPU-bound "
        "ones on core 1), together (all on core 0)",
    )
    p.add_argument("--only", default="", help="only the calls whose name contains this")
    p.add_argument("--work", default="2000",
                   help="comma-separated lengths of the Python loop before each call "
                        "(2000: about 0.1 ms; at most 100000)")
    args = p.parse_args(argv)
    works = int_list(p, args.work, "--work", 0, 100_000)
    places = args.placement.split(",")
    if not set(places) <= set(PLACEMENTS):
        p.error(f"--placement: comma-separated, each one of {', '.join(PLACEMENTS)}")
    if places != ["free"] and len(os.sched_getaffinity(0) & {0, 1}) < 2:
        p.error("--placement: pinning needs cores 0 and 1")
    hogs = counts(p, args)
    print(
        f"# {platform.python_implementation()} {platform.python_version()}, "
        f"Linux {platform.release()}, {len(os.sched_getaffinity(0))} cores, "
        f"switch interval {sys.getswitchinterval() * 1000:.0f} ms, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    for h in hogs:
        for place in places:
            for work in works:
                for name, alone, lost in measure(h, args.calls, place, args.only, work):
                    print(
                        f"hogs {h}  {place:8} work {work:6d}  {name:32} "
                        f"alone {alone * 1000:6.1f} us  lost the GIL {lost:4d} of "
                        f"{args.calls} ({100 * lost / args.calls:.0f} %)"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
