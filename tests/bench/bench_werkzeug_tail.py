"""Where a werkzeug request's tail loses time beside CPU-bound threads: real against model.

After the application's body is written, werkzeug's ``run_wsgi`` drains the socket
(``serving.py``: ``selectors.DefaultSelector()``, ``register``, ``select(timeout=0.01)``,
``close``) and only then does ``shutdown_request`` send the client its FIN. Every one of
those calls lets the GIL go, and the Python between them needs it back. This script runs a
werkzeug scenario with ``wsgiscope measure`` under ``perf record`` (the entries of
``sendto``, ``shutdown`` and ``recvfrom`` and the exits of ``epoll_wait``, on every core) and
prints, for each request, three intervals of its handler thread beside the model's over
many seeds:

* ``send1->send2``: from the header write to the body write (the model: the Python between
  the two ``sendall`` calls, and its wait for the GIL);
* ``send2->drained``: from the body write to the end of the drain's 10 ms wait (the model:
  the write and the drain, back to back: the model takes no GIL between them);
* ``drained->FIN``: from there to ``shutdown`` (the model: the close's Python and its GIL
  wait, up to the request's end).

It also prints how long the handler threads' ``sendto``, ``epoll_create1`` and
``epoll_ctl`` calls themselves took: the window in which a thread the release woke can take
the GIL.

    python tests/bench/bench_werkzeug_tail.py [SCENARIO] [--runs 3] [--seeds 40] [--path /quick]

``SCENARIO`` defaults to the fidelity case of two CPU hogs beside quick requests. It needs
``perf`` and leave to record tracepoints (root, or ``perf_event_paranoid`` low enough); it
says so in one line when it has neither. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from wsgiscope import simulator

CASE = Path(__file__).resolve().parents[1] / "fidelity" / "07-wz-hog2-quick.json"
EVENTS = ("syscalls:sys_enter_sendto", "syscalls:sys_exit_sendto",
          "syscalls:sys_enter_shutdown", "syscalls:sys_enter_recvfrom",
          "syscalls:sys_enter_epoll_wait", "syscalls:sys_exit_epoll_wait",
          "syscalls:sys_enter_epoll_create1", "syscalls:sys_exit_epoll_create1",
          "syscalls:sys_enter_epoll_ctl", "syscalls:sys_exit_epoll_ctl")  # fmt: skip
#: the calls whose own time is reported (the window a signalled waiter has to take the GIL)
TIMED = ("sendto", "epoll_create1", "epoll_ctl")
_LINE = re.compile(r"^\s*(\S+)\s+(\d+)\s+([\d.]+):\s+\S+:(\S+):")
INTERVALS = ("send1->send2", "send2->drained", "drained->FIN")


def measured(perf: str, scenario: Path, seed: int, path: str, tmp: str,
             took: dict[str, list[float]]) -> list[list[float]]:
    """One real run: the three intervals (ms) of each request to ``path``; adds to ``took``
    how long each of the :data:`TIMED` calls of every handler thread took (µs)."""
    data, out = os.path.join(tmp, "perf.data"), os.path.join(tmp, "run.csv")
    record = [perf, "record", "-q", "-a", "-o", data, *(a for e in EVENTS for a in ("-e", e)),
              "--", "wsgiscope", "measure", str(scenario), "--format", "csv", "--seed",
              str(seed)]
    with open(out, "w", encoding="utf-8") as fh:
        done = subprocess.run(record, stdout=fh, stderr=subprocess.PIPE, text=True, timeout=300)
    if done.returncode != 0:
        sys.exit(f"perf record failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    script = subprocess.run([perf, "script", "-i", data, "-F", "comm,tid,time,event"],
                            capture_output=True, text=True, check=True).stdout
    calls: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for line in script.splitlines():
        m = _LINE.match(line)
        if m:
            calls[int(m.group(2))].append((float(m.group(3)) * 1e3, m.group(4)))
    # a handler thread serves one connection: read it, write twice, drain, shut it down
    rows = []
    for evs in calls.values():
        names = [name for _, name in evs]
        if "sys_enter_shutdown" not in names or "sys_enter_recvfrom" not in names:
            continue
        read = next(t for t, name in evs if name == "sys_enter_recvfrom")
        sends = [t for t, name in evs if name == "sys_enter_sendto"]
        drained = [t for t, name in evs if name == "sys_exit_epoll_wait"]
        fin = [t for t, name in evs if name == "sys_enter_shutdown"]
        if len(sends) >= 2 and drained:
            rows.append((read, [sends[1] - sends[0], drained[-1] - sends[1],
                                fin[-1] - drained[-1]]))
        entered: dict[str, float] = {}
        for t, name in evs:
            kind, _, call = name.removeprefix("sys_").partition("_")
            if call in TIMED and kind == "enter":
                entered[call] = t
            elif call in TIMED and call in entered:
                took.setdefault(call, []).append((t - entered.pop(call)) * 1e3)
    # Which request each thread served: the threads in the order they read their request,
    # the requests in the order their handlers started (the lab's records).
    with open(out, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    header = lines[0].split(",")
    served = sorted((float(cols[header.index("started_ms")]), cols[header.index("path")])
                    for cols in (line.split(",") for line in lines[1:])
                    if cols[header.index("started_ms")])
    if len(served) != len(rows):
        sys.exit(f"run {seed}: {len(rows)} handler threads traced for {len(served)} requests")
    rows.sort()
    return [row for (_, row), (_, p) in zip(rows, served, strict=True) if p == path]


def simulated(scenario: dict[str, Any], seeds: int, path: str) -> list[list[float]]:
    """The model's same three intervals over ``seeds`` seeds."""
    rows = []
    for seed in range(1, seeds + 1):
        trace = simulator.run({**scenario, "seed": seed})
        log = trace.events
        states: dict[int, list[tuple[float, str]]] = defaultdict(list)
        thread = log.code("thread")
        for t, code, what, ref in zip(log.t, log.codes, log.what, log.ref, strict=True):
            if code == thread and ref is not None and int(ref) >= 0:
                states[int(ref)].append((t, str(what)))
        for r in trace.requests:
            if r.path != path or r.status != "ok":
                continue
            seq = states[r.id]
            ios = [i for i, (_, state) in enumerate(seq) if state == "io"]
            last, first = ios[-1], ios[-2]  # the body write and drain; the header write
            drained = seq[last + 1][0] if last + 1 < len(seq) else r.finished_ms
            rows.append([seq[last][0] - seq[first][0], drained - seq[last][0],
                         r.finished_ms - drained])
    return rows


def spread(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
    return f"{min(values):6.1f} {q[0]:6.1f} {q[1]:6.1f} {q[2]:6.1f} {max(values):6.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", nargs="?", default=str(CASE),
                   help="a scenario file or fidelity case (werkzeug, threaded)")
    p.add_argument("--runs", type=int, default=3, help="real runs, seeds 1..N (1-20)")
    p.add_argument("--seeds", type=int, default=40, help="simulated seeds (1-1000)")
    p.add_argument("--path", default="/quick", help="the requests to look at")
    args = p.parse_args()
    if not 1 <= args.runs <= 20:
        p.error(f"--runs: must be between 1 and 20 (got {args.runs})")
    if not 1 <= args.seeds <= 1000:
        p.error(f"--seeds: must be between 1 and 1000 (got {args.seeds})")
    perf = shutil.which("perf")
    if perf is None:
        p.error("needs perf (linux-perf), which is not installed")
    data = json.loads(Path(args.scenario).read_text(encoding="utf-8"))
    scenario = data.get("scenario", data)
    with tempfile.TemporaryDirectory() as tmp:
        scenario_file = Path(tmp) / "scenario.json"
        scenario_file.write_text(json.dumps(scenario), encoding="utf-8")
        took: dict[str, list[float]] = {}
        real = [row for k in range(1, args.runs + 1)
                for row in measured(perf, scenario_file, k, args.path, tmp, took)]
    model = simulated(scenario, args.seeds, args.path)
    with open("/proc/loadavg", encoding="ascii") as fh:
        load = " ".join(fh.read().split()[:3])
    print(f"{scenario.get('name', args.scenario)}: requests to {args.path}, ms "
          f"(min, quartiles, max); {len(real)} real over {args.runs} runs, "
          f"{len(model)} simulated over {args.seeds} seeds; load {load}")
    print(f"{'':16} {'real':^34}   {'model':^34}")
    for i, name in enumerate(INTERVALS):
        print(f"{name:16} {spread([r[i] for r in real])}   {spread([m[i] for m in model])}")
    print("each call's own time in the handler threads, us (min, quartiles, max):")
    for call in TIMED:
        if took.get(call):
            print(f"  {call:14} {spread(took[call])}  ({len(took[call])} calls)")


if __name__ == "__main__":
    main()
