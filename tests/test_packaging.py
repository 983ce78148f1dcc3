"""The wheel is self-contained: built from the source tree, installed in a fresh virtual
environment outside the checkout, ``wsgiscope serve`` serves the page and its assets."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a source distribution needs (the Dockerfile copies the same).
SOURCES = ("pyproject.toml", "setup.py", "build_backend.py", "README.md", "app", "simulator",
           "templates", "static")
#: The repository's folders and the import names the wheel gives them.
PYTHON_ROOTS = {"app": "wsgiscope.app", "simulator": "wsgiscope.simulator"}

pytestmark = pytest.mark.packaging


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_python_package_folder_is_in_the_wheel_configuration():
    """A sub-package missing from ``[tool.setuptools]`` works in a checkout and is absent
    from the wheel: every folder with an ``__init__.py`` must be listed and mapped."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = {}
    for folder, name in PYTHON_ROOTS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT)
            expected[".".join([name, *rel.parts[1:]])] = rel.as_posix()
    assert {k: config["package-dir"].get(k) for k in expected} == expected
    assert set(expected) <= set(config["packages"])


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


@pytest.mark.timeout(240)
def test_the_wheel_serves_the_page_from_a_fresh_environment(tmp_path: Path):
    # A copy of the sources, so the build leaves nothing in the checkout and no stale
    # ``build/`` folder can slip old files into the wheel.
    src = tmp_path / "src"
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "instance")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=skip)
        else:
            shutil.copy2(path, src / name)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # The pure-Python wheel: quick to build, and what an install without a C compiler gets
    # (test_compiled.py builds the compiled modules and checks they give the same Traces).
    env["WSGISCOPE_COMPILE"] = "0"
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
         cwd=tmp_path, env=env, timeout=180)
    (wheel,) = dist.glob("wsgiscope-*.whl")

    # Flask, gunicorn ... come from this interpreter's site-packages (no download); the
    # checkout's editable install is there too, so the check below makes sure the venv's
    # own copy is the one imported.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
         cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
          "--no-deps", "--force-reinstall", str(wheel)], cwd=tmp_path, env=env)
    where = _run([str(python), "-I", "-c",
                  "import wsgiscope.app as a, wsgiscope.simulator.presets as p;"
                  "print(a.__file__); print(a.asset_dir('templates'));"
                  "print(a.asset_dir('static')); print(len(p.PRESETS))"],
                 cwd=tmp_path, env=env).split("\n")
    site = str(venv / "lib")
    for what, path in zip(("wsgiscope.app", "templates", "static"), where, strict=False):
        assert path.startswith(site), f"{what} comes from {path}, not the venv"
    assert int(where[3]) > 0, "the wheel carries no lessons"

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "wsgiscope"), "serve", "--host", "127.0.0.1", "--port",
             str(port)],
            cwd=tmp_path, env=env, start_new_session=True, stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"wsgiscope serve exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no answer: {log.read_text()[-2000:]}"
            try:
                status, page = _get(base + "/")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200
        htmx = [p.name for p in (ROOT / "static" / "vendor").glob("htmx-*.min.js")]
        assert len(htmx) == 1
        assert f'<script src="/static/vendor/{htmx[0]}"></script>' in page
        status, body = _get(f"{base}/static/vendor/{htmx[0]}")
        assert status == 200 and "htmx" in body
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def test_the_base_install_brings_what_gunicorns_gevent_worker_imports():
    """``wsgiscope serve`` runs gunicorn's gevent worker, whose imports (gevent, packaging)
    gunicorn declares only under its ``gevent`` extra: a plain ``pip install .`` on a fresh
    machine must ask for that extra, or the server exits at start."""
    from packaging.requirements import Requirement

    deps = [Requirement(d) for d in tomllib.loads(
        (ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    assert any(d.name == "gunicorn" and "gevent" in d.extras for d in deps), deps
