"""wsgiscope's web layer: the page, its htmx fragments and the WebSocket stream.

:func:`create_app` builds the Flask application. It is thin: it parses what the browser
sends, calls :mod:`simulator` (or the lab), and renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

_ROOT = Path(__file__).resolve().parent.parent

#: Hosts that only the local machine can reach; the lab is on by default when serving there.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the wsgiscope web application.

    ``config`` is applied on top of the defaults. ``LAB_ENABLED`` says whether the page may
    start real servers (``POST /lab/run``); ``wsgiscope serve`` turns it on for a loopback
    host or with ``--allow-lab``.
    """
    app = Flask(
        __name__,
        template_folder=str(_ROOT / "templates"),
        static_folder=str(_ROOT / "static"),
        static_url_path="/static",
    )
    app.config.update(
        LAB_ENABLED=False,
        # Bounds that keep one browser's run cheap enough for a shared server.
        MAX_FRAMES=4000,
        # The page runs scenarios of up to this many requests (the CLI takes the engine's limit).
        MAX_REQUESTS=50_000,
        MAX_UPLOAD_BYTES=1_000_000,
        SOCK_SERVER_OPTIONS={"ping_interval": 20, "max_message_size": 2_000_000},
    )
    app.config.update(config or {})
    app.config.setdefault("MAX_CONTENT_LENGTH", app.config["MAX_UPLOAD_BYTES"])

    from .stream import sock
    from .views import bp as views_bp

    app.register_blueprint(views_bp)
    sock.init_app(app)

    try:
        from .lab.web import bp as lab_bp
    except ImportError:
        lab_bp = None
    if lab_bp is not None:
        app.register_blueprint(lab_bp)
    return app
