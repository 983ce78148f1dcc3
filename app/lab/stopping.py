"""How a lab run is stopped, whatever stops it.

:class:`RunScope` knows what one run has started (its server, its load driver, its scratch
directory) and takes it all down, as often as asked. :func:`stop_on_signals` makes SIGTERM,
SIGHUP and SIGINT stop a run in the main thread the way Ctrl-C does -- the run unwinds and
cleans up -- and then lets the signal do what it would have done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .launcher import Server, group_members


class LabInterrupted(BaseException):
    """A signal (SIGTERM, SIGHUP) stopped a lab run. Raised in the main thread, like
    ``KeyboardInterrupt`` for Ctrl-C, so that the run unwinds and cleans up."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"the lab run was stopped by {signal.Signals(signum).name}")
        self.signum = signum


class RunScope:
    """What one lab run has started, and how to take it all down (idempotent)."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.servers: list[Server] = []
        self.driver: subprocess.Popen[bytes] | None = None

    def sweep(self) -> None:
        try:
            driver, self.driver = self.driver, None
            if driver is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
                reap_group(driver.pid)
            for server in self.servers:
                server.stop()
        finally:
            if self.run_dir is not None:
                shutil.rmtree(self.run_dir, ignore_errors=True)


#: Signals that stop a run (in the main thread) the way Ctrl-C does.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(scope: RunScope) -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT stop the run and clean up, then act as they would have.

    Only the main thread can handle signals: a run in another thread (the web lab) relies
    on its processes dying with the parent and on the stale-directory sweep instead. A
    signal that is ignored, or that someone else handles, is left alone. Only the first
    signal interrupts: one arriving during the clean-up waits until the clean-up is done.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if fired:
            return  # already stopping: let the clean-up finish
        fired.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise LabInterrupted(signum)

    previous: dict[int, Any] = {}
    for sig in STOP_SIGNALS:
        handler = signal.getsignal(sig)
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        if handler is default:
            previous[sig] = signal.signal(sig, stop)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    try:
        yield
    except KeyboardInterrupt:
        scope.sweep()  # again: the signal may have cut the first clean-up short
        restore()
        raise
    except LabInterrupted as exc:
        scope.sweep()
        restore()
        # Clean now: end the way the signal would have ended the process (status 128 + n).
        os.kill(os.getpid(), exc.signum)
        time.sleep(1.0)
        raise SystemExit(128 + exc.signum) from None
    finally:
        restore()


def reap_group(pgid: int) -> None:
    """SIGKILL a process group until none of its processes is left (at most 2 s)."""
    for _ in range(100):
        if not group_members(pgid):
            return
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.02)
