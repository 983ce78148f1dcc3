"""gunicorn's workers (``gunicorn/workers/*.py``); the arbiter that runs them is in
:mod:`.arbiter`.

* :class:`GunicornSync` -- N worker processes accept from the shared socket, one request
  each, no keep-alive; the arbiter kills a worker silent for ``timeout``.
* :class:`GunicornGthread` -- each worker's main thread accepts while it has fewer than
  ``worker_connections`` connections (not when a thread is free) and queues them to a pool
  of ``threads`` threads.
* :class:`GunicornGevent` -- each worker runs greenlets on one thread: I/O yields, CPU
  blocks the whole worker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ..core import URGENT
from ..cpu import CALL, CPU, IO, Step, Thread
from ..request import Request
from .arbiter import Arbiter, CooperativeArbiter
from .base import Server, Slots, wake_delay

#: A system call that returns at once (a ready select(), a pipe write), in ms.
SYSCALL_MS = 0.002


class GunicornSync(Arbiter):
    def run_worker(self, key: str, w: dict[str, Any]) -> None:
        sim = self.sim
        th = Thread(sim, w["proc"], f"{key}/main")
        sim.add_process(w["proc"], [th])
        w["threads"] = [th]

        def handle(th: Thread, req: Request) -> None:
            # The worker notified the arbiter just before accepting; now it is silent.
            w["busy_since"] = sim.env.now
            w["conns"] += 1
            sim.serve(th, req, finished)

        def finished(_: Thread) -> None:
            w["busy_since"] = None
            if not self.done_one(key, w):
                acc.wait()

        acc = self.acceptor(th, handle)
        acc.wait()


class GunicornGthread(Arbiter):
    """gthread (``gunicorn/workers/gthread.py``): each worker's main thread runs the poller
    loop and a ``ThreadPoolExecutor(threads)`` serves the requests.

    Each of the main thread's steps is Python code, so it needs the worker's GIL, and each
    comes back from a blocking call (``select``, ``accept``), so it may wait for it:

    * the listener is readable: ``accept()`` (``accept_ms``), then the connection is wrapped
      and submitted to the pool (``gthread_submit_ms``, on the request's behalf);
    * a pool thread takes the work item and starts ``handle()`` (``gthread_handle_ms``: the
      future's state, ``wait_for_data``'s selector), then serves the request; when it is done
      the future's done-callback, in that thread, queues ``finish_request`` for the main
      thread (``gthread_defer_ms``);
    * the main thread runs ``finish_request`` (``gthread_finish_ms``): ``close_graceful``
      shuts the connection's write side -- the client has its response only now -- then
      blocks in ``recv()`` until the client has closed its end (a round trip and the
      client's wake-up), closes it and counts it (``gthread_finish_ms`` again, after
      taking the GIL back).

    The main thread handles what its ``select()`` returned one at a time, in order.
    """

    def kills_on_timeout(self) -> bool:
        # The heartbeat comes from the main thread, which keeps running: never killed.
        return False

    def run_worker(self, key: str, w: dict[str, Any]) -> None:
        sim = self.sim
        proc = w["proc"]
        costs = sim.costs
        listen = sim.listen
        main = Thread(sim, proc, f"{key}/main")
        pool = [Thread(sim, proc, f"{key}/t{i}") for i in range(1, sim.server["threads"] + 1)]
        sim.add_process(proc, [main, *pool])
        w["threads"] = [main, *pool]
        idle: deque[Thread] = deque(pool)
        queued: deque[Request] = w["queued"]

        def steps(cost_key: str, syscall: bool = False) -> list[Step] | None:
            """The Python of one step; with ``syscall``, a system call in its middle that
            returns at once but lets the GIL go all the same (so the thread takes it back)."""
            cost = costs[cost_key]
            if cost <= 0:
                return None
            if not syscall:
                return [(CPU, cost, None)]
            return [(CPU, cost / 2, None), (IO, SYSCALL_MS, None), (CPU, cost / 2, None)]

        accept_steps = steps("accept_ms")
        submit_steps = steps("gthread_submit_ms")
        # wait_for_data's selector.select(): the request's bytes are there, yet the GIL goes
        handle_steps = steps("gthread_handle_ms", syscall=True)
        # the done-callback's os.write() to the main thread's pipe
        defer_steps = steps("gthread_defer_ms", syscall=True)
        # What the main thread's select() returned that it has not handled yet.
        events: deque[Callable[[], None]] = deque()
        loop_state = {"busy": True, "armed": False}

        def post(event: Callable[[], None]) -> None:
            """select() returns ``event`` (a connection, or finish_request queued)."""
            if loop_state["busy"]:
                events.append(event)  # running: it handles it when back in its loop
                return
            # asleep in select(): it runs after a wake-up (base.Acceptor says why)
            loop_state["busy"] = True
            delay = wake_delay(sim)
            if delay > 0.0:
                sim.env.after(delay, woken, event, URGENT)
            else:
                event()

        def loop(_: Thread | None = None) -> None:
            """The main thread is back in its poller loop."""
            if not proc.alive:
                return
            if not loop_state["armed"] and self.may_accept(w):
                loop_state["armed"] = True
                listen.wait_readable(readable)
            if events:
                events.popleft()()
            else:
                loop_state["busy"] = False

        def readable() -> None:
            loop_state["armed"] = False
            if proc.alive:
                post(accept)

        def woken(event: Callable[[], None]) -> None:
            if proc.alive:
                event()

        def accept() -> None:
            if accept_steps is None:
                accepted(main)
            else:
                main.run(accept_steps, None, accepted)

        def accepted(_: Thread) -> None:
            req = listen.take()
            if req is None:  # EAGAIN: another worker took it
                loop()
                return
            sim.accepted(req, main)
            w["conns"] += 1
            if submit_steps is None:
                submitted(req)
            else:
                main.run(submit_steps, req, lambda _th: submitted(req))

        def submitted(req: Request) -> None:
            if not proc.alive:
                return
            if idle:
                handle(idle.popleft(), req)
            else:
                # ThreadPoolExecutor's queue is unbounded: the request waits in this worker.
                queued.append(req)
                req.pool_from = sim.env.now
                sim.rec.req(req, "pool", f"all {len(pool)} threads of {key} are busy")
            loop()

        def handle(th: Thread, req: Request) -> None:
            # The client's response ends when the main thread shuts the connection
            # (finish_request -> close_graceful), not when the pool thread is done.
            def served(t: Thread) -> None:
                finished(t, req)

            if handle_steps is None:
                sim.serve(th, req, served, respond=False)
            else:
                th.run(handle_steps, req, lambda _th: sim.serve(th, req, served, respond=False))

        def finished(th: Thread, req: Request) -> None:
            if not proc.alive:
                return
            if defer_steps is None:
                deferred(th, req)
            else:
                th.run(defer_steps, None, lambda t: deferred(t, req))

        def deferred(th: Thread, done: Request | None) -> None:
            if not proc.alive:
                return
            post(lambda: finish(done))
            if queued:
                req = queued.popleft()
                req.pool_wait_ms += sim.env.now - req.pool_from
                handle(th, req)
            else:
                idle.append(th)

        finish_ms = costs["gthread_finish_ms"]
        # close_graceful: after shutdown(SHUT_WR) the main thread blocks in recv() until the
        # client has read to the end and closed its side (a round trip and the client's
        # wake-up), then closes the socket and goes back to its loop: Python again.
        linger_ms = sim.machine["rtt_ms"] + costs["wakeup_ms"]

        def finish(req: Request | None) -> None:
            def shut(_th: Thread) -> None:
                if req is not None:
                    sim.respond(req)  # the client sees EOF

            steps: list[Step] = [(CPU, finish_ms, None), (CALL, shut, None)]
            if linger_ms > 0:
                steps += [(IO, linger_ms, None), (CPU, finish_ms, None)]
            main.run(steps, None, closed)

        def closed(_th: Thread) -> None:
            self.done_one(key, w)
            loop()

        w["accepting"] = True
        loop()


class GunicornGevent(CooperativeArbiter):
    def run_worker(self, key: str, w: dict[str, Any]) -> None:
        sim = self.sim
        proc = w["proc"]
        hub = Thread(sim, proc, f"{key}/accept")
        sim.add_process(proc, [hub])
        w["threads"] = [hub]
        slots = Slots(f"{key}/g")
        free: dict[str, Thread] = {}

        def ready() -> bool:
            return self.may_accept(w)

        def handle(_hub: Thread, req: Request) -> None:
            w["conns"] += 1
            name = slots.take()
            g = free.pop(name, None)
            if g is None:
                g = Thread(sim, proc, name)
                w["threads"].append(g)
                sim.add_process(proc, [g])
            sim.serve(g, req, finished)
            acc.wait()

        def finished(g: Thread) -> None:
            free[g.key] = g
            slots.give(g.key)
            retiring = self.done_one(key, w)
            if proc.alive and not retiring and not w["accepting"]:
                w["accepting"] = True
                acc.wait()

        acc = self.acceptor(hub, handle, ready)
        w["accepting"] = True
        acc.wait()


#: ``worker_class`` -> its model
WORKERS: dict[str, type[Arbiter]] = {
    "sync": GunicornSync,
    "gthread": GunicornGthread,
    "gevent": GunicornGevent,
}


def model_for(server: dict[str, Any]) -> type[Server]:
    """The model for a ``kind: gunicorn`` server section."""
    return WORKERS[server["worker_class"]]
