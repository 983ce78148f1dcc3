"""The pacer: one loop per serving process that plays every viewer.

A greenlet (or thread) per viewer waking 30 times a second for its next frames costs a
timer, a wake-up and a switch per viewer per frame message; one loop that goes over all
playing viewers in turn costs a function call each. :class:`Pacer` is that loop; a viewer is
anything with ``tick()`` (:class:`wsgiscope.app.stream.Viewer`), which sends what that
viewer needs now without ever waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("wsgiscope.pacer")

#: How often the pacer sends each playing viewer its next frames.
SEND_INTERVAL_S = 1 / 30


class Pacer:
    """One loop per process that plays every viewer: each ``interval`` it calls ``tick()``
    on each (which sends what that viewer needs now, without waiting), then sleeps for the
    rest of the interval. A tick that takes longer than the interval is followed at once by
    the next: each viewer then gets larger messages less often, never a queue. It yields
    every few viewers, so pages and new sockets are served during a long pass."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._viewers: dict[int, Any] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.passes = 0
        self.last_pass_s = 0.0
        self.longest_pass_s = 0.0

    def add(self, viewer: Any) -> None:
        self._viewers[id(viewer)] = viewer
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wsgiscope-pacer",
                                                 daemon=True)
                self._thread.start()

    def remove(self, viewer: Any) -> None:
        self._viewers.pop(id(viewer), None)

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            for i, viewer in enumerate(list(self._viewers.values())):
                try:
                    viewer.tick()
                except Exception:  # one viewer's bug must not stop everyone's frames
                    log.exception("wsgiscope: a viewer's tick failed")
                if i % 64 == 63:
                    time.sleep(0)  # under gevent: let the loop serve others meanwhile
            took = time.monotonic() - started
            self.passes += 1
            self.last_pass_s = took
            self.longest_pass_s = max(self.longest_pass_s, took)
            time.sleep(max(0.0, self.interval - took))
