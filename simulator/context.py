"""What a server model may use of a run: the :class:`Sim` protocol.

The engine's ``Sim`` provides it; the server models type against it and never import the
engine, so the layers stay one-way::

    core, trace, kernel, scenario  <-  request  <-  gil  <-  cpu  <-  context
        <-  servers  <-  engine  <-  the package's ``run``

Processes and threads need less (:class:`~.cpu.Host`: clock, recorder, machine settings,
cores); :class:`Sim` is that plus what a server does with connections and requests.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from .cpu import Host, Process, Thread
from .kernel import ListenSocket
from .request import Request


class Sim(Host, Protocol):
    """One run, as the server models see it."""

    rng: random.Random
    server: dict[str, Any]
    costs: dict[str, Any]
    listen: ListenSocket
    #: requests the server has not finished with yet (the arbiter stops when it is 0)
    outstanding: int
    #: processes that have served a request: a fresh process's first request pays
    #: ``costs.first_request_ms`` (a forked werkzeug child's is in ``fork_child_ms``)
    warm: set[Process]

    def add_process(self, proc: Process, threads: list[Thread]) -> None:
        """Show ``proc`` and ``threads`` as lanes of the timeline."""

    def accepted(self, req: Request, th: Thread) -> None:
        """``th`` has just ``accept()``-ed ``req``."""

    def serve(self, th: Thread, req: Request, on_done: Callable[[Thread], None],
              respond: bool = True) -> None:
        """Run ``req``'s whole lifecycle on ``th``; then ``on_done(th)`` (and, unless
        ``respond`` is False, the client has its response)."""

    def respond(self, req: Request) -> None:
        """The client has the whole response to ``req`` now (the server closed it)."""

    def fail(self, req: Request, status: str, http: int | None, why: str) -> None:
        """End ``req`` with ``status`` (unless it has ended already) because of ``why``."""
