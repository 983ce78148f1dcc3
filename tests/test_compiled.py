"""The simulator compiled with mypyc (``setup.py``) gives the very Traces the pure-Python one
gives, and the same exports: every bundled lesson at two seeds, digested at full precision
with its JSON and Chrome Trace output.

The compiled modules are built from a copy of the sources, as a wheel build does it
(``setup.py build``), into a temporary folder, and compared with the same build less its
extension modules; the test is skipped, saying why, where mypyc or a C compiler is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGEST = ROOT / "tests" / "bench" / "trace_digest.py"

pytestmark = pytest.mark.packaging


def _skip_without_a_compiler() -> None:
    pytest.importorskip("mypyc", reason="mypyc is not installed: no compiled build to compare")
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if not cc or shutil.which(cc[0]) is None:
        pytest.skip("no C compiler: no compiled build to compare")


def _digests(lib: Path, compiled: bool, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(lib)
    out = tmp / f"digests-{lib.name}.json"
    code = (
        "import sys, runpy, wsgiscope.simulator.core as core;"
        "print(core.__file__);"
        f"sys.argv = ['trace_digest', '--quick', '--save', {str(out)!r}];"
        f"runpy.run_path({str(DIGEST)!r}, run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    where = done.stdout.splitlines()[0]
    assert where.startswith(str(lib)), f"wsgiscope.simulator.core came from {where}"
    assert where.endswith((".so", ".pyd")) == compiled, f"core came from {where}"
    return dict(json.loads(out.read_text()))


@pytest.mark.timeout(600)
def test_compiled_simulator_gives_the_same_traces(tmp_path: Path) -> None:
    _skip_without_a_compiler()
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("app", "simulator", "templates", "static"):
        shutil.copytree(ROOT / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
    lib = tmp_path / "lib"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["WSGISCOPE_COMPILE"] = "1"  # a failure to compile fails the test, not a fallback
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build", "--build-lib", str(lib),
         "--build-temp", str(tmp_path / "temp")],
        cwd=src, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    built = sorted(p.name for p in (lib / "wsgiscope" / "simulator").glob("*.so"))
    assert built, "setup.py build compiled nothing"

    # the same build without its extension modules: the pure-Python package of the same sources
    pure_lib = tmp_path / "pure"
    shutil.copytree(lib, pure_lib, ignore=shutil.ignore_patterns("*.so", "*.pyd"))
    compiled = _digests(lib, True, tmp_path)
    pure = _digests(pure_lib, False, tmp_path)
    assert len(pure) >= 2 * 30
    assert compiled == pure
