"""Benchmark: how much the lab's samplers slow the server they watch.

Starts Flask's threaded dev server (werkzeug ``threaded=True``) on a free loopback port with
one endpoint that burns ``--cpu-ms`` of the thread's own CPU (the lab's ``burn_cpu``), then
sends ``--requests`` of them at once, ``--rounds`` times for each way of watching it:

* ``none``: no sampler;
* ``threads``: the lab's thread sampler (``/proc/<pid>/task/<tid>/syscall`` every 1 ms);
* ``both``: the thread sampler and the accept-queue sampler (netlink every 2 ms), as the lab
  runs them (SCHED_IDLE);
* ``both-normal``: the same two at normal priority, as they ran before.

The ways are interleaved round by round (the machine drifts) and each prints the burst's
makespan, min / median / max, and its median against ``none`` measured in the same rounds.
The model's figure for the same burst is ``wsgiscope simulate`` of the same scenario.

Run:
  python tests/bench/bench_observer.py                  # 4 x 80 ms, 12 rounds
  python tests/bench/bench_observer.py --requests 4 --cpu-ms 80 --rounds 20
Bounded: at most 64 requests a burst and 100 rounds; the server is stopped at the end.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from wsgiscope.app.lab.launcher import child_of_this_process
from wsgiscope.app.lab.sampler import BacklogSampler, ThreadSampler

SERVER = """
import logging, sys
from flask import Flask
from werkzeug.serving import make_server
from wsgiscope.app.lab.demo_app import burn_cpu
logging.getLogger("werkzeug").setLevel(logging.ERROR)
app = Flask(__name__)
ms = float(sys.argv[1])
@app.route("/cpu")
def cpu():
    burn_cpu(ms)
    return "ok"
srv = make_server("127.0.0.1", 0, app, threaded=True)
print(srv.server_port, flush=True)
srv.serve_forever()
"""

WAYS = ("none", "threads", "both", "both-normal")


def burst(port: int, n: int) -> float:
    """Send ``n`` requests at once; return when the last response ended, in ms."""
    ends = [0.0] * n
    t0 = time.monotonic()

    def one(i: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /cpu HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass
        ends[i] = time.monotonic()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return (max(ends) - t0) * 1000.0


def watched(way: str, pid: int, port: int) -> list[ThreadSampler | BacklogSampler]:
    if way == "none":
        return []
    samplers: list[ThreadSampler | BacklogSampler] = [ThreadSampler([pid]).start()]
    if way != "threads":
        samplers.append(BacklogSampler(port).start())
    if way == "both-normal":
        time.sleep(0.05)  # each has set itself SCHED_IDLE by now: undo it
        for s in samplers:
            os.sched_setscheduler(s._thread.native_id, os.SCHED_OTHER, os.sched_param(0))
    time.sleep(0.05)
    return samplers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--cpu-ms", type=float, default=80.0)
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    if not 1 <= args.requests <= 64 or not 1 <= args.rounds <= 100:
        sys.exit("--requests must be 1 to 64 and --rounds 1 to 100")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.cpu_ms)], stdout=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=child_of_this_process(),
    )  # fmt: skip
    times: dict[str, list[float]] = {w: [] for w in WAYS}
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        burst(port, args.requests)  # warm up: the first request of a process is slower
        for _ in range(args.rounds):
            for way in WAYS:
                samplers = watched(way, proc.pid, port)
                try:
                    times[way].append(burst(port, args.requests))
                finally:
                    for s in samplers:
                        s.stop()
                time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    print(f"{args.requests} x {args.cpu_ms:g} ms of CPU at once, werkzeug threaded=True, "
          f"{args.rounds} rounds, load average {load}")
    base = statistics.median(times["none"])
    for way in WAYS:
        t = sorted(times[way])
        med = statistics.median(t)
        print(f"  {way:<12} makespan {t[0]:6.1f} / {med:6.1f} / {t[-1]:6.1f} ms "
              f"(min / median / max)  {med / base:5.3f}x none")


if __name__ == "__main__":
    main()
