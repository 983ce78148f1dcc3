"""Run a scenario: clients, the kernel, a server model, cores and GILs -> a :class:`Trace`.

:class:`Sim` is the one run: it owns the clock, the recorder, the cores and the listen
socket, plays the clients, and gives the server models what :class:`~.context.Sim` says
they may use. Only the package's :func:`run` imports this module.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from . import budget
from .arrivals import Arrivals, Random, arrivals
from .core import NORMAL, URGENT, Env
from .cores import Cores
from .cpu import CALL, CPU, IO, Below, Process, Step, Thread
from .kernel import ListenSocket, ack_retry_offsets_ms, syn_offsets_ms
from .program import Programs, server_steps
from .races import replay
from .request import Recorder, Request
from .scenario import Scenario, load_scenario
from .servers import make_server
from .trace import RequestRecord, Trace, summarise

#: ``str(n)`` for the SYN attempts a request usually makes, made once.
_DIGITS: Final = tuple(str(n) for n in range(10))



class Sim:
    """Everything one run shares: clock, recorder, cores, listen socket, settings
    (it provides :class:`~.context.Sim`)."""

    def __init__(self, sc: Scenario, seed: int) -> None:
        self.sc = sc
        self.env = Env()
        self.rng: random.Random = Random(seed)
        self.rec = Recorder(self.env)
        self.server = sc.server
        self.machine = sc.machine
        self.costs = sc.costs
        self.client = sc.client
        # The cores draw their own numbers (placement ties, migrations) from the seed, so
        # contention for cores does not shift the run's other draws.
        self.cores = Cores(self.env, sc.machine["cores"], sc.machine["context_switch_ms"],
                           Random(f"cores-{seed}"), self.rec)
        self.listen = ListenSocket(sc.server["backlog"], sc.machine["somaxconn"],
                                   self.rec.backlog, Below(self.rng))
        self.lanes: dict[str, dict[str, Any]] = {}
        #: when each request is sent, to which path; its requests, made as they are sent
        self.arr = Arrivals([], None, "", None, 0.0)
        self.requests: list[Request] = self.arr.made
        self.outstanding = 0
        self._timeout_ms = sc.client["timeout_s"] * 1000.0
        self._rtt_ms: float = sc.machine["rtt_ms"]
        self._first_ms: float = sc.costs["first_request_ms"]
        #: processes that have served a request: a fresh one's first pays _first_ms
        self.warm: set[Process] = set()
        # bound methods made once: each is scheduled or called back per request
        self._arrive_cb: Callable[[int], None] = self._arrive
        self._time_out_cb: Callable[[int], None] = self._time_out
        self._handshake_cb: Callable[[Request], None] = self._handshake
        self._served_cb: Callable[[Thread], None] = self._served
        self.syn_offsets = syn_offsets_ms(sc.machine["syn_schedule"], sc.client["syn_retries"])
        self.ack_offsets = ack_retry_offsets_ms(sc.machine["rto_min_ms"],
                                                sc.machine["synack_retries"])
        c = sc.costs
        self.head, self.tail = server_steps(c, sc.server["kind"])
        self.app = Programs(self, sc.endpoints, self.head, self.tail)
        self.programs = self.app.programs
        # gunicorn's async workers read each request under gevent.Timeout(keepalive)
        s = sc.server
        self.read_limit_ms = (
            s["keepalive_s"] * 1000.0
            if s["kind"] == "gunicorn" and s["worker_class"] == "gevent" and s["keepalive_s"] > 0
            else math.inf
        )

    # -- lanes ----------------------------------------------------------------------------
    def add_process(self, proc: Process, threads: list[Thread]) -> None:
        lane = self.lanes.setdefault(proc.key, {"key": proc.key, "label": proc.label,
                                                "threads": []})
        for th in threads:
            if th.key not in lane["threads"]:
                lane["threads"].append(th.key)

    # -- clients ----------------------------------------------------------------------------
    def start_clients(self) -> None:
        # Every send time is drawn now (the run's other random numbers come after them),
        # but a request is made when it is sent (Arrivals.request), not all before the first
        # event.
        self.arr = arrivals(self.sc, self.rng, self.client["launch_gap_ms"])
        self.requests = self.arr.made
        self.outstanding = len(self.arr)
        if self.outstanding:
            # Arrivals and client timeouts are both in time order: each is a stream with one
            # pending event, which keeps the heap small.
            self.env.at(0.0, self._arrive_cb, 0, NORMAL)
            self.env.at(self._timeout_ms, self._time_out_cb, 0, NORMAL)

    def _arrive(self, i: int) -> None:
        arr = self.arr
        req = arr.request(i)
        if i + 1 < len(arr):
            self.env.at(arr.sent(i + 1), self._arrive_cb, i + 1, NORMAL)
        self.syn(req)

    def _time_out(self, i: int) -> None:
        arr = self.arr
        self.give_up(arr.request(i))
        reqs = self.requests  # one not made yet is not sent yet: not answered either
        i += 1
        while i < len(reqs) and reqs[i].status:  # already answered: no deadline to watch
            i += 1
        if i < len(arr):
            self.env.at(arr.sent(i) + self._timeout_ms, self._time_out_cb, i, NORMAL)

    def syn(self, req: Request) -> None:
        """A SYN (first or retransmitted) reaches the listening socket."""
        if req.status:
            return
        attempt = req.attempt
        self.rec.req(req, "syn", _DIGITS[attempt] if attempt < 10 else str(attempt))
        listen = self.listen
        if len(listen.queue) >= listen.capacity:
            self.rec.req(req, "drop", f"accept queue full ({listen.capacity})")
            if req.attempt < len(self.syn_offsets) - 1:
                req.attempt += 1
                at = self._on_tick(req.sent + self.syn_offsets[req.attempt - 1])
                self.env.at(at, self.syn, req)
            else:
                self.env.at(req.sent + self.syn_offsets[-1], self.connect_failed, req)
            return
        rtt = self._rtt_ms
        if rtt > 0:
            self.env.after(rtt, self._handshake_cb, req, URGENT)
        else:
            self._handshake(req)

    def _handshake(self, req: Request) -> None:
        """The client's final ACK arrives: the connection joins the accept queue if there is
        room; if not, the ACK is dropped and the client, which believes it is connected,
        must wait for a retransmit to get in."""
        if req.status:
            return
        listen = self.listen
        if len(listen.queue) < listen.capacity:
            self.rec.req(req, "backlog", str(len(listen.queue) + 1))
            listen.offer(req)
            return
        if req.ack_try == 0:
            req.connected = self.env.now
        offsets = self.ack_offsets
        if req.ack_try < len(offsets) - 1:
            at = self._on_tick(req.connected + offsets[req.ack_try])
            req.ack_try += 1
            self.rec.req(req, "overflow",
                         f"accept queue full ({listen.capacity}): final ACK dropped; "
                         f"next try at {at / 1000:.3f} s")
            self.env.at(at, self._handshake, req, NORMAL)
        else:
            req.note = "the kernel gave up on a connection that never fit the accept queue"
            self._end(req, "reset", None)
            self._server_done(req)

    def _on_tick(self, t: float) -> float:
        """Kernel timers fire on the next jiffy, so retransmits due together arrive together."""
        tick = self.machine["timer_tick_ms"]
        return math.ceil(t / tick - 1e-9) * tick if tick > 0 else t

    def connect_failed(self, req: Request) -> None:
        if not req.status:
            req.note = f"connect() timed out after {req.attempt} SYN retransmits"
            self._end(req, "timeout", None)
            self._server_done(req)

    def give_up(self, req: Request) -> None:
        if req.status:
            return
        req.note = req.note or f"the client gave up after {self.client['timeout_s']:g} s"
        self._end(req, "timeout", None)
        if req.accepted is None and req not in self.listen.queue:
            self._server_done(req)  # still retransmitting SYNs: the server never sees it

    def _end(self, req: Request, status: str, http: int | None) -> None:
        req.status = status
        req.http_status = http
        req.finished = self.env.now
        self.rec.req(req, "done", status)

    def _server_done(self, req: Request) -> None:
        if not req.server_done:
            req.server_done = True
            self.outstanding -= 1

    # -- server callbacks ---------------------------------------------------------------------
    def accepted(self, req: Request, th: Thread) -> None:
        req.accepted = self.env.now
        req.queue_ms = self.env.now - req.sent
        req.worker = th.proc.key
        req.thread = th.key
        self.rec.req(req, "accept", th.key)

    def serve(self, th: Thread, req: Request, on_done: Callable[[Thread], None],
              respond: bool = True) -> None:
        """Run the request's whole lifecycle on ``th``; then ``on_done(th)``. With
        ``respond=False`` the server calls :meth:`respond` later (gthread's main thread)."""
        req.started = self.env.now
        req.thread = th.key
        req.worker = th.proc.key
        if req.status == "timeout":
            # The client already hung up: the server reads EOF and closes.
            steps: list[Step] = self.head[:1]
        else:
            steps = self.programs[req.path]()
            proc = th.proc
            if proc not in self.warm:
                self.warm.add(proc)
                if self._first_ms > 0.0:  # after the request is read: the app's first use
                    steps = steps[:1] + [(CPU, self._first_ms, "parse")] + steps[1:]
            if req.send_ms > 0:
                # a slow client: reading its request takes as long as it takes to send it
                recv_ms = self.costs["recv_ms"] + req.send_ms
                if recv_ms > self.read_limit_ms:
                    steps = [(IO, self.read_limit_ms, "recv"), (CALL, self._cut_off, None)]
                else:
                    steps = [(IO, recv_ms, "recv")] + (
                        steps[1:] if steps and steps[0][2] == "recv" else steps)

        # what to do once the steps are run, kept on the thread (no closure per request)
        th.job = req
        th.job_done = on_done
        th.job_responds = respond
        th.run(steps, req, self._served_cb)

    def _served(self, th: Thread) -> None:
        """``th`` has run the steps :meth:`serve` gave it."""
        req = th.job
        on_done = th.job_done
        th.job = None
        th.job_done = None
        if req is not None and (th.job_responds or req.status):
            self.respond(req)
        if on_done is not None:
            on_done(th)

    def respond(self, req: Request) -> None:
        """The server is done with ``req``: the client has its whole response."""
        if not req.status:
            http = self.app.http.get(req.path, 200)
            self._end(req, "ok" if http < 500 else "error", http)
        self._server_done(req)

    def _cut_off(self, th: Thread) -> None:
        if th.req is not None:
            self.fail(th.req, "reset", None,
                      f"the gevent worker gives a request keepalive "
                      f"({self.server['keepalive_s']:g} s) to arrive; this client was slower, "
                      "so it closed the connection without a response")

    def fail(self, req: Request, status: str, http: int | None, why: str) -> None:
        if not req.status:
            req.note = why
            self._end(req, status, http)
        self._server_done(req)


def run(scenario: dict[str, Any] | Scenario, seed: int | None = None,
        max_events: int | None = None) -> Trace:
    """Simulate ``scenario``; the same scenario and seed always give the same Trace.

    A run costing more than ``max_events`` (default and most: ``budget.MAX_EVENTS``) is
    refused before it starts, or stopped, with a ``budget.BudgetError`` (a ScenarioError).
    """
    return Simulation(scenario, seed, max_events).finish()


class Simulation:
    """One run played in steps: :meth:`run_until` a time, look at what happened so far
    (:meth:`partial`), carry on, :meth:`finish` with the very Trace :func:`run` gives (events
    run in time order either way). The budget is checked here and held over all the steps."""

    def __init__(self, scenario: dict[str, Any] | Scenario, seed: int | None = None,
                 max_events: int | None = None) -> None:
        sc = load_scenario(scenario)
        self.scenario = sc
        self.max_events = budget.check(sc, max_events)
        self.seed = sc.seed if seed is None else seed
        with no_gc():
            self.sim = sim = Sim(sc, self.seed)
            sim.rec.backlog(0)
            make_server(sim).start()
            sim.start_clients()
        sim.env.max_events = self.max_events
        self._trace: Trace | None = None

    @property
    def events_run(self) -> int:
        return self.sim.env.events_run

    @property
    def finished(self) -> bool:
        """True when no event is left to run."""
        return not self.sim.env._heap

    @property
    def requests(self) -> list[Request]:
        """Every request of the run, in the order they are sent (known from the start; those
        not sent yet are made now: :attr:`arrivals` tells of them without making them)."""
        return self.sim.arr.made_all()

    @property
    def arrivals(self) -> Arrivals:
        """When each request is sent and to which path, known from the start."""
        return self.sim.arr

    def run_until(self, t_ms: float) -> bool:
        """Run every event at or before ``t_ms``; True when the run has no events left."""
        with no_gc():
            try:
                self.sim.env.run(until=t_ms)
            except budget.BudgetError as exc:
                raise budget.BudgetError(budget.estimate(self.scenario)[0].field,
                                         exc.message) from None
        return self.finished

    def partial(self) -> Trace:
        """What has happened so far, as a Trace: the event log up to now (the run's own
        log: read it before the run goes on), the lanes so far and the records of the
        requests sent so far (a request still in flight has no ``finished_ms`` and a status
        that is not final). No summary: that needs the whole run."""
        sim, now = self.sim, self.sim.env.now
        sim.arr.made_until(now)
        return self._trace_of([r.record() for r in sim.requests if r.sent <= now],
                              [{**p, "threads": list(p["threads"])} for p in sim.lanes.values()])

    def finish(self) -> Trace:
        """Run to the end and return the run's Trace."""
        if self._trace is not None:
            return self._trace
        sim, sc, seed = self.sim, self.scenario, self.seed
        with no_gc():
            budget.run_within(sim.env, sc, self.max_events)
            sim.arr.made_all()  # all sent by now
            lost = _replay_increments(sim, seed)
            trace = self._trace_of([r.record() for r in sim.requests], list(sim.lanes.values()))
            trace.summary = summarise(trace)
            trace.summary["events_simulated"] = sim.env.events_run
            trace.summary["races"] = sum(1 for r in sim.requests if r.note.startswith("read "))
            if lost is not None:
                trace.summary["increments"] = lost
                trace.summary["lost_updates"] = sum(row["lost"] for row in lost.values())
        self._trace = trace
        return trace

    def _trace_of(self, requests: list[RequestRecord], lanes: list[dict[str, Any]]) -> Trace:
        return Trace(scenario=self.scenario.to_dict(), source="simulated",
                     events=self.sim.rec.events, requests=requests, processes=lanes,
                     backlog_limit=self.sim.listen.capacity,
                     cores=self.scenario.machine["cores"], seed=self.seed)


@contextmanager
def no_gc() -> Iterator[None]:
    """Speed: a run makes millions of small objects (events, tuples, records) that the
    cyclic garbage collector would scan over and over for nothing; pause it meanwhile
    (encoding a large run's output too)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _replay_increments(sim: Sim, seed: int) -> dict[str, dict[str, int]] | None:
    """The lost updates of the run's increment loops (:func:`.races.replay`)."""
    if not sim.app.loops:
        return None
    found = replay(sim.app.loops, sim.rec.events, seed)
    sim.rec.events[:] = found.events
    for req in sim.requests:
        n = found.lost_by_req.get(req.id, 0)
        if n and not req.note:
            req.note = f"its increments stored over {n} update(s) by other threads: lost"
    return found.summary
