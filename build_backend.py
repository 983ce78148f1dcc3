"""setuptools' build backend, asking for mypyc when a wheel is built (see ``setup.py``).

A regular build (``pip install .``, ``pip wheel .``) gets mypy, which carries mypyc, in its
build environment, so that the simulator's hot modules can be compiled; an editable install
(``pip install -e .``) is never compiled and does not fetch it, nor does any build with
``WSGISCOPE_COMPILE=0``.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the backend's other hooks, unchanged)

#: What compiling needs besides setuptools.
COMPILER = ["mypy>=1.10"]


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    wanted = os.environ.get("WSGISCOPE_COMPILE", "auto").strip().lower()
    extra = [] if wanted in ("0", "no", "false") else COMPILER
    return _setuptools.get_requires_for_build_wheel(config_settings) + extra
