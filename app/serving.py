"""What one serving process shares between its viewers: runs, rooms, a viewer count.

:func:`get` builds it once per process from the app's settings (``wsgiscope serve`` calls
:func:`start` when a worker loads the app, so the simulation processes are forked from a
thread that lives as long as the worker):

========================  ===================================================================
``SIM_PROCESSES``         simulation processes (:mod:`.pool`); 0 (the default of a bare
                          ``create_app``, as in tests) runs the engine in the serving
                          process itself; ``wsgiscope serve`` gives cores / workers
``SIM_TIMEOUT_S``         wall-clock limit of one simulation (default 60)
``SIM_MEMORY_MB``         address-space limit of each simulation process (default 2048)
``RUN_CACHE_BYTES``       this process's cache of prepared runs (default 256 MB)
``REDIS_URL``             share runs and rooms with other processes and instances
``SHARED_CACHE_BYTES``    the bound of the shared cache in Redis (default 512 MB)
``MAX_VIEWERS``           open sockets this process accepts (default 1000); more are told
                          the server is full
``SEND_TIMEOUT_S``        how long a viewer may stay behind before it is dropped (10)
========================  ===================================================================

:class:`RunService` gives a :class:`~wsgiscope.app.runs.Prepared` run for a request: from
this process's cache, else from the shared cache, else by a simulation, and only one
simulation for identical requests in flight at once (here: the others wait for it; across
processes: a claim in Redis, the others poll the shared cache until it is there).

``get(app).rooms`` is the process's :class:`~wsgiscope.app.pubsub.Broker` for classroom
rooms: ``publish(room, message)`` and ``subscribe(room)``, in memory, or through Redis when
``REDIS_URL`` is set, so a room's followers may be on any worker or instance.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from wsgiscope import simulator

from .cache import (
    DEFAULT_MEMORY_BYTES,
    DEFAULT_SHARED_BYTES,
    MemoryRunCache,
    RedisRunStore,
    cache_key,
)
from .pacer import SEND_INTERVAL_S, Pacer
from .pool import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, JobError, PoolError, SimPool
from .pubsub import Broker, MemoryBroker, RedisBroker
from .runs import Prepared, load_for_web, prepare, run_key

#: Refusals remembered per process (a hostile page repeating an expensive scenario).
KEEP_ERRORS = 256
#: Validated scenarios remembered per process, by their text.
KEEP_JOBS = 256
#: How often a process waiting for another one's simulation looks in the shared cache.
SHARED_POLL_S = 0.05


@dataclass
class RunJob:
    """A validated request for a run: what the engine needs, and the keys it is known by."""

    scenario: dict[str, Any]  # canonical (Scenario.to_dict())
    seed: int | None
    max_frames: int
    max_requests: int
    max_events: int | None = None  # the engine's event budget (None: the engine's own)
    key: str = ""  # the page's run key (resume)
    cache_key: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or run_key(self.scenario, self.seed)
        self.cache_key = self.cache_key or cache_key(
            self.scenario, self.seed, self.max_frames, self.max_requests, self.max_events)

    def request(self) -> dict[str, Any]:
        return {"job": "prepare", "scenario": self.scenario, "seed": self.seed,
                "max_frames": self.max_frames, "max_requests": self.max_requests,
                "max_events": self.max_events, "key": self.key}


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Prepared | None = None
        self.error: Exception | None = None


def _refusal(exc: JobError) -> Exception:
    if exc.scenario_error:
        return simulator.ScenarioError(exc.field, exc.message)
    return exc


class RunService:
    """Prepared runs by request: cached, shared, simulated once (see the module docstring)."""

    def __init__(self, memory: MemoryRunCache, pool: SimPool | None = None,
                 shared: RedisRunStore | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_events: int | None = None) -> None:
        self.memory = memory
        self.max_events = max_events
        self.pool = pool
        self.shared = shared
        self.timeout_s = timeout_s
        self._flights: dict[str, _Flight] = {}
        self._errors: OrderedDict[str, Exception] = OrderedDict()
        self._jobs: OrderedDict[tuple[Any, ...], RunJob] = OrderedDict()
        self._lock = threading.Lock()
        self._alive = 0  # runs handed out and not yet garbage (cached, or held by a viewer)
        self.stats = {"simulations": 0, "joined": 0, "shared_hits": 0, "shared_waits": 0,
                      "refused": 0}

    def job(self, scenario: dict[str, Any], seed: int | None, max_frames: int,
            max_requests: int) -> RunJob:
        """A request for the run of a validated scenario, within this service's budget."""
        return RunJob(scenario, seed, max_frames, max_requests, self.max_events)

    def job_for(self, scenario_data: Any, seed: int | None, max_frames: int,
                max_requests: int) -> RunJob:
        """Validate ``scenario_data`` (raising ScenarioError) and make its job. A class
        sends the same lesson's JSON many times: the same text is validated once."""
        try:
            text = json.dumps(scenario_data, sort_keys=True, separators=(",", ":"),
                              allow_nan=False)
            memo: tuple[Any, ...] | None = (
                hashlib.sha256(text.encode()).digest(), seed, max_frames, max_requests)
        except (TypeError, ValueError, RecursionError):
            memo = None  # not plain JSON: validation says what is wrong with it
        job = self._jobs.get(memo) if memo is not None else None
        if job is None:
            scenario = load_for_web(scenario_data, max_requests)
            job = self.job(scenario.to_dict(), seed, max_frames, max_requests)
            if memo is not None:
                with self._lock:
                    self._jobs[memo] = job
                    while len(self._jobs) > KEEP_JOBS:
                        self._jobs.popitem(last=False)
        return job

    def get(self, job: RunJob) -> Prepared:
        """The prepared run of ``job``. Raises ScenarioError or JobError for a run the
        engine refuses, PoolError when it cannot be run now."""
        ck = job.cache_key
        run = self.memory.get(ck)
        if run is not None:
            return run
        with self._lock:
            error = self._errors.get(ck)
            flight = self._flights.get(ck)
            if flight is None and error is None:
                run = self.memory.peek(ck)  # finished while we looked
                if run is not None:
                    return run
            mine = flight is None and error is None
            if mine:
                flight = self._flights[ck] = _Flight()
        if error is not None:
            self.stats["refused"] += 1
            raise error
        assert flight is not None
        if not mine:
            self.stats["joined"] += 1
            if not flight.done.wait(self.timeout_s * 2 + 5):
                raise PoolError("the simulation of this run is taking too long; try again")
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result
        try:
            run = self._produce(job)
            flight.result = run
            self.memory.put(ck, run)
            self._track(run)
            return run
        except (simulator.ScenarioError, JobError) as exc:
            refusal = _refusal(exc) if isinstance(exc, JobError) else exc
            flight.error = refusal
            with self._lock:
                self._errors[ck] = refusal
                while len(self._errors) > KEEP_ERRORS:
                    self._errors.popitem(last=False)
            raise refusal from None
        except Exception as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(ck, None)
            flight.done.set()

    def _track(self, run: Prepared) -> None:
        self._alive += 1
        weakref.finalize(run, self._forget)

    def _forget(self) -> None:
        self._alive -= 1

    def _produce(self, job: RunJob) -> Prepared:
        shared = self.shared
        if shared is None:
            return self._simulate(job)
        ck = job.cache_key
        deadline = time.monotonic() + self.timeout_s * 2 + 5
        waited = False
        while True:
            data = shared.get(ck)
            if data is not None:
                self.stats["shared_waits" if waited else "shared_hits"] += 1
                try:
                    return Prepared.from_bytes(data)
                except ValueError:
                    pass  # another version's entry: simulate and replace it
            error = shared.get_error(ck)
            if error is not None:
                raise JobError(error.get("message", ""), error.get("field", ""),
                               bool(error.get("scenario_error")))
            if shared.claim(ck, self.timeout_s + 5):
                break
            if time.monotonic() > deadline:
                raise PoolError("the simulation of this run is taking too long; try again")
            waited = True
            time.sleep(SHARED_POLL_S)  # a greenlet's sleep under gevent
        try:
            run, data = self._simulate_bytes(job)
            shared.put(ck, data)
            return run
        except JobError as exc:
            shared.put_error(ck, {"message": exc.message, "field": exc.field,
                                  "scenario_error": exc.scenario_error})
            raise
        except simulator.ScenarioError as exc:
            shared.put_error(ck, {"message": exc.message, "field": exc.field,
                                  "scenario_error": True})
            raise
        finally:
            shared.release(ck)

    def _simulate(self, job: RunJob) -> Prepared:
        if self.pool is None:
            self.stats["simulations"] += 1
            scenario = load_for_web(job.scenario, job.max_requests)
            trace = simulator.run(scenario, seed=job.seed, max_events=job.max_events)
            return prepare(trace, job.max_frames, job.key)
        return self._simulate_bytes(job)[0]

    def _simulate_bytes(self, job: RunJob) -> tuple[Prepared, bytes]:
        if self.pool is None:
            run = self._simulate(job)
            return run, run.to_bytes()
        self.stats["simulations"] += 1
        data = self.pool.call(job.request())
        return Prepared.from_bytes(data), data

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.stats, "in_flight": len(self._flights),
                               "runs_alive": self._alive, "cache": self.memory.summary()}
        if self.shared is not None:
            out["shared"] = self.shared.summary()
        if self.pool is not None:
            out["pool"] = {"processes": self.pool.size, **self.pool.stats}
        return out


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


_lock = threading.Lock()
_LOCAL = RunService(MemoryRunCache(64 * 1024 * 1024))


def local_runs() -> RunService:
    """The in-process run service used when a Session is built without one (tests)."""
    return _LOCAL


def _build(config: dict[str, Any]) -> Serving:
    processes = int(config.get("SIM_PROCESSES", 0))
    timeout_s = float(config.get("SIM_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    pool = None
    if processes > 0:
        pool = SimPool(processes, timeout_s=timeout_s,
                       memory_mb=int(config.get("SIM_MEMORY_MB", DEFAULT_MEMORY_MB)))
        atexit.register(pool.close)
    url = config.get("REDIS_URL")
    shared = rooms = None
    if url:
        shared = RedisRunStore(url, int(config.get("SHARED_CACHE_BYTES", DEFAULT_SHARED_BYTES)))
        rooms = RedisBroker(url)
    runs = RunService(MemoryRunCache(int(config.get("RUN_CACHE_BYTES", DEFAULT_MEMORY_BYTES))),
                      pool, shared, timeout_s, config.get("SIM_MAX_EVENTS"))
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
