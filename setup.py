"""The build's one extra: the simulator's hot modules compiled with mypyc, when that can be done.

``pyproject.toml`` holds everything else. A regular build (``pip install .``, ``pip wheel .``,
the Dockerfile) compiles :data:`HOT` with mypyc if mypyc imports and a C compiler is found,
and falls back to the pure-Python package if not, or if compiling fails: it never fails the
install. The compiled modules give the very same Trace (a test says so) about twice as fast.

* An editable install (``pip install -e .``) is never compiled: a compiled module would
  shadow the ``.py`` file a developer is editing.
* ``WSGISCOPE_COMPILE=0`` builds pure Python whatever is available; ``WSGISCOPE_COMPILE=1``
  makes a failure to compile an error instead of a fallback.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
#: The modules compiled: the event loop and everything it calls per event, and the Chrome
#: Trace export's sweep over the events (1.4x as fast compiled).
HOT = ("core", "eventlog", "request", "runner", "cores", "gil", "cpu", "kernel", "program",
       "arrivals", "engine", "servers/base", "servers/gunicorn", "servers/werkzeug",
       "servers/arbiter", "export_chrome")
#: Where the sources are laid out under their import names for mypyc (``wsgiscope.simulator``).
STAGE = Path("build") / "mypyc-src"


def _say(message: str) -> None:
    print(f"wsgiscope build: {message}", file=sys.stderr)


def _flag() -> str:
    return os.environ.get("WSGISCOPE_COMPILE", "auto").strip().lower()


def _building() -> bool:
    """True for a command that builds the package (not metadata only, not editable)."""
    commands = set(sys.argv[1:])
    if commands & {"editable_wheel", "develop"}:
        return False
    return bool(commands & {"bdist_wheel", "build", "build_ext", "install"})


def _has_compiler() -> bool:
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    return bool(cc) and shutil.which(cc[0]) is not None


def _compiled_modules() -> list:  # type: ignore[type-arg]
    """mypyc's extensions for :data:`HOT`, or none (and why) when they cannot be built."""
    flag = _flag()
    if flag in ("0", "no", "false") or not _building():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return _fallback("mypyc is not installed")
    if not _has_compiler():
        return _fallback("no C compiler found")
    # mypyc names a module after its path: lay the package out as it is imported.
    stage = ROOT / STAGE
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(ROOT / "simulator", stage / "wsgiscope" / "simulator",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "lessons"))
    (stage / "wsgiscope" / "__init__.py").write_text("")
    paths = [(STAGE / "wsgiscope" / "simulator" / f"{name}.py").as_posix() for name in HOT]
    try:
        return list(mypycify(paths, opt_level="3", group_name="wsgiscope_simulator",
                             target_dir=(Path("build") / "mypyc").as_posix()))
    except BaseException as exc:  # mypyc reports type errors with SystemExit
        return _fallback(f"mypyc could not compile the simulator ({exc!r})")


def _fallback(why: str) -> list:  # type: ignore[type-arg]
    if _flag() in ("1", "yes", "true"):
        raise SystemExit(f"wsgiscope build: WSGISCOPE_COMPILE=1 but {why}")
    _say(f"{why}: building the pure-Python simulator")
    return []


class OptionalBuildExt(build_ext):
    """Build the compiled modules if the compiler can; if it cannot, leave them out (the
    ``.py`` files are in the wheel either way). Never in place: see the module docstring."""

    def run(self) -> None:
        if self.inplace or getattr(self, "editable_mode", False):
            _say("not compiling in place (an editable checkout stays pure Python)")
            return
        try:
            super().run()
        except Exception as exc:
            if _flag() in ("1", "yes", "true"):
                raise
            _say(f"compiling failed ({exc}): building the pure-Python simulator")
            for ext in self.extensions:  # a module without its shared library cannot load
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            self.extensions = []

    def get_outputs(self) -> list[str]:
        return super().get_outputs() if self.extensions else []


setup(ext_modules=_compiled_modules(), cmdclass={"build_ext": OptionalBuildExt})
