"""What one serving process shares between its viewers: runs, rooms, a viewer count.

:func:`get` builds it once per process from the app's settings (``wsgiscope serve`` calls
:func:`start` when a worker loads the app, so the simulation processes are forked from a
thread that lives as long as the worker):

========================  ===================================================================
``SIM_PROCESSES``         simulation processes (:mod:`.pool`); 0 (the default of a bare
                          ``create_app``, as in tests) runs the engine in the serving
                          process itself; ``wsgiscope serve`` gives cores / workers
``SIM_HEAD_PROCESSES``    simulation processes kept for large runs' heads (default 1 with
                          a pool): a first frame need not wait for other users' whole runs
``SIM_TIMEOUT_S``         wall-clock limit of one simulation (default 60)
``SIM_MEMORY_MB``         address-space limit of each simulation process (default 2048)
``RUN_CACHE_BYTES``       this process's cache of prepared runs (default 256 MB)
``REDIS_URL``             share runs and rooms with other processes and instances
``SHARED_CACHE_BYTES``    the bound of the shared cache in Redis (default 512 MB)
``MAX_VIEWERS``           open sockets this process accepts (default 1000); more are told
                          the server is full
``SEND_TIMEOUT_S``        how long a viewer may stay behind before it is dropped (10)
========================  ===================================================================

:class:`RunService` (:mod:`.runservice`) gives a :class:`~wsgiscope.app.runs.Prepared`
run for a request: from this process's cache, else from the shared cache, else by a
simulation, and only one simulation for identical requests in flight at once; a large run's
head comes first (:mod:`.heads`).

``get(app).rooms`` is the process's :class:`~wsgiscope.app.pubsub.Broker` for classroom
rooms: ``publish(room, message)`` and ``subscribe(room)``, in memory, or through Redis when
``REDIS_URL`` is set, so a room's followers may be on any worker or instance.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from .cache import DEFAULT_MEMORY_BYTES, DEFAULT_SHARED_BYTES, MemoryRunCache, RedisRunStore
from .pacer import SEND_INTERVAL_S, Pacer
from .pool import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, SimPool
from .pubsub import Broker, MemoryBroker, RedisBroker
from .runservice import Flight as Flight
from .runservice import RunJob as RunJob
from .runservice import RunService as RunService


class Viewers:
    """How many sockets this process serves, up to a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.dropped = 0
        self.refused = 0

    def enter(self) -> bool:
        if self.open >= self.limit:
            self.refused += 1
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


@dataclass
class Serving:
    runs: RunService
    rooms: Broker
    viewers: Viewers
    send_timeout_s: float
    pacer: Pacer
    pool: SimPool | None = None
    started: float = field(default_factory=time.time)

    def summary(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "viewers": self.viewers.open,
                "pacer": {"interval_s": round(self.pacer.interval, 4),
                          "passes": self.pacer.passes,
                          "last_pass_ms": round(self.pacer.last_pass_s * 1000, 2),
                          "longest_pass_ms": round(self.pacer.longest_pass_s * 1000, 2)},
                "viewers_max": self.viewers.limit, "viewers_dropped": self.viewers.dropped,
                "viewers_refused": self.viewers.refused, "runs": self.runs.summary(),
                "shared": self.runs.shared is not None, "uptime_s": round(
                    time.time() - self.started, 1)}


#: How long a head waits for a process kept for heads; past it the whole run's job brings it.
HEAD_QUEUE_WAIT_S = 10.0

_lock = threading.Lock()
_LOCAL = RunService(MemoryRunCache(64 * 1024 * 1024))


def local_runs() -> RunService:
    """The in-process run service used when a Session is built without one (tests)."""
    return _LOCAL


def _build(config: dict[str, Any]) -> Serving:
    processes = int(config.get("SIM_PROCESSES", 0))
    timeout_s = float(config.get("SIM_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    pool = heads = None
    memory_mb = int(config.get("SIM_MEMORY_MB", DEFAULT_MEMORY_MB))
    if processes > 0:
        pool = SimPool(processes, timeout_s=timeout_s, memory_mb=memory_mb)
        atexit.register(pool.close)
        head_processes = int(config.get("SIM_HEAD_PROCESSES", 1))
        if head_processes > 0:
            heads = SimPool(head_processes, timeout_s=timeout_s, memory_mb=memory_mb,
                            queue_wait_s=HEAD_QUEUE_WAIT_S)
            atexit.register(heads.close)
    url = config.get("REDIS_URL")
    shared = rooms = None
    if url:
        shared = RedisRunStore(url, int(config.get("SHARED_CACHE_BYTES", DEFAULT_SHARED_BYTES)))
        rooms = RedisBroker(url)
    runs = RunService(MemoryRunCache(int(config.get("RUN_CACHE_BYTES", DEFAULT_MEMORY_BYTES))),
                      pool, shared, timeout_s, config.get("SIM_MAX_EVENTS"), heads)
    # Every write of a socket goes through its outlet, pings included (see .outlet): the
    # socket library's own pinger would write from its reader, between a frame's bytes.
    config["SOCK_SERVER_OPTIONS"] = {**config.get("SOCK_SERVER_OPTIONS", {}),
                                     "ping_interval": None}
    return Serving(runs, rooms or MemoryBroker(), Viewers(int(config.get("MAX_VIEWERS", 1000))),
                   float(config.get("SEND_TIMEOUT_S", 10.0)),
                   Pacer(float(config.get("SEND_INTERVAL_S", SEND_INTERVAL_S))), pool)


def get(app: Flask) -> Serving:
    """This process's serving state for ``app``, built on first use."""
    state = app.extensions.get("wsgiscope_serving")
    if state is None:
        with _lock:
            state = app.extensions.get("wsgiscope_serving")
            if state is None:
                state = app.extensions["wsgiscope_serving"] = _build(app.config)
    return state  # type: ignore[no-any-return]


start = get
