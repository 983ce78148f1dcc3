"""Runs by request, for every viewer of one serving process: from this process's cache,
else from the shared cache, else by a simulation, and only one simulation for identical
requests in flight at once (here: the others wait for it, or play its head; across
processes: a claim in Redis, the others poll the shared cache until it is there).

A large run comes in two parts (:mod:`.heads`): :meth:`RunService.start` gives its head as
soon as it is simulated and simulates the rest in the background (a thread, a greenlet
under gevent, waiting on a simulation process); :meth:`RunService.flight` says when the
whole run is there. Only whole runs are cached. :meth:`RunService.get` gives the whole run.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from wsgiscope import simulator

from .cache import MemoryRunCache, RedisRunStore, cache_key
from .heads import Head, produce
from .pool import DEFAULT_TIMEOUT_S, JobError, PoolError, SimPool
from .runs import Prepared, load_for_web, run_key

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

    def request(self, head: bool = False, head_only: bool = False) -> dict[str, Any]:
        return {"job": "prepare", "scenario": self.scenario, "seed": self.seed,
                "max_frames": self.max_frames, "max_requests": self.max_requests,
                "max_events": self.max_events, "key": self.key, "head": head,
                "head_only": head_only}


class Flight:
    """A run being simulated: its head (a large run's first moments, :mod:`.heads`) as soon
    as it is there, then the whole run or the error. ``first`` is set when any of them
    arrives, ``done`` when the whole run or the error has."""

    def __init__(self) -> None:
        self.first = threading.Event()
        self.done = threading.Event()
        self.head: Prepared | None = None
        self.result: Prepared | None = None
        self.error: Exception | None = None

    def got_head(self, head: Prepared) -> None:
        if self.head is None:  # a retried job sends it again
            self.head = head
            self.first.set()

    def refuse(self, error: Exception) -> None:
        """The run is refused (found by its head, before the whole run's job said so)."""
        if not self.first.is_set():
            self.error = error
            self.first.set()

    def finish(self) -> None:
        self.done.set()
        self.first.set()

    def ready(self) -> Prepared | None:
        """The whole run once it is there (None before; the error raised)."""
        if not self.done.is_set():
            return None
        if self.error is not None:
            raise self.error
        return self.result


def _refusal(exc: JobError) -> Exception:
    if exc.scenario_error:
        return simulator.ScenarioError(exc.field, exc.message)
    return exc


class RunService:
    """Prepared runs by request: cached, shared, simulated once (see the module docstring)."""

    def __init__(self, memory: MemoryRunCache, pool: SimPool | None = None,
                 shared: RedisRunStore | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_events: int | None = None,
                 heads: SimPool | None = None) -> None:
        self.memory = memory
        self.max_events = max_events
        self.pool = pool
        #: Processes kept for heads: a large run's head comes from one of them when every
        #: process of ``pool`` is busy (see :meth:`_head_lane`).
        self.heads = heads
        self.shared = shared
        self.timeout_s = timeout_s
        self._flights: dict[str, Flight] = {}
        self._errors: OrderedDict[str, Exception] = OrderedDict()
        self._jobs: OrderedDict[tuple[Any, ...], RunJob] = OrderedDict()
        self._lock = threading.Lock()
        self._alive = 0  # runs handed out and not yet garbage (cached, or held by a viewer)
        self.stats = {"simulations": 0, "joined": 0, "shared_hits": 0, "shared_waits": 0,
                      "refused": 0, "heads": 0, "lane_heads": 0}

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
        found = self._join(job)
        if isinstance(found, tuple):
            flight, mine = found
            if mine:
                self._fly(job, flight)
            found = self._wait(flight, flight.done)
        return found

    def start(self, job: RunJob) -> tuple[Prepared, Flight | None]:
        """The run of ``job`` as soon as there is something to play: the whole run (cached,
        or small), or the head of a large run with the flight that simulates the rest in
        the background (its ``done`` is set when the whole run is there). Raises as
        :meth:`get`."""
        found = self._join(job)
        if not isinstance(found, tuple):
            return found, None
        flight, mine = found
        if mine:
            threading.Thread(target=self._fly, args=(job, flight, True), daemon=True,
                             name="wsgiscope-run").start()
        run = self._wait(flight, flight.first)
        return run, (flight if run.partial else None)

    def _join(self, job: RunJob) -> Prepared | tuple[Flight, bool]:
        """The cached run, or the flight that makes it and whether it is ours to fly."""
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
                flight = self._flights[ck] = Flight()
        if error is not None:
            self.stats["refused"] += 1
            raise error
        assert flight is not None
        if not mine:
            self.stats["joined"] += 1
        return flight, mine

    def _wait(self, flight: Flight, event: threading.Event) -> Prepared:
        if not event.wait(self.timeout_s * 2 + 5):
            raise PoolError("the simulation of this run is taking too long; try again")
        if flight.error is not None:
            raise flight.error
        run = flight.result or flight.head
        assert run is not None
        return run

    def _fly(self, job: RunJob, flight: Flight, head: bool = False) -> None:
        """Simulate ``job`` for ``flight`` (its head first, when ``head``); the flight
        holds the result or the error."""
        ck = job.cache_key

        def got_head(run: Prepared) -> None:
            self.stats["heads"] += 1
            flight.got_head(run)

        if head and self.heads is not None and self.pool is not None and not self.pool.idle():
            threading.Thread(target=self._head_lane, args=(job, flight), daemon=True,
                             name="wsgiscope-head").start()
        try:
            run = self._produce(job, got_head if head else None)
            flight.result = run
            self.memory.put(ck, run)
            self._track(run)
        except (simulator.ScenarioError, JobError) as exc:
            refusal = _refusal(exc) if isinstance(exc, JobError) else exc
            flight.error = refusal
            with self._lock:
                self._errors[ck] = refusal
                while len(self._errors) > KEEP_ERRORS:
                    self._errors.popitem(last=False)
        except Exception as exc:
            flight.error = exc
        finally:
            with self._lock:
                self._flights.pop(ck, None)
            flight.finish()

    def _head_lane(self, job: RunJob, flight: Flight) -> None:
        """The head of ``job`` from a process kept for heads, asked for when every
        simulation process is busy: the whole run waits its turn, and its first frame waits
        only for the heads before it, not for other users' whole runs. The flight takes
        whichever head comes first (the whole run's job still sends its own); a refusal
        the head finds (:func:`.heads.check_pace`) is told at once."""
        assert self.heads is not None
        if flight.first.is_set():  # the whole run's job got a process first after all
            return
        try:
            data = self.heads.call(job.request(head_only=True))
        except JobError as exc:
            flight.refuse(_refusal(exc))
            return
        except (PoolError, OSError):
            return  # the whole run's job brings its head when it runs
        if not flight.first.is_set():
            self.stats["lane_heads"] += 1
            flight.got_head(Prepared.from_bytes(data))

    def _track(self, run: Prepared) -> None:
        self._alive += 1
        weakref.finalize(run, self._forget)

    def _forget(self) -> None:
        self._alive -= 1

    def _produce(self, job: RunJob, on_head: Head | None = None) -> Prepared:
        shared = self.shared
        if shared is None:
            return self._simulate(job, on_head)
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
            run, data = self._simulate_bytes(job, on_head)
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

    def _simulate(self, job: RunJob, on_head: Head | None = None) -> Prepared:
        if self.pool is None:
            self.stats["simulations"] += 1
            scenario = load_for_web(job.scenario, job.max_requests)
            return produce(scenario, job.seed, job.max_events, job.max_frames, job.key,
                           on_head)
        return self._simulate_bytes(job, on_head)[0]

    def _simulate_bytes(self, job: RunJob, on_head: Head | None = None
                        ) -> tuple[Prepared, bytes]:
        if self.pool is None:
            run = self._simulate(job, on_head)
            return run, run.to_bytes()
        self.stats["simulations"] += 1

        def part(data: bytes) -> None:
            if on_head is not None:
                on_head(Prepared.from_bytes(data))

        data = self.pool.call(job.request(head=on_head is not None), part)
        return Prepared.from_bytes(data), data

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.stats, "in_flight": len(self._flights),
                               "runs_alive": self._alive, "cache": self.memory.summary()}
        if self.shared is not None:
            out["shared"] = self.shared.summary()
        if self.pool is not None:
            out["pool"] = {"processes": self.pool.size, **self.pool.stats}
        if self.heads is not None:
            out["heads_pool"] = {"processes": self.heads.size, **self.heads.stats}
        return out

