"""Start and stop the real server a scenario describes.

:class:`Server` starts werkzeug's ``run_simple`` (via :mod:`wsgiscope.app.lab.werkzeug_server`) or
gunicorn (``sync``, ``gthread``, ``gevent``, with the hooks of
:mod:`wsgiscope.app.lab.gunicorn_hooks`) on 127.0.0.1, port chosen by the kernel, in its own
session and process group, waits until it listens (and, for gunicorn, until every worker
has booted), and always stops it: a polite signal first, then SIGKILL to the whole group,
then the group is checked empty. Use it as a context manager.

No orphans, ever: every process the lab starts dies when its parent dies, however the
parent goes (Linux ``PR_SET_PDEATHSIG``: :func:`die_with_parent`, set in the launched server
and driver, in each gunicorn worker by the ``post_fork`` hook, and in each child werkzeug
forks). A run's scratch directory (:func:`make_run_dir`) records its owner's pid; one left
behind by a crash is removed at the next lab start (:func:`remove_stale_run_dirs`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .recorder import ENV_CONFIG, read_records

_PR_SET_PDEATHSIG = 1
_LIVE: set[Server] = set()


#: Prefix of a lab run's scratch directory in the temporary directory.
RUN_DIR_PREFIX = "wsgiscope-lab-"
#: The file in a run directory that names the process owning it.
OWNER_FILE = "owner.json"


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make the calling process get SIGKILL when its parent goes away (Linux
    ``PR_SET_PDEATHSIG``), so even a lab process killed outright leaves nothing running.
    (Strictly, when the parent *thread* that forked it ends: the lab starts and stops each
    server from one thread.)

    Call it in a new child (a ``preexec_fn``, a gunicorn ``post_fork`` hook, an
    ``os.register_at_fork`` child hook). With ``parent_pid``, the pid the parent had before
    the fork, it then checks that the parent is still that process: a parent that died
    between the fork and the ``prctl`` would never send the signal, so the child kills
    itself as the signal would have.
    """
    with contextlib.suppress(OSError, AttributeError):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def child_of_this_process() -> functools.partial[None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child dies with this process."""
    return functools.partial(die_with_parent, os.getpid())


def _start_time(pid: int) -> int | None:
    """When a process started (clock ticks since boot), or None if there is no such process:
    with the pid it tells a live owner from a new process that reuses a dead one's pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def make_run_dir() -> Path:
    """A new scratch directory for a lab run, owned by this process (see
    :func:`remove_stale_run_dirs`); stale ones from crashed runs are removed first."""
    remove_stale_run_dirs()
    run_dir = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX))
    owner = {"pid": os.getpid(), "start": _start_time(os.getpid())}
    (run_dir / OWNER_FILE).write_text(json.dumps(owner))
    return run_dir


def remove_stale_run_dirs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove run directories whose owner is gone (a lab process killed before it could
    clean up); return them. A directory is stale when the pid in its owner file is not
    alive, or is alive but started at another time (the pid was reused). One with no
    owner file yet is left alone unless it is more than an hour old."""
    base = Path(root if root is not None else tempfile.gettempdir())
    removed = []
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(RUN_DIR_PREFIX)]
    except OSError:
        return []
    for path in candidates:
        try:
            if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
            try:
                owner = json.loads((path / OWNER_FILE).read_text())
                pid, start = int(owner["pid"]), owner.get("start")
                alive = _start_time(pid)
                stale = alive is None or (start is not None and alive != start)
            except (OSError, ValueError, KeyError, TypeError):
                stale = time.time() - path.stat().st_mtime > 3600
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            server.stop()


class LabError(RuntimeError):
    """The lab could not start, run or stop a server."""


def gunicorn_args(server: dict[str, Any]) -> list[str]:
    """gunicorn's command-line options for the scenario's ``server`` section."""
    worker_class = server.get("worker_class", "sync")
    threads = int(server.get("threads", 1))
    args = [
        "--bind", "127.0.0.1:0",
        "--no-control-socket",
        "--worker-class", worker_class,
        "--workers", str(int(server.get("workers", 1))),
        "--threads", str(threads),
        "--worker-connections", str(int(server.get("worker_connections", 1000))),
        "--backlog", str(int(server.get("backlog", 2048))),
        "--timeout", str(int(server.get("timeout_s", 30))),
        "--keep-alive", str(int(server.get("keepalive_s", 2))),
        "--max-requests", str(int(server.get("max_requests", 0))),
    ]  # fmt: skip
    return args


def server_command(scenario: dict[str, Any], python: str | None = None) -> list[str]:
    """The argv that starts the scenario's server (on ``python``, default this one)."""
    server = scenario.get("server", {})
    kind = server.get("kind", "werkzeug")
    exe = python or sys.executable
    if kind == "werkzeug":
        return [exe, "-m", "wsgiscope.app.lab.werkzeug_server"]
    if kind == "gunicorn":
        return [
            exe, "-m", "gunicorn",
            "--config", "python:wsgiscope.app.lab.gunicorn_hooks",
            *gunicorn_args(server),
            "wsgiscope.app.lab.demo_app:from_env()",
        ]  # fmt: skip
    raise LabError(f"server.kind must be werkzeug or gunicorn (got {kind!r})")


def expected_workers(scenario: dict[str, Any]) -> int:
    server = scenario.get("server", {})
    if server.get("kind", "werkzeug") == "gunicorn":
        return int(server.get("workers", 1))
    return 0


def group_members(pgid: int, zombies: bool = False) -> list[int]:
    """Pids of live processes in a process group (and, with ``zombies``, of exited ones not
    yet reaped, whose CPU time is not yet in their parent's)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and (zombies or fields[0] != "Z"):
            pids.append(int(entry))
    return pids


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system, its own and its reaped children's) of a process, in s."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[-1].split()
    except OSError:
        return 0.0
    ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> tuple[float, float, float]:
    """``(busy, total, steal)`` CPU seconds of the whole machine since boot
    (``/proc/stat``). ``steal`` is time a virtual machine's cores wanted to run and the host
    ran something else (it is counted in ``busy`` too)."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    steal = values[7] if len(values) > 7 else 0
    tck = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tck, total / tck, steal / tck


class Server:
    """A lab server for one run (see the module docstring)."""

    def __init__(
        self,
        scenario: dict[str, Any],
        run_dir: str | os.PathLike[str],
        seed: int | None = None,
        python: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.python = python
        self.run_dir = Path(run_dir)
        self.record_dir = self.run_dir / "records"
        self.seed = seed
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.pgid = 0
        self.started_ms = 0.0

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, ready_timeout_s: float = 30.0) -> None:
        self.record_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "config.json"
        config.write_text(
            json.dumps(
                {"scenario": self.scenario, "record_dir": str(self.record_dir), "seed": self.seed}
            )
        )
        env = dict(os.environ)
        env[ENV_CONFIG] = str(config)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("WERKZEUG_RUN_MAIN", None)
        env.pop("WERKZEUG_SERVER_FD", None)
        log = open(self.run_dir / "server.log", "wb")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                server_command(self.scenario, self.python),
                cwd=self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=child_of_this_process(),
            )
        finally:
            log.close()
        self.pgid = self.proc.pid
        _LIVE.add(self)
        self._await_ready(ready_timeout_s)

    def _await_ready(self, timeout_s: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        want_workers = expected_workers(self.scenario)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError(f"the server exited during start-up:\n{self.log_tail()}")
            port, workers = 0, 0
            for rec in read_records(self.record_dir):
                if rec.get("kind") == "ready":
                    port = int(rec["port"])
                elif rec.get("kind") == "worker_ready":
                    workers += 1
            if port and workers >= want_workers:
                self.port = port
                return
            time.sleep(0.02)
        raise LabError(f"the server was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def cpu_s(self) -> float:
        """CPU seconds used so far by the server's processes: live ones, exited ones not yet
        reaped (werkzeug reaps its forked children only now and then), and reaped ones."""
        if not self.pgid:
            return 0.0
        return sum(process_cpu_s(pid) for pid in group_members(self.pgid, zombies=True))

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = (self.run_dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 3.0) -> None:
        """Stop the server and everything it started; safe to call more than once."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            # SIGINT to the main process: werkzeug stops serving; gunicorn's arbiter does
            # a quick shutdown, stopping and reaping its workers itself.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
        deadline = time.monotonic() + 5.0
        while True:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1.0)
            if proc.poll() is not None and not group_members(self.pgid):
                break
            if time.monotonic() > deadline:
                raise LabError(f"processes of group {self.pgid} would not exit")
            time.sleep(0.02)
        self.proc = None
        _LIVE.discard(self)
