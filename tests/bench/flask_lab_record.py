"""Measure the Flask lessons on this machine and record what was measured.

Runs the lab (real servers on 127.0.0.1) for every Flask path of the hook lessons and for
the lost-update lesson's three counters (unlocked ``counter += 1``, unlocked ``counter =
counter + one()``, locked), several times each, and writes what it saw, with the date, the
Python and the versions, to ``docs/measured/flask-lab.json``::

    python tests/bench/flask_lab_record.py [--runs 5] [--out docs/measured/flask-lab.json]
        [--python /path/to/python3.9 ...]

It also runs the same three loops in plain threads, without Flask, on this Python and on
each ``--python`` given (an interpreter without Flask will do), to show where the
interpreter's version changes the result.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from wsgiscope import simulator
from wsgiscope.app.lab.flask_hooks import _LOOPS
from wsgiscope.app.lab.hooks_compare import compare_hooks, flask_path
from wsgiscope.app.lab.measure import measure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "simulator"))
from flask_cases import scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIMES = 200_000
THREADS = 4


def counters(call: bool, lock: bool) -> dict[str, Any]:
    return {
        "name": f"{THREADS} threads, {TIMES:,} increments each",
        "server": {"kind": "werkzeug", "threaded": True},
        "endpoints": {"/count": [{"increment": "counter", "times": TIMES, "call": call,
                                  "lock": lock}]},
        "workload": [{"at_ms": 0, "count": THREADS, "path": "/count"}],
    }


# Four threads run each loop; prints {"version": ..., "<loop>": lost, ...} as JSON.
_THREADS_ONLY = "import json, platform, threading\n" + _LOOPS + r"""
out = {"version": platform.python_version()}
for loop in (plain, call, locked):
    counter = 0
    threads = [threading.Thread(target=loop, args=(300000,)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    out[loop.__name__] = 4 * 300000 - counter
print(json.dumps(out))
"""


def threads_only(python: str) -> dict[str, Any]:
    done = subprocess.run([python, "-c", _THREADS_ONLY], capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(done.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "docs" / "measured" / "flask-lab.json"))
    ap.add_argument("--python", action="append", default=[],
                    help="another interpreter for the plain-thread loops")
    args = ap.parse_args()

    sc = scenario()
    hooks = []
    for _ in range(args.runs):
        measured = measure(sc)
        result = compare_hooks(simulator.run(sc), measured)
        hooks.append(result["summary"])
    paths = {r.path: flask_path(measured, r.id) for r in measured.requests}

    lost: dict[str, Any] = {}
    for label, call, lock in (("counter += 1", False, False),
                              ("counter = counter + one()", True, False),
                              ("with lock: counter += 1", True, True)):
        runs = []
        for _ in range(args.runs):
            row = measure(counters(call, lock)).summary["increments"]["counter"]
            runs.append(row)
        lost[label] = {"increments_per_run": runs[0]["increments"],
                       "lost_per_run": [r["lost"] for r in runs]}
        print(label, lost[label]["lost_per_run"], flush=True)

    plain_threads = [threads_only(py) for py in [sys.executable, *args.python]]
    print(plain_threads, flush=True)
    record = {
        "measured_on": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "flask": metadata.version("flask"),
        "werkzeug": metadata.version("werkzeug"),
        "cores": len(os.sched_getaffinity(0)),
        "switch_interval_s": sys.getswitchinterval(),
        "hook_order": {"runs": hooks, "paths": paths},
        "lost_updates": {"server": "werkzeug threaded", "threads": THREADS,
                         "increments_per_request": TIMES, "counters": lost},
        "lost_updates_plain_threads": {"threads": 4, "increments_per_thread": 300_000,
                                       "by_python": plain_threads},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
