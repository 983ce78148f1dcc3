"""Benchmark: how long the page waits for its first frame, by run size.

Starts ``wsgiscope serve`` on a free 127.0.0.1 port (as a user would, whatever worker and
simulation pool it uses), opens the page's WebSocket (``/ws``) and sends what the page sends
on Start -- ``{"op": "start", "scenario": ..., "seed": ..., "play": true}`` -- then times the
``meta`` message, the first ``frames`` message and the whole run (a large run's head comes
first, ``meta.partial``; the whole run follows as a ``meta`` with ``replace``; before runs
came in two parts, the first frame waited for the whole run). The scenario is gunicorn sync
-w 8 with an exponential 1 s I/O endpoint under Poisson arrivals at 7/s and the default
stage costs, sized to the number of requests asked for. Every start uses a fresh seed, so
no run comes from the server's cache; ``--cached`` adds a second start of the same run,
which should.

A small run first warms the server up (its simulation pool starts on the first run).
A size the page refuses (its cap on requests, or the event budget) is reported with the
server's one-line reason and how long it took to say so; a run that fails after its head
was shown (the time limit, the engine's budget part way) is reported as such. Each size is
measured ``--repeat`` times (min and median). The server is stopped at the end, whatever
happens.

``--config JSON`` serves the page with other settings (gunicorn's gevent worker and
``served_app(config)``, as ``wsgiscope serve`` runs it, one simulation process per core),
e.g. the budgets a 200,000-request run of this scenario needs, beyond the page's defaults
(2 M events, 60 s, 100,000 requests): ``--config '{"MAX_REQUESTS": 200000,
"SIM_MAX_EVENTS": 4000000, "SIM_TIMEOUT_S": 300}'``.

``--together K`` times, for each size, K users who start their runs at the same instant (each
its own seed, its own WebSocket) beside one user alone on the same server, in alternating
rounds: each user's first frame and whole run, and the ratio of the together median to the
alone one (the issue's "four users starting 10k-request runs at once").

Run: python tests/bench/bench_first_frame.py [--requests 1000,10000,50000,100000,200000]
     [--repeat 3] [--cached] [--config JSON] [--together 4]
Not part of the test suite; needs simple-websocket (installed with the test extras).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import simple_websocket

RATE_PER_S = 7.0


def scenario(n: int) -> dict[str, Any]:
    return {
        "name": f"gunicorn sync -w 8, exponential 1 s I/O, Poisson 7/s: {n:,} requests",
        "server": {"kind": "gunicorn", "worker_class": "sync", "workers": 8, "timeout_s": 0},
        "machine": {"cores": 8},
        "endpoints": {"/io": [{"io_ms": {"exp": 1000}}]},
        "workload": [{"poisson": {"rate_per_s": RATE_PER_S, "duration_s": n / RATE_PER_S},
                      "path": "/io"}],
        "client": {"timeout_s": 3600},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(config: dict[str, Any] | None = None, limit_s: float = 60.0) -> Iterator[str]:
    """``wsgiscope serve`` on a free loopback port (or, with ``config``, gunicorn serving
    ``served_app(config)``), in its own process group; always stopped."""
    port = free_port()
    if config is None:
        command = [sys.executable, "-m", "wsgiscope.app.cli", "serve", "--host", "127.0.0.1",
                   "--port", str(port)]
    else:
        config = {"SIM_PROCESSES": os.cpu_count() or 1, **config}
        command = [sys.executable, "-m", "gunicorn", "-k", "gevent", "--worker-connections",
                   "200", "--no-control-socket", "--timeout", "600", "-b", f"127.0.0.1:{port}",
                   f"wsgiscope.app.server:served_app({json.dumps(config)})"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, start_new_session=True, stdout=log,
                                stderr=subprocess.STDOUT)
        address = f"127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + limit_s
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("server did not start: " + log.read()[-2000:].decode())
                try:
                    with urllib.request.urlopen(f"http://{address}/healthz", timeout=2):  # noqa: S310
                        break
                except OSError:
                    time.sleep(0.1)
            yield address
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def first_frame(address: str, n: int, seed: int, timeout_s: float, first_only: bool = False
                ) -> tuple[float, float, float] | str:
    """Seconds from the start message to ``meta``, to the first ``frames`` and to the whole
    run (its first frames when the first ``meta`` was the whole run's, else the ``meta``
    that replaces the head), or the server's error: refused before anything was shown, or
    after the head was. ``first_only``: return at the first frame (the whole run: nan)."""
    ws = simple_websocket.Client.connect(f"ws://{address}/ws")
    try:
        start = json.dumps({"op": "start", "scenario": scenario(n), "seed": seed,
                            "play": True})
        t0 = time.perf_counter()
        ws.send(start)
        meta: float | None = None
        first: float | None = None
        partial = False
        deadline = t0 + timeout_s
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return f"no whole run within {timeout_s:.0f} s"
            text = ws.receive(timeout=left)
            if text is None:
                continue
            msg = json.loads(text)
            kind = msg.get("type")
            now = time.perf_counter() - t0
            if kind == "error":
                when = "refused in" if meta is None else "failed after its head, at"
                return f"{when} {now:.3f} s: {msg.get('error')}"
            if kind == "meta" and meta is None:
                meta, partial = now, bool(msg.get("partial"))
            elif kind == "meta" and msg.get("replace"):
                return meta, first if first is not None else now, now
            if kind == "frames" and meta is not None and first is None:
                first = now
                if not partial:
                    return meta, now, now
                if first_only:
                    return meta, now, math.nan
    finally:
        ws.close()


def load() -> str:
    with open("/proc/loadavg", encoding="ascii") as fh:
        return " ".join(fh.read().split()[:3])


def report(n: int, got: list[tuple[float, float, float]]) -> None:
    frames = [g[1] for g in got]
    print(f"{n:9,} {min(frames):15.3f} / {statistics.median(frames):6.3f} "
          f"{statistics.median(g[0] for g in got):16.3f} "
          f"{statistics.median(g[2] for g in got):21.3f}", flush=True)


def together(address: str, n: int, seeds: list[int], timeout_s: float
             ) -> list[tuple[float, float, float] | str]:
    """:func:`first_frame` for each seed, every user starting at the same instant."""
    got: list[tuple[float, float, float] | str] = ["no answer"] * len(seeds)
    gate = threading.Barrier(len(seeds))

    def user(i: int) -> None:
        gate.wait()
        got[i] = first_frame(address, n, seeds[i], timeout_s)

    users = [threading.Thread(target=user, args=(i,)) for i in range(len(seeds))]
    for u in users:
        u.start()
    for u in users:
        u.join()
    return got


def report_together(address: str, sizes: list[int], k: int, repeat: int, seed: int,
                    timeout_s: float) -> None:
    """Alternating rounds of one user alone and ``k`` together, per size."""
    print(f"{'requests':>9} {'users':>5} {'first frame s (min / median / max)':>36} "
          f"{'whole run s (median / max)':>27}")
    for n in sizes:
        alone: list[tuple[float, float, float]] = []
        crowd: list[tuple[float, float, float]] = []
        for _ in range(repeat):
            seed += 1 + k
            for got, res in ((alone, [first_frame(address, n, seed, timeout_s)]),
                             (crowd, together(address, n, [seed + 1 + i for i in range(k)],
                                              timeout_s))):
                for r in res:
                    if isinstance(r, str):
                        print(f"{n:9,}  {r}", flush=True)
                    else:
                        got.append(r)
        for label, got in (("1", alone), (str(k), crowd)):
            if not got:
                continue
            first = [g[1] for g in got]
            whole = [g[2] for g in got]
            print(f"{n:9,} {label:>5} {min(first):14.3f} / {statistics.median(first):6.3f} / "
                  f"{max(first):6.3f} {statistics.median(whole):15.3f} / {max(whole):6.3f}",
                  flush=True)
        if alone and crowd:
            ratio = (statistics.median(g[1] for g in crowd)
                     / statistics.median(g[1] for g in alone))
            print(f"{'':9} first frame, {k} together / alone (medians): {ratio:.2f}x",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", default="1000,10000,50000,100000,200000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per start")
    parser.add_argument("--cached", action="store_true", help="also time a cached start")
    parser.add_argument("--config", type=json.loads, default=None,
                        help="serve served_app(CONFIG) instead of wsgiscope serve's defaults")
    parser.add_argument("--first-only", action="store_true",
                        help="time up to the first frame only, each start on a server of its "
                        "own (stopped after it, with the rest of its run): a short measurement")
    parser.add_argument("--together", type=int, default=0, metavar="K",
                        help="K users starting at once beside one alone, per size")
    args = parser.parse_args()
    sizes = [int(x) for x in args.requests.split(",")]
    seed = int(time.time()) % 1_000_000  # fresh runs, never in the server's cache
    print(f"load average before: {load()}; "
          + ("wsgiscope serve" if args.config is None else f"served_app({args.config})"))
    if args.together:
        with serving(args.config) as address:
            first_frame(address, 100, seed, args.timeout)  # warm up: starts the pool
            report_together(address, sizes, args.together, args.repeat, seed, args.timeout)
        print(f"load average after: {load()}  ({time.strftime('%Y-%m-%d')})")
        return
    print(f"{'requests':>9} {'first frame s (min / median)':>30} {'meta s (median)':>16} "
          f"{'whole run s (median)':>21}")
    with contextlib.ExitStack() as shared:
        address = None
        if not args.first_only:  # one server for every start; --first-only: one per start
            address = shared.enter_context(serving(args.config))
            first_frame(address, 100, seed, args.timeout)  # warm up: starts the pool
        for n in sizes:
            got = []
            for _ in range(args.repeat):
                seed += 1
                if address is None:
                    with serving(args.config) as own:
                        first_frame(own, 100, seed, args.timeout)  # warm up: starts the pool
                        res = first_frame(own, n, seed, args.timeout, first_only=True)
                else:
                    res = first_frame(address, n, seed, args.timeout)
                if isinstance(res, str):
                    print(f"{n:9,}  {res}", flush=True)
                    break
                got.append(res)
            else:
                report(n, got)
                if args.cached and address is not None:
                    res = first_frame(address, n, seed, args.timeout)
                    if not isinstance(res, str):
                        print(f"{'':9}  the same run again (cached): {res[1]:.3f} s",
                              flush=True)
    print(f"load average after: {load()}  ({time.strftime('%Y-%m-%d')})")


if __name__ == "__main__":
    main()
