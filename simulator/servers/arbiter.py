"""gunicorn's arbiter (``gunicorn/arbiter.py``): it spawns the workers, kills silent ones and
replaces the ones that exit.

**A worker's timeout.** The arbiter wakes about once a second; a worker whose heartbeat is
older than ``timeout`` gets SIGABRT, and ``workers/base.py`` ``handle_abort`` raises
``SystemExit`` in whatever the worker was running. What its client sees depends on the
worker class (read in gunicorn 27, and measured here with ``--timeout 2`` and a request
that burns 10 s of CPU):

* sync: ``handle()`` catches it (``BaseException``) and ``handle_error`` writes an HTTP 500,
  2 ms after the signal; then the worker exits. A response already being written is cut
  off instead (``headers_sent``: the connection is closed).
* gevent: ``handle_request`` swallows ``SystemExit``: no response. The greenlet goes back to
  its keep-alive loop, whose ``next(parser)`` stops at once for a request that said
  ``Connection: close`` (``Parser.__next__``: ``mesg.should_close()``), as every client here
  does (one request per connection), and ``handle()`` closes the connection: the client
  sees it closed with nothing, at the signal (measured: within 1 ms; a keep-alive client
  would wait ``keepalive`` for it). The worker stops accepting, lets its other greenlets
  finish and exits at its loop's next one-second tick. Its heartbeat is written by that
  loop once a second, so a CPU-bound request is killed ``timeout`` after the last tick
  before it took over, at the arbiter's next check: from 1 s before to 1 s after
  ``timeout`` counted from its start (measured with ``--timeout 1``: 0.86-1.37 s). A
  worker up before the run ticks at a drawn phase to it.
* gthread: its heartbeat comes from the main thread, so a long request is never killed; if
  its process dies, every connection it holds is closed without a response.

A second timeout after SIGABRT gets SIGKILL: the worker dies at once.

**A replacement.** A worker that exits (killed, or after ``max_requests``) is replaced as
the arbiter does it: the exit's SIGCHLD wakes the arbiter, which reaps it
(``costs.reap_ms`` after the exit, mostly the exiting interpreter's teardown); its
``manage_workers`` forks a new worker (``costs.fork_ms``); the new worker imports the app
and starts accepting (``server.boot_ms``). Measured here by ``wsgiscope calibrate``
(gunicorn 27.0.1, CPython 3.11, Flask 3.1, the lab's one-file Flask app,
``gunicorn --no-control-socket -w 1 --max-requests 1`` on 127.0.0.1; server hooks log
CLOCK_MONOTONIC at ``worker_exit``, ``child_exit`` (reaped), ``post_fork`` and
``post_worker_init`` (app loaded), and the next connection accepted; six recycles a run,
seven runs on a quiet 2-core machine, 2026-11-21): reaped 60-92 ms after the exit (median
77), forked 3.5-4.9 ms later, the app imported 128-144 ms after the fork (Flask and the
app, in the worker: the arbiter does not import the app unless ``--preload``), then
0.3 ms to accept: about 210 ms from exit to accepting. (With Flask already imported in
the arbiter, as ``--preload`` would do, the import takes 5-8 ms.) The defaults are those
medians: reap 77 ms, fork 3.7 ms, boot 130 ms; an app that imports more boots slower.
Single recycles vary: reaped 48-112 ms after the exit, booted in 103-217 ms (18 recycles in
three runs), 0.7-1.7 times the run's median. Each replacement's reap and boot are therefore
drawn (seeded) as the default times 0.75 plus an exponential tail (1x on average):
:func:`spread`.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

from ..context import Sim
from ..core import NORMAL
from ..cpu import Process, Thread
from .base import Server


def spread(rng: random.Random, typical: float) -> float:
    """One recycle's reap or boot time: ``typical`` times 0.75 plus an exponential tail (the
    factor is 1 on average; 0.75-1.5 nineteen times in twenty), as measured above."""
    return typical * (0.75 + rng.expovariate(4.0))


ARBITER_TICK_MS = 1000.0  # gunicorn's arbiter sleeps up to 1 s between checks
#: gevent's worker loop (``ggevent.py`` ``run``): ``notify()``, then ``gevent.sleep(1.0)``;
#: its heartbeat and its check for a graceful exit come once a second.
GEVENT_LOOP_MS = 1000.0


class Arbiter(Server):
    """The arbiter: spawns workers, replaces dead ones, kills silent ones.

    A worker is a dict: its process, threads, requests served, in-flight count, requests
    queued for its thread pool, and ``retiring`` (False, or why it is leaving): a worker
    that reached ``max_requests`` (or, gevent, was aborted) stops accepting, finishes what
    it has, exits, and the arbiter boots a replacement.
    """

    cooperative = False

    def __init__(self, sim: Sim) -> None:
        super().__init__(sim)
        s = sim.server
        self.n = s["workers"]
        self.timeout_ms = s["timeout_s"] * 1000.0
        self.boot_ms = s["boot_ms"]
        self.max_requests = s["max_requests"]
        self.workers: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        for i in range(1, self.n + 1):
            self.spawn(f"w{i}", booted=True)
        if self.timeout_ms > 0 and self.kills_on_timeout():
            # The arbiter wakes about once a second, at no particular phase to the requests.
            first = self.sim.rng.uniform(0.0, ARBITER_TICK_MS)
            self.sim.env.at(first, self.tick, None, NORMAL)

    def kills_on_timeout(self) -> bool:
        return True

    def spawn(self, key: str, booted: bool) -> None:
        sim = self.sim
        label = f"worker {key[1:]} ({sim.server['worker_class']})"
        w: dict[str, Any] = {
            "proc": Process(sim, key, label, cooperative=self.cooperative),
            "served": 0, "busy_since": None, "threads": [], "queued": deque(),
            "conns": 0, "retiring": False, "accepting": False, "aborted": False,
            "loop_from": sim.env.now,
        }
        self.workers[key] = w
        if booted:
            self.boot(key, w)
        else:
            boot_ms = spread(sim.rng, self.boot_ms)
            sim.rec.worker(key, "boot", f"forked by the arbiter; imports the app in "
                                        f"{boot_ms:.0f} ms")
            sim.env.after(boot_ms, lambda _a: self.boot(key, w), None, NORMAL)

    def boot(self, key: str, w: dict[str, Any]) -> None:
        if self.workers.get(key) is not w:
            return
        w["loop_from"] = self.sim.env.now
        self.sim.rec.worker(key, "ready", "")
        self.run_worker(key, w)

    def run_worker(self, key: str, w: dict[str, Any]) -> None:
        raise NotImplementedError

    def done_one(self, key: str, w: dict[str, Any]) -> bool:
        """Count a finished request. Returns True when the worker is retiring."""
        w["served"] += 1
        w["conns"] -= 1
        if self.max_requests and w["served"] >= self.max_requests and not w["retiring"]:
            w["retiring"] = f"max_requests ({self.max_requests}) reached"
        if w["retiring"] and w["conns"] == 0 and w["proc"].alive:
            self.leave(key, w)
        return bool(w["retiring"])

    def leave(self, key: str, w: dict[str, Any]) -> None:
        """A retiring worker has nothing left to do: it exits."""
        self.exit(key, w, "exit", str(w["retiring"]))

    def may_accept(self, w: dict[str, Any]) -> bool:
        """gthread/gevent: accept while under worker_connections (and not retiring)."""
        if not w["retiring"] and w["conns"] < self.sim.server["worker_connections"]:
            return True
        w["accepting"] = False
        return False

    def exit(self, key: str, w: dict[str, Any], how: str, why: str) -> None:
        """The worker's process ends: every connection it still holds is closed without a
        response. The arbiter replaces it (see the module docstring)."""
        proc = w["proc"]
        if not proc.alive:
            return
        proc.alive = False
        fail = self.sim.fail
        for th in w["threads"]:
            if th.req is not None:
                fail(th.req, "reset", None, f"{why}: the worker's process died, and the "
                                            "connection closed without a response")
            th.kill()
        for req in w["queued"]:
            fail(req, "reset", None, "the worker died before a thread took it")
        w["queued"].clear()
        self.sim.rec.worker(key, how, why)
        self.sim.env.after(spread(self.sim.rng, self.costs["reap_ms"]), self.reaped, key,
                           NORMAL)

    def reaped(self, key: str) -> None:
        """SIGCHLD woke the arbiter and it reaped the worker: it forks a new one."""
        self.sim.env.after(self.costs["fork_ms"], lambda _a: self.spawn(key, booted=False),
                           None, NORMAL)

    def abort(self, key: str, w: dict[str, Any], why: str) -> None:
        """SIGABRT: ``SystemExit`` in the worker's code. The sync worker answers its request
        with a 500 (or cuts off a response being written) and exits."""
        for th in w["threads"]:
            req = th.req
            if req is None:
                continue
            if th.stage == "write":
                self.sim.fail(req, "reset", None, f"{why}; the response was being written, "
                                                  "so the worker closed the connection")
            else:
                self.sim.fail(req, "error", 500, f"{why}; the worker answered 500")
        self.exit(key, w, "killed", why)

    def tick(self, _: Any) -> None:
        now = self.sim.env.now
        for key, w in list(self.workers.items()):
            silent = self.silent_since(w)
            if silent is not None and now - silent > self.timeout_ms and w["proc"].alive:
                why = (f"worker timeout: silent for {(now - silent) / 1000:.1f} s, over "
                       f"timeout {self.timeout_ms / 1000:g} s")
                if w["aborted"]:
                    self.exit(key, w, "killed", f"{why} again after SIGABRT (SIGKILL)")
                else:
                    w["aborted"] = True
                    self.abort(key, w, f"{why} (SIGABRT)")
        if self.sim.outstanding > 0:
            self.sim.env.after(ARBITER_TICK_MS, self.tick, None, NORMAL)

    def silent_since(self, w: dict[str, Any]) -> float | None:
        busy = w["busy_since"]
        return float(busy) if busy is not None else None


class CooperativeArbiter(Arbiter):
    """The arbiter of gevent workers: a worker's heartbeat and its exit come from its loop
    greenlet, once a second, and only when the running greenlet yields."""

    cooperative = True

    def start(self) -> None:
        super().start()
        # Workers up before the run began: their loops tick once a second at no particular
        # phase to the requests, so the last heartbeat came up to a second before t = 0
        # (a request that hogs the loop from t = 0 is killed 0-2 s later, not 1-2 s).
        for w in self.workers.values():
            w["loop_from"] = -self.sim.rng.uniform(0.0, GEVENT_LOOP_MS)

    def silent_since(self, w: dict[str, Any]) -> float | None:
        gil = w["proc"].gil
        if gil is None or gil.holder is None:
            return None
        # silent since the loop's last tick before the running greenlet took over
        return self.last_tick(w, float(gil.granted_at))

    def last_tick(self, w: dict[str, Any], t: float) -> float:
        start = float(w["loop_from"])
        return start + math.floor((t - start) / GEVENT_LOOP_MS) * GEVENT_LOOP_MS

    def leave(self, key: str, w: dict[str, Any]) -> None:
        # The loop greenlet sees the worker idle at its next tick, then the process exits.
        start = float(w["loop_from"])
        now = self.sim.env.now
        at = start + math.ceil((now - start) / GEVENT_LOOP_MS - 1e-9) * GEVENT_LOOP_MS
        self.sim.env.at(at, lambda _a: self.exit(key, w, "exit", str(w["retiring"])), None,
                        NORMAL)

    def abort(self, key: str, w: dict[str, Any], why: str) -> None:
        """SIGABRT: the running greenlet's ``SystemExit`` is swallowed, its client gets no
        response; the worker stops accepting, finishes its other greenlets and exits."""
        sim = self.sim
        proc = w["proc"]
        gil = proc.gil
        hog = gil.holder if gil is not None else None
        w["retiring"] = "aborted after the worker timeout"
        w["accepting"] = False
        # the loop greenlet runs as soon as the hog yields: its ticks start again now
        w["loop_from"] = sim.env.now
        sim.rec.worker(key, "killed", why)
        if gil is not None and isinstance(hog, Thread) and hog.req is not None:
            req = hog.req
            on_done = hog.on_done
            hog.token += 1  # drop what it was doing
            if hog.state == "cpu":
                sim.cores.remove(hog)
            gil.release(hog)
            hog._set("idle")
            sim.fail(req, "reset", None,
                     f"{why}; gevent's worker swallows the SystemExit: no response, and the "
                     "connection is closed at once (the request said Connection: close)")
            if on_done is not None:
                on_done(hog)
        elif w["conns"] == 0:
            self.leave(key, w)
