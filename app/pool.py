"""A bounded pool of simulation processes, so no simulation runs where sockets are served.

The serving process (a gevent loop or a thread pool) hands a job to one of ``size`` helper
processes (``python -m wsgiscope.app.pool``) and waits for its answer without holding anything but
its own greenlet or thread. Each helper runs one job at a time, so every run has a whole process,
its own engine budget and its own memory limit, and a run that goes wrong (too slow, out of memory,
crashed) takes only its own helper down.

* The wire is a pipe each way: a request is a length-prefixed JSON document, an answer a length-
  prefixed status byte and payload (a :meth:`Prepared.to_bytes` run, or a JSON error); a large run
  asked for with ``head`` first sends its head (status ``H``, see :mod:`.heads`). No pickle: the
  serving process decodes nothing that could run code.
* I/O is ``poll`` plus ``os.read``/``os.write`` on non-blocking descriptors, which gevent's monkey
  patching makes cooperative and which threads use as they are.
* Every helper dies with its parent (``PR_SET_PDEATHSIG``, with a check for a parent that died
  before the call) and exits when its pipe closes. Helpers are started by one long-lived keeper
  thread, because Linux sends the death signal when the *thread* that forked the child ends.
* A helper that dies or overruns the time limit is killed and replaced; the caller gets a one-line
  :class:`PoolError`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import queue
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from wsgiscope import simulator

from .heads import job as prepare_job

#: How long one simulation may take (wall clock) before its process is killed.
DEFAULT_TIMEOUT_S = 60.0
#: Address space per helper, in MB: a run that needs more fails with a message.
DEFAULT_MEMORY_MB = 2048
#: The largest answer a helper may send (a prepared run is far smaller).
MAX_ANSWER_BYTES = 512 * 1024 * 1024
#: How long a job waits for a free helper before the caller is told the server is busy.
DEFAULT_QUEUE_WAIT_S = 30.0

_LEN = struct.Struct(">Q")
OnPart = Callable[[bytes], None] | None
_PR_SET_PDEATHSIG = 1
_F_SETPIPE_SZ = 1031


class PoolError(RuntimeError):
    """A job that could not be run (busy, too slow, out of memory, a crashed helper)."""


class _HelperDied(Exception):
    """A helper's pipe closed: the process is gone."""


class JobError(RuntimeError):
    """A job the helper refused or failed, with the field it names (one line)."""

    def __init__(self, message: str, field: str = "", scenario_error: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.scenario_error = scenario_error


# --- I/O on non-blocking descriptors (cooperative under gevent) -------------------------------


def _wait(fd: int, events: int, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    p = select.poll()  # gevent's cooperative poll when monkey-patched
    p.register(fd, events)
    if not p.poll(None if left == float("inf") else max(1, int(left * 1000))):
        raise TimeoutError


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            n = 0
        view = view[n:]
        if view:
            _wait(fd, select.POLLOUT, deadline)


def _read_exact(fd: int, size: int, deadline: float) -> bytes:
    out = bytearray()
    while len(out) < size:
        try:
            chunk = os.read(fd, min(size - len(out), 1 << 20))
        except BlockingIOError:
            _wait(fd, select.POLLIN, deadline)
            continue
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


# --- the parent's side ------------------------------------------------------------------------


class _Helper:
    """One helper process and the parent's ends of its pipes."""

    def __init__(self, proc: subprocess.Popen[bytes], to_child: int, from_child: int) -> None:
        self.proc = proc
        self.to_child = to_child
        self.from_child = from_child
        self.jobs = 0

    def call(self, request: bytes, deadline: float, on_part: OnPart = None) -> bytes:
        """Send a job, return its answer; parts before it (status ``H``) go to ``on_part``."""
        _write_all(self.to_child, _LEN.pack(len(request)) + request, deadline)
        while True:
            (size,) = _LEN.unpack(_read_exact(self.from_child, _LEN.size, deadline))
            if size > MAX_ANSWER_BYTES:
                raise PoolError(f"the simulation's result is too large ({size:,} bytes)")
            answer = _read_exact(self.from_child, size, deadline)
            if answer[:1] != b"H":
                self.jobs += 1
                return answer
            if on_part is not None:
                on_part(answer[1:])

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        for fd in (self.to_child, self.from_child):
            with contextlib.suppress(OSError):
                os.close(fd)

    def describe_exit(self) -> str:
        try:
            code: int | None = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return "it stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"it was killed by {name}" + (" (out of memory?)" if -code == 9 else "")
        return f"it exited with status {code}"


def _spawn(memory_mb: int) -> _Helper:
    r_req, w_req = os.pipe()
    r_ans, w_ans = os.pipe()
    for fd in (w_req, r_ans):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)  # fewer wake-ups for a large answer
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsgiscope.app.pool", str(os.getpid()), str(memory_mb)],
            stdin=r_req, stdout=w_ans, close_fds=True,
        )
    except BaseException:
        for fd in (r_req, w_req, r_ans, w_ans):
            os.close(fd)
        raise
    os.close(r_req)
    os.close(w_ans)
    os.set_blocking(w_req, False)
    os.set_blocking(r_ans, False)
    return _Helper(proc, w_req, r_ans)


class SimPool:
    """``size`` helper processes; :meth:`call` runs one job on a free one.

    ``call`` blocks only its caller (a greenlet under gevent, a thread otherwise). At most
    ``max_waiting`` callers wait for a free helper at once, each at most ``queue_wait_s``;
    beyond that the server answers that it is busy rather than queueing without end.
    """

    def __init__(self, size: int, timeout_s: float = DEFAULT_TIMEOUT_S,
                 memory_mb: int = DEFAULT_MEMORY_MB, queue_wait_s: float = DEFAULT_QUEUE_WAIT_S,
                 max_waiting: int | None = None) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one process (got {size})")
        self.size = size
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.queue_wait_s = queue_wait_s
        self.max_waiting = max_waiting if max_waiting is not None else 64 * size
        self.stats = {"jobs": 0, "replaced": 0, "timeouts": 0, "busy": 0, "waiting": 0}
        self._idle: queue.Queue[_Helper | None] = queue.Queue()
        self._spawn_requests: queue.Queue[tuple[threading.Event, list[Any]] | None] = (
            queue.Queue())
        self._helpers: set[_Helper] = set()
        self._closed = False
        self._keeper = threading.Thread(target=self._keep, name="wsgiscope-pool-keeper",
                                        daemon=True)
        self._keeper.start()
        for _ in range(size):
            self._idle.put(self._new_helper())

    # helpers are forked by the keeper thread only (see the module docstring)
    def _keep(self) -> None:
        while True:
            item = self._spawn_requests.get()
            if item is None:
                return
            done, box = item
            try:
                box.append(_spawn(self.memory_mb))
            except BaseException as exc:  # handed to the caller
                box.append(exc)
            done.set()

    def _new_helper(self) -> _Helper:
        if self._closed:  # a job that outlived close(): no new helper to outlive the pool
            raise PoolError("the server is shutting down")
        done, box = threading.Event(), []  # type: ignore[var-annotated]
        self._spawn_requests.put((done, box))
        done.wait()
        if isinstance(box[0], BaseException):
            raise PoolError(f"could not start a simulation process: {box[0]}")
        self._helpers.add(box[0])
        return box[0]  # type: ignore[no-any-return]

    def idle(self) -> int:
        """How many helpers wait for a job now (a slot whose helper is to be made counts)."""
        return self._idle.qsize()

    def call(self, request: dict[str, Any], on_part: OnPart = None) -> bytes:
        """Run ``request`` on a helper and return its payload (each part sent before it, a
        run's head, to ``on_part``); raise :class:`JobError` for a job it refused,
        :class:`PoolError` when it could not run."""
        if self._closed:
            raise PoolError("the server is shutting down")
        if self.stats["waiting"] >= self.max_waiting:
            self.stats["busy"] += 1
            raise PoolError("the server is busy simulating other runs; try again shortly")
        self.stats["waiting"] += 1
        try:
            helper = self._idle.get(timeout=self.queue_wait_s)
        except queue.Empty:
            self.stats["busy"] += 1
            raise PoolError("the server is busy simulating other runs; try again shortly"
                            ) from None
        finally:
            self.stats["waiting"] -= 1
        try:
            if helper is None or helper.proc.poll() is not None:
                helper = self._replace(helper)
        except BaseException:
            self._idle.put(None)  # the slot stays; a helper is made when next needed
            raise
        try:
            try:
                return self._run(helper, request, on_part)  # a helper that failed is retired there
            except _HelperDied:
                # Found dead (killed, out of memory) while idle or on this job: the job gets
                # one more try on a fresh helper; a job that kills that one too is reported.
                helper = self._new_helper()
                try:
                    return self._run(helper, request, on_part)
                except _HelperDied as exc:
                    raise PoolError(f"the simulation process failed: {exc}") from None
        finally:
            self._idle.put(helper if helper in self._helpers else None)

    def _replace(self, helper: _Helper | None) -> _Helper:
        if helper is not None:
            self._retire(helper)
        return self._new_helper()

    def _retire(self, helper: _Helper) -> None:
        helper.kill()
        self._helpers.discard(helper)
        self.stats["replaced"] += 1

    def _run(self, helper: _Helper, request: dict[str, Any], on_part: OnPart = None) -> bytes:
        body = json.dumps(request, separators=(",", ":"), allow_nan=False).encode()
        deadline = time.monotonic() + self.timeout_s
        self.stats["jobs"] += 1
        try:
            answer = helper.call(body, deadline, on_part)
        except TimeoutError:
            self.stats["timeouts"] += 1
            self._retire(helper)
            raise PoolError(
                f"the simulation took longer than {self.timeout_s:g} s and was stopped; "
                "make the scenario smaller (fewer requests, a shorter workload)") from None
        except (EOFError, OSError):
            why = helper.describe_exit()
            self._retire(helper)
            raise _HelperDied(why) from None
        except BaseException:  # the caller went away mid-job: the helper is in an unknown state
            self._retire(helper)
            raise
        status, payload = answer[:1], answer[1:]
        if status == b"R":
            return payload
        err = json.loads(payload)
        raise JobError(err.get("message", "the simulation failed"), err.get("field", ""),
                       bool(err.get("scenario_error")))

    def close(self) -> None:
        """Stop every helper (they would also die with this process)."""
        self._closed = True
        for helper in list(self._helpers):
            helper.kill()
        self._helpers.clear()
        self._spawn_requests.put(None)

    def pids(self) -> list[int]:
        return [h.proc.pid for h in self._helpers]


# --- the helper's side ------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the prctl: go as it would
        os._exit(1)


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _answer(request: dict[str, Any], send_part: Callable[[bytes], None]) -> bytes:
    try:
        if request.get("job") != "prepare":
            raise ValueError(f"no such job: {request.get('job')!r}")
        return b"R" + prepare_job(request, send_part)  # the one job: a run for the page
    except MemoryError:
        err: dict[str, Any] = {"message": "the simulation needs more memory than a run may "
                                          "use; make the scenario smaller"}
    except simulator.ScenarioError as exc:
        err = {"message": _one_line(exc.message), "field": exc.field, "scenario_error": True}
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        field = getattr(exc, "field", "")
        err = {"message": _one_line(getattr(exc, "message", None) or str(exc) or
                                    type(exc).__name__),
               "field": field if isinstance(field, str) else ""}
    return b"E" + json.dumps(err).encode()


def main(argv: list[str]) -> int:
    """A helper: read jobs on stdin, answer on stdout, until stdin closes."""
    parent, memory_mb = int(argv[0]), int(argv[1])
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Answers go out on a private copy of stdout; anything printed goes to the log instead.
    out = os.dup(1)
    os.dup2(2, 1)
    forever = float("inf")

    while True:
        try:
            (size,) = _LEN.unpack(_read_exact(0, _LEN.size, forever))
            request = json.loads(_read_exact(0, size, forever))
        except EOFError:
            return 0

        def send(answer: bytes) -> None:
            _write_all(out, _LEN.pack(len(answer)) + answer, forever)

        send(_answer(request, send))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
