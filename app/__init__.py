"""wsgiscope's web layer: the page, its htmx fragments and the WebSocket stream.

:func:`create_app` builds the Flask application. It is thin: it parses what the browser
sends, calls :mod:`wsgiscope.simulator` (or the lab), and renders.

* :mod:`.web` -- pages and htmx fragments (:mod:`.web.pages`), the scenario form
  (:mod:`.web.forms`), share links and exports (:mod:`.web.exports`), the request
  inspector (:mod:`.web.inspector`).
* :mod:`.stream` -- the WebSocket that plays a run; :mod:`.runs` -- a run validated and
  encoded for the page, shared by the stream and the pages.
* :mod:`.cli` -- the ``wsgiscope`` command, its sub-commands in :mod:`.commands`.
* :mod:`.lab` -- real servers on loopback, measured into the same Trace.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where it is used: a lab server's hooks import this package,
    from flask import Flask  # and a gunicorn arbiter must not load Flask for its workers

_HERE = Path(__file__).resolve().parent


def asset_dir(name: str) -> Path:
    """The folder of the installed ``wsgiscope.<name>`` assets (``templates``, ``static``).

    They are data packages inside the wheel (and the repository's top-level folders in an
    editable install), so the page works wherever the package is installed.
    """
    module = importlib.import_module(f"wsgiscope.{name}")
    return Path(next(iter(module.__path__)))

#: Hosts that only the local machine can reach; the lab is on by default when serving there.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def page_caps(compiled: bool) -> tuple[int, int]:
    """The page's event budget for one run, and the most requests it lets a scenario make.

    The budget is what about 40 CPU s buy, within the 60 s a simulation may take
    (``wsgiscope serve --sim-timeout``) on a busy machine: a request takes 8-30 events, and
    an event costs about 0.02 ms of CPU to simulate and prepare for the page in pure Python,
    about 0.01 ms with the compiled engine (``pip install .``; the page's preparing stays
    Python). The cap is what that budget admits, with room, of gunicorn sync -w 8 under
    Poisson arrivals with every cost at its default (15 events a request; a run's head
    projects 14-15, and one that projects past 90 % of the budget is refused before its
    first frame, saying how many such requests fit: app/heads.py). Measured on two cores
    (``tests/bench/bench_prepare.py``): 100,000 such requests pure take 21-26 CPU s,
    200,000 compiled 30-34. The canvas draws 200,000 at full frame rate
    (``tests/bench/bench_browser.py``).
    """
    return (200_000, 4_000_000) if compiled else (100_000, 2_000_000)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the wsgiscope web application.

    ``config`` is applied on top of the defaults. ``LAB_ENABLED`` says whether the page may
    start real servers (``POST /lab/run``); ``wsgiscope serve`` turns it on for a loopback
    host or with ``--allow-lab`` (which also sets ``LAB_REMOTE``). The guards of
    :mod:`.security` (allowed hosts, same origin, the lab's token ``LAB_TOKEN``) are always
    on; a token is generated when none is given.
    """
    from flask import Flask

    app = Flask(
        __name__,
        template_folder=str(asset_dir("templates")),
        static_folder=str(asset_dir("static")),
        static_url_path="/static",
        # Given, not searched for: Flask's search trips on the ``wsgiscope`` namespace package.
        root_path=str(_HERE),
        instance_path=str(_HERE / "instance"),
    )
    from ..simulator.core import COMPILED

    max_requests, max_events = page_caps(COMPILED)
    app.config.update(
        LAB_ENABLED=False,
        # Bounds that keep one browser's run cheap enough for a shared server.
        MAX_FRAMES=4000,
        # The event budget of one run the page asks for (simulator.budget), and the most
        # requests a scenario of the page may make: see page_caps.
        SIM_MAX_EVENTS=max_events,
        MAX_REQUESTS=max_requests,
        MAX_UPLOAD_BYTES=1_000_000,
        SOCK_SERVER_OPTIONS={"ping_interval": 20, "max_message_size": 2_000_000},
    )
    app.config.update(config or {})
    app.config.setdefault("MAX_CONTENT_LENGTH", app.config["MAX_UPLOAD_BYTES"])

    from .security import init_app as init_security

    init_security(app)  # allowed hosts, same origin, the lab's token

    from .lessons import init_app as init_lessons

    init_lessons(app)  # LESSONS: a teacher's lesson folders (default $WSGISCOPE_LESSONS)

    from .rooms import bp as rooms_bp  # before sock.init_app: it adds the rooms' socket
    from .stream import sock
    from .web.exports import bp as exports_bp
    from .web.pages import bp as pages_bp

    app.register_blueprint(pages_bp)
    app.register_blueprint(exports_bp)
    app.register_blueprint(rooms_bp)
    sock.init_app(app)

    try:
        from .lab.web import bp as lab_bp
    except ImportError:
        lab_bp = None
    if lab_bp is not None:
        app.register_blueprint(lab_bp)
    return app
