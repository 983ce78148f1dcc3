"""Server models: how each WSGI server accepts connections and hands them to threads.

One module per server family, each following the real server's source (see docs/ARCHITECTURE.md):
:mod:`.werkzeug` (the dev server: single, threaded, forking) and :mod:`.gunicorn` (the
arbiter and its sync, gthread and gevent workers). :mod:`.base` holds what they share.
A family module offers ``model_for(server_section) -> Server subclass``; adding a server is
adding its module and one line to :data:`FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..context import Sim
from . import gunicorn, werkzeug
from .base import Server

#: ``server.kind`` -> the function picking that family's model for a server section
FAMILIES: dict[str, Callable[[dict[str, Any]], type[Server]]] = {
    "werkzeug": werkzeug.model_for,
    "gunicorn": gunicorn.model_for,
}


def make_server(sim: Sim) -> Server:
    """The model of the scenario's server, ready to :meth:`~.base.Server.start`."""
    return FAMILIES[sim.server["kind"]](sim.server)(sim)
