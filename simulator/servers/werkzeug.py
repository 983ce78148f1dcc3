"""werkzeug's dev server (``werkzeug/serving.py``, what Flask's ``app.run`` starts).

* :class:`WerkzeugSingle` -- ``threaded=False``: one thread accepts, serves, accepts again.
* :class:`WerkzeugThreaded` -- ``threaded=True``: the main thread accepts and starts a new
  daemon thread per connection; no pool, no cap.
* :class:`WerkzeugForking` -- ``processes=N``: the main process accepts and forks a child per
  connection; with N children alive it blocks in ``waitpid`` and accepts nothing.
"""

from __future__ import annotations

from typing import Any

from ..cpu import CALL, CPU, Process, Step, Thread
from ..request import Request
from .base import Server, Slots


def model_for(server: dict[str, Any]) -> type[Server]:
    """The model for a ``kind: werkzeug`` server section."""
    if server["processes"] > 1:
        return WerkzeugForking
    return WerkzeugThreaded if server["threaded"] else WerkzeugSingle


class WerkzeugSingle(Server):
    def start(self) -> None:
        proc = Process(self.sim, "server", "dev server (1 process, 1 thread)")
        th = Thread(self.sim, proc, "server/main")
        self.sim.add_process(proc, [th])

        def handle(th: Thread, req: Request) -> None:
            self.sim.serve(th, req, acc.wait)

        acc = self.acceptor(th, handle)
        acc.wait()


class WerkzeugThreaded(Server):
    def start(self) -> None:
        sim = self.sim
        proc = Process(sim, "server", "dev server (threaded)")
        main = Thread(sim, proc, "server/main")
        sim.add_process(proc, [main])
        slots = Slots("server/t")
        idle: dict[str, Thread] = {}
        boot = sim.costs["thread_boot_ms"]
        resume: list[Step] = [(CPU, sim.costs["accept_ms"], None)]

        def blocked(th: Thread) -> None:
            th._set("io")  # in the lock of ``_started.wait()``

        # Made before the closures below that use it (its handler is set after them): a
        # compiled build reads a nested function's free variable from where it is bound.
        acc = self.acceptor(main, lambda _th, _req: None)

        def handle(th: Thread, req: Request) -> None:
            def spawn(_: Thread) -> None:
                key = slots.take()
                worker = idle.pop(key, None) or Thread(sim, proc, key)
                sim.add_process(proc, [worker])

                def done(t: Thread) -> None:
                    idle[t.key] = t
                    slots.give(t.key)

                if boot > 0:
                    # The new thread takes the GIL for threading's bootstrap, which sets
                    # ``_started``: only then does start() return in the main thread.
                    worker.run([(CPU, boot, None), (CALL, started, None)], req,
                               lambda t: sim.serve(t, req, done))
                else:
                    sim.serve(worker, req, done)

            def started(_: Thread) -> None:
                # The main thread wakes from ``_started.wait()`` and needs the GIL back to
                # return from start() and loop to select(): a few Python calls, about an
                # accept()'s worth.
                main.run(resume, None, acc.wait)

            # socketserver.ThreadingMixIn: Thread(target=...).start() in the main thread,
            # which blocks in ``_started.wait()`` (a lock: the GIL is free) until the new
            # thread has run; so with CPU-bound threads holding the GIL, the accept loop
            # waits its turn twice per connection.
            main.run([(CPU, self.costs["thread_start_ms"], None), (CALL, spawn, None)], None,
                     acc.wait if boot <= 0 else blocked)

        acc.handle = handle
        acc.wait()


class WerkzeugForking(Server):
    def start(self) -> None:
        sim = self.sim
        n_max = sim.server["processes"]
        parent = Process(sim, "server", f"dev server (fork per request, at most {n_max})")
        main = Thread(sim, parent, "server/main")
        sim.add_process(parent, [main])
        slots = Slots("child")
        children = {"alive": 0, "blocked": False}

        def loop(_: Thread | None = None) -> None:
            # ForkingMixIn.collect_children: at the cap, waitpid() blocks the accept loop.
            if children["alive"] >= n_max:
                children["blocked"] = True
                main._set("io")  # blocked in waitpid (no GIL needed: it is alone)
                return
            acc.wait()

        def child_exit(name: str) -> None:
            children["alive"] -= 1
            slots.give(name)
            if children["blocked"]:
                children["blocked"] = False
                main._set("idle")
                loop()

        def handle(th: Thread, req: Request) -> None:
            def fork(_: Thread) -> None:
                name = slots.take()
                child = Process(sim, name, f"forked child {name}")
                sim.warm.add(child)  # its first request's extra is fork_child_ms
                cth = Thread(sim, child, f"{name}/main")
                sim.add_process(child, [cth])
                children["alive"] += 1

                def done(t: Thread) -> None:
                    t._set("dead")
                    child.alive = False
                    sim.rec.worker(name, "exit", "")
                    child_exit(name)

                sim.rec.worker(name, "boot", "fork")
                cow = sim.costs["fork_child_ms"]
                if cow > 0:  # its first touch of each page copies it (copy-on-write)
                    cth.run([(CPU, cow, None)], req, lambda t: sim.serve(t, req, done))
                else:
                    sim.serve(cth, req, done)

            main.run([(CPU, self.costs["fork_ms"], None), (CALL, fork, None)], None, loop)

        acc = self.acceptor(main, handle)
        loop()
