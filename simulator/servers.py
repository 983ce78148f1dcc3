"""Server models: how each WSGI server accepts connections and hands them to threads.

Each model follows the real server's source (see DESIGN.md):

* :class:`WerkzeugSingle` -- ``threaded=False``: one thread accepts, serves, accepts again.
* :class:`WerkzeugThreaded` -- ``threaded=True``: the main thread accepts and starts a new
  daemon thread per connection; no pool, no cap.
* :class:`WerkzeugForking` -- ``processes=N``: the main process accepts and forks a child per
  connection; with N children alive it blocks in ``waitpid`` and accepts nothing.
* :class:`GunicornSync` -- N worker processes accept from the shared socket, one request
  each, no keep-alive; an arbiter kills a worker silent for ``timeout``.
* :class:`GunicornGthread` -- each worker's main thread accepts while it has fewer than
  ``worker_connections`` connections (not when a thread is free) and queues them to a pool
  of ``threads`` threads.
* :class:`GunicornGevent` -- each worker runs greenlets on one thread: I/O yields, CPU
  blocks the whole worker.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from .core import NORMAL
from .cpu import CALL, CPU, Process, Step, Thread

if TYPE_CHECKING:
    from .engine import Request, Sim

ARBITER_TICK_MS = 1000.0  # gunicorn's arbiter sleeps up to 1 s between checks


class Slots:
    """Lane names for things that come and go (threads per connection, forked children):
    a new one takes the lowest free number, so the timeline stays compact."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.free: list[int] = []
        self.next = 1

    def take(self) -> str:
        if self.free:
            self.free.sort()
            n = self.free.pop(0)
        else:
            n = self.next
            self.next += 1
        return f"{self.prefix}{n}"

    def give(self, name: str) -> None:
        self.free.append(int(name[len(self.prefix):]))


class Server:
    """A server model: :meth:`start` creates its processes and threads and sets their
    accept loops going; :meth:`Sim.serve` runs each accepted request's lifecycle."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.costs = sim.costs

    def start(self) -> None:
        raise NotImplementedError

    def acceptor(self, th: Thread, handle: Any, ready: Any = None) -> Acceptor:
        return Acceptor(self.sim, th, handle, ready)


class Acceptor:
    """A thread's accept loop: wait until the listener is readable, ``accept()`` (a little
    CPU, so it needs the GIL), then ``handle(thread, request)``. ``ready()``, if given, says
    whether the thread may accept now; when it says no, the owner calls :meth:`wait` again
    later. Several acceptors may wake for one connection: the losers find the queue empty
    (EAGAIN) and wait again, like gunicorn workers on a shared socket."""

    __slots__ = ("sim", "th", "handle", "ready", "listen", "steps")

    def __init__(self, sim: Sim, th: Thread, handle: Any, ready: Any = None) -> None:
        self.sim = sim
        self.th = th
        self.handle = handle
        self.ready = ready
        self.listen = sim.listen
        cost = sim.costs["accept_ms"]
        self.steps: list[Step] | None = [(CPU, cost, None)] if cost > 0 else None

    def wait(self, _: Any = None) -> None:
        if not self.th.proc.alive:
            return
        if self.ready is not None and not self.ready():
            return
        self.listen.wait_readable(self.woken)

    def woken(self) -> None:
        if self.th.proc.alive:
            if self.steps is None:
                self.accepted(self.th)
            else:
                self.th.run(self.steps, None, self.accepted)

    def accepted(self, _: Thread) -> None:
        req = self.listen.take()
        if req is None:  # another thread won the race
            self.wait()
            return
        self.sim.accepted(req, self.th)
        self.handle(self.th, req)


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

        def handle(th: Thread, req: Request) -> None:
            def spawn(_: Thread) -> None:
                key = slots.take()
                worker = idle.pop(key, None) or Thread(sim, proc, key)
                sim.add_process(proc, [worker])

                def done(t: Thread) -> None:
                    idle[t.key] = t
                    slots.give(t.key)

                sim.serve(worker, req, done)

            # socketserver.ThreadingMixIn: Thread(target=...).start() in the main thread
            main.run([(CPU, self.costs["thread_start_ms"], None), (CALL, spawn, None)], None,
                     acc.wait)

        acc = self.acceptor(main, handle)
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
                cth = Thread(sim, child, f"{name}/main")
                sim.add_process(child, [cth])
                children["alive"] += 1

                def done(t: Thread) -> None:
                    t._set("dead")
                    child.alive = False
                    sim.rec.worker(name, "exit", "")
                    child_exit(name)

                sim.rec.worker(name, "boot", "fork")
                sim.serve(cth, req, done)

            main.run([(CPU, self.costs["fork_ms"], None), (CALL, fork, None)], None, loop)

        acc = self.acceptor(main, handle)
        loop()


class _Gunicorn(Server):
    """The arbiter: spawns workers, replaces dead ones, kills silent ones.

    A worker is a dict: its process, threads, requests served, in-flight count, requests
    queued for its thread pool, and whether it is retiring (``max_requests`` reached: it
    stops accepting, finishes what it has, exits, and the arbiter boots a replacement).
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
            "conns": 0, "retiring": False, "accepting": False,
        }
        self.workers[key] = w
        if booted:
            self.boot(key, w)
        else:
            sim.rec.worker(key, "boot", f"a new worker starts; ready in {self.boot_ms:g} ms")
            sim.env.after(self.boot_ms, lambda _a: self.boot(key, w), None, NORMAL)

    def boot(self, key: str, w: dict[str, Any]) -> None:
        if self.workers.get(key) is not w:
            return
        self.sim.rec.worker(key, "ready", "")
        self.run_worker(key, w)

    def run_worker(self, key: str, w: dict[str, Any]) -> None:
        raise NotImplementedError

    def done_one(self, key: str, w: dict[str, Any]) -> bool:
        """Count a finished request. Returns True when the worker is retiring."""
        w["served"] += 1
        w["conns"] -= 1
        if self.max_requests and w["served"] >= self.max_requests:
            w["retiring"] = True
        if w["retiring"] and w["conns"] == 0 and w["proc"].alive:
            self.retire(key, w, "exit", f"max_requests ({self.max_requests}) reached")
        return bool(w["retiring"])

    def may_accept(self, w: dict[str, Any]) -> bool:
        """gthread/gevent: accept while under worker_connections (and not retiring)."""
        if not w["retiring"] and w["conns"] < self.sim.server["worker_connections"]:
            return True
        w["accepting"] = False
        return False

    def retire(self, key: str, w: dict[str, Any], how: str, why: str) -> None:
        proc = w["proc"]
        proc.alive = False
        gil = proc.gil
        for th in w["threads"]:
            req = th.req
            if req is not None:
                running = gil is None or not self.cooperative or gil.holder is th
                if th.stage == "write" or not running:
                    self.sim.fail(req, "reset", None, why)
                else:
                    self.sim.fail(req, "error", 500, why)
            th.kill()
        for req in w["queued"]:
            self.sim.fail(req, "reset", None, "the worker died before a thread took it")
        w["queued"].clear()
        self.sim.rec.worker(key, how, why)
        self.spawn(key, booted=False)

    def tick(self, _: Any) -> None:
        now = self.sim.env.now
        for key, w in list(self.workers.items()):
            silent = self.silent_since(w)
            if silent is not None and now - silent > self.timeout_ms and w["proc"].alive:
                self.retire(key, w, "killed",
                            f"worker timeout: silent for {(now - silent) / 1000:.1f} s, "
                            f"over timeout {self.timeout_ms / 1000:g} s (SIGABRT)")
        if self.sim.outstanding > 0:
            self.sim.env.after(ARBITER_TICK_MS, self.tick, None, NORMAL)

    def silent_since(self, w: dict[str, Any]) -> float | None:
        busy = w["busy_since"]
        return float(busy) if busy is not None else None


class GunicornSync(_Gunicorn):
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


class GunicornGthread(_Gunicorn):
    def kills_on_timeout(self) -> bool:
        # The heartbeat comes from the main thread, which keeps running: never killed.
        return False

    def run_worker(self, key: str, w: dict[str, Any]) -> None:
        sim = self.sim
        proc = w["proc"]
        main = Thread(sim, proc, f"{key}/main")
        pool = [Thread(sim, proc, f"{key}/t{i}") for i in range(1, sim.server["threads"] + 1)]
        sim.add_process(proc, [main, *pool])
        w["threads"] = [main, *pool]
        idle: deque[Thread] = deque(pool)
        queued: deque[Request] = w["queued"]

        def ready() -> bool:
            return self.may_accept(w)

        def handle(_main: Thread, req: Request) -> None:
            w["conns"] += 1
            if idle:
                sim.serve(idle.popleft(), req, finished)
            else:
                # ThreadPoolExecutor's queue is unbounded: the request waits in this worker.
                queued.append(req)
                req.pool_from = sim.env.now
                sim.rec.req(req, "pool", f"all {len(pool)} threads of {key} are busy")
            acc.wait()

        def finished(th: Thread) -> None:
            retiring = self.done_one(key, w)
            if not proc.alive:
                return
            if queued:
                req = queued.popleft()
                req.pool_wait_ms += sim.env.now - req.pool_from
                sim.serve(th, req, finished)
            else:
                idle.append(th)
            if not retiring and not w["accepting"]:
                w["accepting"] = True
                acc.wait()

        acc = self.acceptor(main, handle, ready)
        w["accepting"] = True
        acc.wait()


class GunicornGevent(_Gunicorn):
    cooperative = True

    def silent_since(self, w: dict[str, Any]) -> float | None:
        # The heartbeat is a greenlet: it runs only when the running greenlet yields.
        gil = w["proc"].gil
        if gil is None or gil.holder is None:
            return None
        return float(gil.granted_at)

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


def make_server(sim: Sim) -> Server:
    s = sim.server
    if s["kind"] == "werkzeug":
        if s["processes"] > 1:
            return WerkzeugForking(sim)
        return WerkzeugThreaded(sim) if s["threaded"] else WerkzeugSingle(sim)
    cls = {"sync": GunicornSync, "gthread": GunicornGthread, "gevent": GunicornGevent}
    return cls[s["worker_class"]](sim)
