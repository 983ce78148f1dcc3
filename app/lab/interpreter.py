"""Which Python runs a lab server, and whether it is the one the scenario describes.

A scenario says ``machine.gil``: true for CPython's default build, false for a
free-threaded one (PEP 703). Measuring a ``gil: false`` scenario on a GIL build (or the
reverse) would compare the simulation with a different machine, so :func:`check` refuses
it. ``--python PATH`` points the lab at another interpreter (e.g. ``python3.13t``); it must
have wsgiscope, Flask and the server the scenario names installed.

:func:`probe` runs the interpreter once: it imports the server stack first (a C extension
that does not declare free-threading support switches the GIL back on at import), then
reports ``sys._is_gil_enabled()`` and the versions.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from typing import Any

from wsgiscope.simulator import ScenarioError

_PROBE = r"""
import importlib, json, platform, sys
from importlib import metadata
out = {"executable": sys.executable, "python": platform.python_version(),
       "implementation": platform.python_implementation(), "imports": {}}
for mod in sys.argv[1:]:
    try:
        importlib.import_module(mod)
        out["imports"][mod] = True
    except Exception as exc:
        out["imports"][mod] = f"{type(exc).__name__}: {exc}"[:200]
for dist in ("werkzeug", "gunicorn", "gevent", "flask"):
    try:
        out[dist] = metadata.version(dist)
    except Exception:
        out[dist] = None
import sysconfig
out["free_threaded_build"] = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
gil = getattr(sys, "_is_gil_enabled", None)
out["gil"] = bool(gil()) if gil else True
print(json.dumps(out))
"""


class InterpreterError(ScenarioError):
    """The interpreter cannot run the scenario's server as the scenario describes it."""


@functools.cache
def probe(python: str, modules: tuple[str, ...] = ()) -> dict[str, Any]:
    """What ``python`` is once it has imported ``modules``: version, GIL, which of the
    modules it could import, the server packages' versions (cached)."""
    try:
        done = subprocess.run(
            [python, "-c", _PROBE, *modules],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterpreterError("--python", f"cannot run {python}: {exc}") from None
    try:
        info: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InterpreterError("--python", f"{python} is not a working Python 3 ({err})") from None
    return info


def _needs(scenario: dict[str, Any]) -> list[str]:
    srv = scenario.get("server", {})
    mods = ["wsgiscope.app.lab.demo_app", "flask", "werkzeug"]
    if srv.get("kind") == "gunicorn":
        mods.append("gunicorn")
        if srv.get("worker_class") == "gevent":
            mods.append("gevent")
    return mods


def check(scenario: dict[str, Any], python: str | None = None) -> dict[str, Any]:
    """Check that ``python`` (default: this interpreter) can measure ``scenario`` (a
    normalised scenario dict); return its :func:`probe`. Raises :class:`InterpreterError`
    with a one-line message naming the field otherwise."""
    exe = python or sys.executable
    needs = _needs(scenario)
    info = probe(exe, tuple(needs))
    for mod in needs:
        got = info["imports"].get(mod)
        if got is not True:
            pkg = "wsgiscope" if mod.startswith("wsgiscope") else mod
            raise InterpreterError(
                "--python" if python else "server",
                f"{exe} cannot import {mod} ({got}); install {pkg} for that interpreter",
            )
    want_gil = bool(scenario.get("machine", {}).get("gil", True))
    if want_gil != info["gil"]:
        if want_gil:
            hint = (
                "run a default (GIL) build, or set PYTHON_GIL=1"
                if info.get("free_threaded_build")
                else "run a default (GIL) build"
            )
            raise InterpreterError(
                "machine.gil",
                f"the scenario describes CPython with a GIL, but {exe} "
                f"(Python {info['python']}) runs without one; {hint}",
            )
        why = (
            "was built with a GIL"
            if not info.get("free_threaded_build")
            else "switched the GIL back on (PYTHON_GIL=1, or an extension that does not "
            "support free threading)"
        )
        raise InterpreterError(
            "machine.gil",
            f"the scenario describes free-threaded Python (no GIL), but {exe} "
            f"(Python {info['python']}) {why}; point the lab at a free-threaded build "
            "with --python PATH (e.g. python3.13t)",
        )
    return info
