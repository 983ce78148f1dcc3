"""Where Linux wakes a thread that waits for the GIL, and whether it preempts its waker.

A thread sleeps 5 ms, runs ~0.1 ms of Python (it holds the GIL by then) and makes one short
call (``os.pread`` of one byte) beside CPU-bound threads that hand the GIL to each other.
The call lets the GIL go, and ``drop_gil`` signals one waiter. This script runs that under
``perf record`` (the scheduler's ``sched_switch`` and ``sched_wakeup`` tracepoints, and the
calls' entries) and reads the trace back:

* for each call, whether the release before it woke a CPU-bound thread; if so, on which core
  (the caller's or the other) and whether the other core was idle; and whether the caller
  was then switched out still runnable (preempted);
* for every wake-up of one of these threads by another of them: on the waker's core or not,
  and whether the other core was idle.

    python tests/bench/bench_wake_placement.py [--hogs 1,2,3] [--calls 300]

It needs ``perf`` and leave to record tracepoints (root, or ``perf_event_paranoid`` low
enough); it says so in one line when it has neither. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from bench_gil_release import counts

SLEEP_S = 0.005
LOST_MS = 1.0  # a call this much longer than 1 ms lost the GIL and waited for it
EVENTS = ("sched:sched_switch", "sched:sched_wakeup", "syscalls:sys_enter_pread64",
          "syscalls:sys_enter_clock_nanosleep")  # fmt: skip
#: A wake-up this close before a call's entry was made by the release around that call.
RELEASE_WINDOW_S = 300e-6
_LINE = re.compile(r"^\s*(\S+)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")
_SWITCH = re.compile(r"prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(\S+) next_pid=(\d+)")
_WAKEUP = re.compile(r"comm=(\S+) pid=(\d+) .*target_cpu=(\d+)")


def _name(name: str) -> None:
    """Name the calling OS thread (``prctl(PR_SET_NAME)``), so the trace can tell them apart."""
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)


def child(hogs: int, calls: int) -> None:
    """The traced program: ``hogs`` CPU-bound threads and one caller."""
    stop = threading.Event()

    def hog(i: int) -> None:
        _name(f"hog{i}")
        while not stop.is_set():
            for _ in range(1000):
                pass

    _name("caller")
    with tempfile.TemporaryFile() as tmp:
        fd = tmp.fileno()
        threads = [threading.Thread(target=hog, args=(i,), daemon=True) for i in range(hogs)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        took = []
        for _ in range(calls):
            time.sleep(SLEEP_S)
            x = 0
            for i in range(2000):
                x ^= i
            t0 = time.perf_counter()
            os.pread(fd, 1, 0)
            took.append((time.perf_counter() - t0) * 1000.0)
        stop.set()
        for t in threads:
            t.join()
    print(sum(d > LOST_MS for d in took))


def analyse(script: str) -> tuple[Counter[str], Counter[str], dict[str, list[float]]]:
    """(each call by what its release did, every thread-to-thread wake-up by where it went,
    and for each kind of wake-up how long the woken thread took to run, in µs) from ``perf
    script``'s text."""
    events = []
    for line in script.splitlines():
        m = _LINE.match(line)
        if m:
            comm, tid, cpu, t, name, rest = m.groups()
            events.append((float(t), int(cpu), comm, int(tid), name.rsplit(":", 1)[-1], rest))
    events.sort(key=lambda e: e[0])
    ours = {e[3] for e in events if e[2] == "caller" or e[2].startswith("hog")}
    caller = next(e[3] for e in events if e[4] == "sys_enter_pread64" and e[2] == "caller")
    running: dict[int, str] = {}  # cpu -> what runs there
    calls: Counter[str] = Counter()
    wakes: Counter[str] = Counter()
    woke: tuple[float, str] | None = None  # the caller's last wake-up of a CPU-bound thread
    current: str | None = None  # the call under way: what its release did
    preempted = False
    pending: dict[int, tuple[float, str]] = {}  # woken thread -> (when, kind of wake-up)
    latency: dict[str, list[float]] = {}
    for t, cpu, _comm, tid, name, rest in events:
        other_idle = running.get(1 - cpu, "").startswith("swapper")
        if name == "sched_switch":
            m = _SWITCH.search(rest)
            if m:
                running[cpu] = m.group(3)
                woken = pending.pop(int(m.group(4)), None)
                if woken is not None:
                    latency.setdefault(woken[1], []).append((t - woken[0]) * 1e6)
                if int(m.group(1)) == caller and current is not None and m.group(2) == "R":
                    preempted = True
        elif name == "sched_wakeup" and tid in ours:
            m = _WAKEUP.search(rest)
            if m and int(m.group(2)) in ours:
                where = "on the waker's core" if int(m.group(3)) == cpu else "on the other core"
                kind = f"{where}, the other core {'idle' if other_idle else 'busy'}"
                wakes[kind] += 1
                pending[int(m.group(2))] = (t, kind)
                if tid == caller and m.group(1).startswith("hog"):
                    woke = (t, f"{where.replace('waker', 'caller')}, the other core "
                               f"{'idle' if other_idle else 'busy'}")
        elif name == "sys_enter_pread64" and tid == caller:
            near = woke is not None and t - woke[0] < RELEASE_WINDOW_S
            current = f"woke a CPU-bound thread {woke[1]}" if near and woke else "woke none"
            preempted = False
        elif name == "sys_enter_clock_nanosleep" and tid == caller:
            if current is not None:
                calls[f"{current}; caller {'preempted' if preempted else 'kept its core'}"] += 1
            current, woke = None, None
    return calls, wakes, latency


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hogs", default="1,2,3", help="CPU-bound threads beside, e.g. 1,2,3")
    p.add_argument("--calls", type=int, default=300, help="calls (1-2000)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    hogs = counts(p, args)
    if args.child:
        child(hogs[0], args.calls)
        return 0
    perf = shutil.which("perf")
    if perf is None:
        p.error("needs perf (linux-perf), which is not installed")
    if len(os.sched_getaffinity(0)) != 2:
        p.error("reads 'the other core': run it on a machine (or affinity) of two cores")
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"Linux {platform.release()}, 2 cores, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        for h in hogs:
            record = [perf, "record", "-q", "-o", data, *(a for e in EVENTS for a in ("-e", e)),
                      sys.executable, __file__, "--child", "--hogs", str(h),
                      "--calls", str(args.calls)]  # fmt: skip
            done = subprocess.run(record, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                p.error(f"perf record failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            lost = done.stdout.strip().splitlines()[-1]
            script = subprocess.run([perf, "script", "-i", data], capture_output=True,
                                    text=True, timeout=120, check=True).stdout
            calls, wakes, latency = analyse(script)
            print(f"hogs {h}: {lost} of {args.calls} calls lost the GIL")
            for what, n in sorted(calls.items(), key=lambda kv: -kv[1]):
                print(f"  {n:5d}  the release {what}")
            total = sum(wakes.values())
            print(f"  wake-ups of one of these threads by another: {total}")
            for what, n in sorted(wakes.items(), key=lambda kv: -kv[1]):
                took = sorted(latency.get(what, [])) or [float("nan")]
                print(f"  {n:5d}  {what} ({100 * n / max(total, 1):.0f} %); ran after "
                      f"{took[len(took) // 10]:.0f} / {took[len(took) // 2]:.0f} / "
                      f"{took[len(took) * 9 // 10]:.0f} us (p10 / median / p90)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
