"""Each endpoint as a program of steps: Flask's hooks around the view's segments.

:class:`Programs` turns every endpoint of a scenario into the steps a thread runs for one
request (``cpu.Thread.run``): the server's head (read, parse, context, match), Flask's
hooks in the order Flask 3.1 runs them for that endpoint (:mod:`.dispatch`) with the
segments inside them, and the server's tail (write). It also keeps what the actions of a
run leave behind: each endpoint's status, the increment loops (:mod:`.races`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from .contexts import locals_per_connection
from .core import Env
from .cpu import CALL, CPU, IO, Step, Thread
from .dispatch import dispatch
from .endpoints import app_handles_500
from .races import Loop, instructions, switch_in_window
from .request import Recorder

#: CPU cost (ms) of one read or write of a module global or of ``g``.
STORE_OP_MS = 0.001

#: (kind, value or sampler, is it random, stage)
_Part = tuple[int, Any, bool, str]

#: Python run between a response's header write and its body write, in ms.
BETWEEN_WRITES_MS = 0.005


def server_steps(c: dict[str, Any], kind: str) -> tuple[list[Step], list[Step]]:
    """The server's part of every request, before Flask's and after it: reading and
    parsing it, pushing the contexts, matching the URL; writing the response and closing.
    A stage that costs nothing takes no time: it is left out (Flask's hooks, around the
    view, are in the program even then)."""
    head: list[Step] = [step for step in (
        (IO, c["recv_ms"], "recv"), (CPU, c["parse_ms"], "parse"),
        (CPU, c["context_ms"], "context"), (CPU, c["match_ms"], "match"),
    ) if step[1] > 0]
    drain = c["werkzeug_drain_ms"] if kind == "werkzeug" else 0.0
    # Headers and body go out in two sendall()s (werkzeug: end_headers(), then
    # wfile.write(); gunicorn: send_headers(), then the body): the GIL is let go around
    # each, and taken back for the Python between them.
    w = c["write_ms"] / 2
    tail: list[Step] = [step for step in (
        (IO, w, "write"), (CPU, BETWEEN_WRITES_MS if w > 0 else 0.0, "write"),
        (IO, w, "write"), (IO, drain, "write"), (CPU, c["close_ms"], "write"),
    ) if step[1] > 0]
    return head, tail


class Run(Protocol):
    """What the programs use of a run (the engine's ``Sim`` provides it)."""

    env: Env
    rec: Recorder
    rng: random.Random
    machine: dict[str, Any]
    costs: dict[str, Any]
    server: dict[str, Any]


def sampler(rng: random.Random, value: Any) -> Callable[[], float]:
    """A function drawing one value of a segment's duration."""
    if isinstance(value, dict):
        if "exp" in value:
            mean = value["exp"]
            return (lambda: rng.expovariate(1.0 / mean)) if mean > 0 else (lambda: 0.0)
        lo, hi = value["uniform"]
        return lambda: rng.uniform(lo, hi)
    return lambda: value


class Programs:
    """Every endpoint's program, its status, and the increment loops run so far."""

    def __init__(self, run: Run, endpoints: dict[str, list[dict[str, Any]]],
                 head: list[Step], tail: list[Step]) -> None:
        self.run = run
        self.head = head
        self.tail = tail
        self.handles_500 = app_handles_500(endpoints)
        #: each endpoint's HTTP status
        self.http: dict[str, int] = {}
        #: every increment loop begun, in the order they began
        self.loops: list[Loop] = []
        #: each thread's (or greenlet's) ``threading.local()`` values: by the thread object
        #: where threads serve request after request, by the request where each connection
        #: gets a thread (werkzeug threaded), a process (forking) or a greenlet (gevent) of
        #: its own, which the model reuses under the same lane
        self.locals: dict[Any, tuple[Thread, dict[str, int]]] = {}
        self.fresh_locals = locals_per_connection(run.server)
        #: path -> a function returning one request's steps (random durations drawn)
        self.programs = {path: self._view(path, segs) for path, segs in endpoints.items()}

    def _view(self, path: str, segments: list[dict[str, Any]]) -> Callable[[], list[Step]]:
        d = dispatch(segments, self.handles_500)
        self.http[path] = d.status
        c = self.run.costs
        # Flask's hooks are always there, even at 0 ms (a step of 0 ms still marks its
        # stage): their order is what the lab checks.
        parts: list[_Part] = [(CPU, c["before_request_ms"], False, "before_request")]
        parts += self._segments(d.before, "before_request")
        if d.outcome and d.view is None and "error" not in d.stages:
            parts.append((CALL, self._outcome(d.outcome), False, "before_request"))
        if d.view is not None:
            parts += self._segments(d.view, "view") or [(CPU, 0.0, False, "view")]
        if "error" in d.stages:
            parts.append((CALL, self._outcome(d.outcome), False, "error"))
            parts.append((CPU, c["error_ms"], False, "error"))
        parts.append((CPU, c["after_request_ms"], False, "after_request"))
        parts.append((CPU, c["teardown_ms"], False, "teardown"))
        head = self.head
        # Every request's steps are the same list but for the random durations: copy it
        # and draw those, in order (one new tuple per draw, not one per step)
        template: list[Step] = [*head, *[(k, None if r else v, st) for k, v, r, st in parts],
                                *self.tail]
        draws = [(len(head) + i, k, v, st) for i, (k, v, r, st) in enumerate(parts) if r]
        if not draws:
            return lambda: template

        def steps() -> list[Step]:
            out = template.copy()
            for i, kind, draw, stage in draws:
                out[i] = (kind, draw(), stage)
            return out
        return steps

    def _segments(self, segments: Any, stage: str) -> list[_Part]:
        parts: list[_Part] = []
        for seg in segments:
            kind = next(iter(seg))
            value = seg[kind]
            if kind in ("cpu_ms", "io_ms"):
                step = CPU if kind == "cpu_ms" else IO
                if isinstance(value, dict):
                    parts.append((step, sampler(self.run.rng, value), True, stage))
                else:
                    parts.append((step, value, False, stage))
            elif kind == "increment":
                python = self.run.machine["python"]
                each = instructions(python, seg["call"], seg["lock"]) * \
                    self.run.costs["instruction_ms"]
                loop = self._loop(seg, switch_in_window(python, seg["call"]))
                parts.append((CALL, loop, False, stage))
                parts.append((CPU, seg["times"] * each, False, stage))
                parts.append((CALL, loop, False, stage))
            else:
                parts.append((CPU, STORE_OP_MS, False, stage))
                parts.append((CALL, self._store_op(kind, value), False, stage))
        return parts

    def _outcome(self, what: str) -> Callable[[Thread], None]:
        def act(th: Thread) -> None:
            if th.req is not None:
                self.run.rec.req(th.req, "outcome", what)
        return act

    def _loop(self, seg: dict[str, Any], window: float) -> Callable[[Thread], None]:
        """The action at both ends of an increment loop: note when it begins and ends."""
        running: dict[int, Loop] = {}  # request id -> its loop under way

        def act(th: Thread) -> None:
            req = th.req
            if req is None:
                return
            loop = running.pop(req.id, None)
            if loop is None:
                running[req.id] = Loop(req.id, th.key, th.proc, seg["increment"],
                                       seg["times"], seg["lock"], window,
                                       self.run.env.now, th.state, len(self.run.rec.events))
                self.loops.append(running[req.id])
            else:
                loop.end, loop.i1 = self.run.env.now, len(self.run.rec.events)
        return act

    def _store_op(self, op: str, name: str) -> Callable[[Thread], None]:
        rec = self.run.rec

        def act(th: Thread) -> None:
            req = th.req
            if req is None:
                return
            local: dict[str, int] = {}
            if op.endswith("_local"):
                key = ("req", req.id) if self.fresh_locals else id(th)
                local = self.locals.setdefault(key, (th, {}))[1]
            if op.startswith("set_"):
                rec.req(req, "store", f"{op[4:]}.{name}")
            if op == "set_global":
                th.proc.globals[name] = req.id
            elif op == "set_g":
                req.g[name] = req.id
            elif op == "set_local":
                local[name] = req.id
            else:
                store, scope = {"get_global": (th.proc.globals, "global"), "get_g": (req.g, "g"),
                                "get_local": (local, "local")}[op]
                seen = store.get(name)
                own = seen == req.id
                who = "its own" if own else (
                    "nothing" if seen is None else f"request {seen}'s")
                rec.req(req, "read", f"{scope}.{name} = {who} value")
                if not own:
                    req.note = f"read {scope} {name!r} and got {who} value"
        return act
