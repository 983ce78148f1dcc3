"""The WebSocket stream: one socket, one run, played at the speed the browser asks for.

The browser sends JSON messages (``op``: start, play, pause, seek, speed, step, inspect);
the server answers with JSON messages (``type``: meta, frames, end, goto, inspect, error).
Each socket owns its run: the handler keeps everything in a :class:`Session` local to the
connection, nothing is shared between users.

Frames go out columnar, in chunks: a ``frames`` message carries a run of consecutive
frames plus every request span, finished request and narration line that starts at or
before the chunk's last frame. The browser keeps all of it, so scrubbing back never asks
the server for anything; going past what it has asks for a ``seek``.

A dropped socket reconnects and sends ``start`` again with ``resume``: the run is
deterministic, so the server rebuilds it and carries on from the frame the browser has.
A large run starts from its head (:mod:`.heads`, ``meta.partial``), played while the rest
is simulated; then the whole run's ``meta`` with ``replace``, and the frames the viewer has
again (the same frames: both share their tick), which the page swaps in under its playhead.

Serving many viewers (see :mod:`.serving`): a run comes from :class:`.serving.RunService`
(cached by content hash, simulated once in a helper process, never on the loop that serves
the sockets); every message goes out through an :class:`.outlet.Outlet`, which drops a
viewer who stops reading instead of letting it hold the server; a process serves at most
``MAX_VIEWERS`` sockets. ``GET /healthz`` reports the process's viewers, runs and cache.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from typing import Any

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from wsgiscope import simulator
from wsgiscope.simulator.validation import check_seed

from . import pacer, serving
from .outlet import Outlet, ViewerGone
from .pool import JobError, PoolError
from .protocol import MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES
from .protocol import MAX_SPEED as MAX_SPEED
from .protocol import MIN_SPEED as MIN_SPEED
from .protocol import ProtocolError as ProtocolError
from .protocol import _speed, _time, parse_message
from .runs import Prepared
from .serving import Flight, RunService
from .web.inspector import render_inspector

sock = Sock()

#: How far ahead of the browser's playhead the server keeps sending, in wall-clock seconds.
LEAD_S = 0.25
#: How often a playing session sends, and how many frames fit in one message at most.
SEND_INTERVAL_S = pacer.SEND_INTERVAL_S  # the pacer's (.pacer.Pacer)
CHUNK_FRAMES = 1500
#: How often a socket's handler wakes, between messages, to check on its viewer.
IDLE_CHECK_S = 2.0
#: How often a socket is pinged (a peer that never takes the ping is dropped).
PING_S = 20.0


class Session:
    """One socket's run and playback state."""

    def __init__(self, ws: Any, max_frames: int, max_requests: int = 50_000,
                 runs: RunService | None = None) -> None:
        self.ws = ws
        self.max_frames = max_frames
        self.max_requests = max_requests
        self.runs = runs
        self.run: Prepared | None = None
        self.flight: Flight | None = None  # the whole run, while the viewer plays its head
        self.want_t = 0.0  # the furthest time asked for (a seek, a step), for the whole run
        self.inspect_id: int | None = None  # asked of a head: answered from the whole run
        self.inspect_app: Flask | None = None
        self.sent = 0
        self.playing = False
        self.speed = 1.0
        self.anchor_t = 0.0
        self.anchor_wall = time.monotonic()
        self.ended = False

    # -- sending ---------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        self.send_text(json.dumps(msg, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        self.ws.send(text)

    def error(self, message: str, field: str = "") -> None:
        self.send({"type": "error", "error": message, "field": field})

    def send_until(self, index: int, limit: int = CHUNK_FRAMES) -> None:
        """Send frames up to ``index`` (exclusive), at most ``limit`` of them now."""
        run = self.run
        if run is None:
            return
        index = min(index, run.n, self.sent + limit)
        if index > self.sent:
            self.send_text(run.chunk_text(self.sent, index))
            self.sent = index
        if self.sent >= run.n and not self.ended and not run.partial:
            self.ended = True
            self.send({"type": "end", "n_frames": run.n})

    def frame_index(self, t: float) -> int:
        """How many frames are needed to show time ``t``."""
        assert self.run is not None
        return bisect.bisect_left(self.run.times, t - 1e-9) + 1

    def playhead(self) -> float:
        if not self.playing:
            return self.anchor_t
        return self.anchor_t + self.speed * (time.monotonic() - self.anchor_wall) * 1000.0

    def anchor(self, t: float | None) -> None:
        self.anchor_t = self.playhead() if t is None else t
        self.anchor_wall = time.monotonic()

    def upgrade(self) -> None:
        """Once a head's whole run is there: its meta (``replace``) and the frames the
        viewer has or asked for, again, from it."""
        flight = self.flight
        if flight is None or not flight.done.is_set():
            return
        self.flight = None
        try:
            run = flight.ready()
        except Exception as exc:  # the rest of the run failed (a budget, the time limit)
            return self.error(f"the run stopped after its first moments: {exc}",
                              getattr(exc, "field", ""))
        assert run is not None and self.run is not None
        have = self.run.times[self.sent - 1] if self.sent else 0.0
        self.run, self.sent, self.ended = run, 0, False
        self.send_text('{"replace":true,' + run.meta_text[1:])
        self.send_until(self.frame_index(max(have, self.want_t, self.playhead())), limit=run.n)
        if self.inspect_id is not None and self.inspect_app:
            with self.inspect_app.app_context():  # the pacer's thread has none
                self.op_inspect({"id": self.inspect_id})

    def pump(self) -> None:
        """Send what the playhead will need soon; called after every message and timeout."""
        self.upgrade()
        if self.run is None or not self.playing or self.sent >= self.run.n:
            return
        if math.isinf(self.speed):
            self.send_until(self.run.n)
            return
        ahead = self.playhead() + self.speed * LEAD_S * 1000.0
        target = self.frame_index(ahead)
        if target < self.run.n:
            # On a grid of blocks of half a send interval: viewers of the same run at the
            # same speed ask for the same chunks, which the run encodes once for all of them
            # (and a pass that comes a little early still finds a block to send).
            block = int(SEND_INTERVAL_S * 500.0 * self.speed / self.run.tick_ms)
            if block > 1:
                target -= target % block
        self.send_until(target)

    @property
    def busy(self) -> bool:
        """Whether the pacer has something to send: frames, or the whole run of a head."""
        if self.flight is not None and self.flight.done.is_set():
            return True
        return self.run is not None and self.playing and self.sent < self.run.n

    # -- messages --------------------------------------------------------------------------
    def handle(self, text: Any) -> None:
        try:
            if not isinstance(text, str):
                raise ProtocolError("messages must be JSON text")
            msg = parse_message(text)
            if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
                raise ProtocolError('a message must be a JSON object with an "op" field', "op")
            op = msg["op"]
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise ProtocolError(
                    f"unknown op {op!r} (allowed: start, play, pause, seek, speed, step, "
                    "inspect)", "op")
            if op not in ("start",) and self.run is None:
                raise ProtocolError(f"{op!r} needs a run: send start first", "op")
            handler(msg)
        except ProtocolError as exc:
            self.error(str(exc), exc.field)
        except simulator.ScenarioError as exc:
            self.error(str(exc), exc.field)
        except (JobError, PoolError) as exc:  # refused by the engine's budget, or no room now
            self.error(str(exc), getattr(exc, "field", ""))
        except (ViewerGone, ConnectionClosed):
            raise
        except Exception:  # a bug: say so on the socket, never an HTTP 500 into the stream
            current_app.logger.exception("wsgiscope: a socket message failed")
            self.error("the server failed to handle this message (a bug, logged); the "
                       "socket is still open")

    def op_start(self, msg: dict[str, Any]) -> None:
        speed = _speed(msg.get("speed", 1))
        start_t = _time(msg) or 0.0
        if (seed := msg.get("seed")) is not None:
            check_seed(seed)  # 0 to 2**32 - 1, as in a scenario
        runs = self.runs or serving.local_runs()
        job = runs.job_for(msg.get("scenario"), seed, self.max_frames, self.max_requests)
        run, self.flight = runs.start(job)
        self.run, self.sent, self.ended = run, 0, False
        self.want_t, self.inspect_id = start_t, None
        self.speed = speed
        self.playing = bool(msg.get("play", False))
        resume = msg.get("resume")
        self.send_text(run.meta_text)
        if isinstance(resume, dict) and resume.get("key") == run.key:
            have = resume.get("have")
            if isinstance(have, int) and 0 <= have <= run.n:
                self.sent = have
        self.anchor(start_t)
        # Frames for the first moments go out at once, even paused: the page draws straight
        # away, and pressing play moves the playhead without waiting for the server.
        # A short run is all first moments: it is sent whole (in chunks), so a paused page
        # has it complete (a lesson's answer is read from the whole run).
        lead = 0.0 if math.isinf(speed) else speed * LEAD_S * 1000.0
        target = min(max(self.frame_index(start_t + lead), 1), run.n)
        while self.sent < target:
            self.send_until(target)
        self.pump()

    def op_play(self, msg: dict[str, Any]) -> None:
        self.anchor(_time(msg))
        self.playing = True
        self.pump()

    def op_pause(self, msg: dict[str, Any]) -> None:
        self.anchor(_time(msg))
        self.playing = False

    def op_speed(self, msg: dict[str, Any]) -> None:
        speed = _speed(msg.get("value"))
        self.anchor(_time(msg))
        self.speed = speed
        self.pump()

    def op_seek(self, msg: dict[str, Any]) -> None:
        t = _time(msg)
        if t is None:
            raise ProtocolError("seek needs t, a time in ms", "t")
        assert self.run is not None
        self.anchor(t)
        self.want_t = math.inf if t >= self.run.end_ms - 1e-3 else t  # a head's end: the end
        self.send_until(self.frame_index(t), limit=self.run.n)
        self.pump()

    def op_step(self, msg: dict[str, Any]) -> None:
        """Move to the next narrated moment after ``t``, sending frames up to it."""
        t = _time(msg)
        if t is None:
            raise ProtocolError("step needs t, a time in ms", "t")
        run = self.run
        assert run is not None
        i = bisect.bisect_right(run.line_times, t + 1e-6)
        target = run.line_times[i] if i < len(run.line_times) else run.times[-1]
        target = min(max(target, run.times[0]), run.times[-1])
        self.playing = False
        self.anchor(target)
        self.want_t = target
        self.send_until(self.frame_index(target), limit=run.n)
        self.send({"type": "goto", "t": target})

    def op_inspect(self, msg: dict[str, Any]) -> None:
        run = self.run
        assert run is not None
        rid = msg.get("id")
        if isinstance(rid, bool) or not isinstance(rid, int) or not (
            0 <= rid < run.n_requests
        ):
            raise ProtocolError(
                f"id must be a request number from 0 to {run.n_requests - 1} "
                f"(got {rid!r})", "id")
        if run.partial:  # the inspector reads the whole run
            self.inspect_id, self.inspect_app = rid, current_app._get_current_object()
            return
        self.inspect_id = None
        html = render_inspector(run.inspect_view(rid), rid)  # type: ignore[arg-type]
        self.send({"type": "inspect", "id": rid, "html": html})


class Viewer:
    """One socket's session and outlet, as the pacer and the socket's handler share them.

    The handler reads the browser's messages and answers them; the pacer
    (:class:`.pacer.Pacer`, one per process) sends every playing viewer its next frames,
    SEND_INTERVAL_S apart, in one pass over all of them: no timer or wake-up per viewer.
    Whoever touches the session holds ``outlet.lock``; the pacer skips a viewer whose
    handler is busy, or that is behind.
    """

    def __init__(self, ws: Any, state: serving.Serving, max_frames: int,
                 max_requests: int) -> None:
        self.outlet = Outlet(ws, state.send_timeout_s)
        self.session = Session(self.outlet, max_frames, max_requests, state.runs)
        self.dropped = False
        self.pinged = time.monotonic()

    def tick(self) -> None:
        """From the pacer: the frames the playhead will need soon, if the viewer can take
        them now; never waits."""
        if self.dropped or not self.session.busy or not self.outlet.lock.acquire(False):
            return
        try:
            if self.outlet.look():  # behind: what is pending goes first, nothing new
                self.outlet.flush()
            else:
                self.session.pump()
        except ViewerGone:
            self.drop()
        finally:
            self.outlet.lock.release()

    def keep_alive(self) -> None:
        """From the handler, between messages: a ping now and then, and the stall check."""
        now = time.monotonic()
        if now - self.pinged >= PING_S:
            self.pinged = now
            self.outlet.ping()
        self.outlet.look()

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            self.outlet.drop()


@sock.route("/ws")
def stream(ws: Any) -> None:
    """One browser's run: read its messages and answer them; the pacer plays the frames."""
    state = serving.get(current_app)
    if not state.viewers.enter():
        ws.send(json.dumps({"type": "error", "field": "", "error": (
            f"this server is full ({state.viewers.limit} viewers); try again in a minute")}))
        return
    viewer = Viewer(ws, state, current_app.config["MAX_FRAMES"],
                    current_app.config["MAX_REQUESTS"])
    state.pacer.add(viewer)
    try:
        while not viewer.dropped:
            text = ws.receive(timeout=IDLE_CHECK_S)
            with viewer.outlet.lock:
                if text is not None:
                    viewer.session.handle(text)
                viewer.keep_alive()
                viewer.outlet.drain()  # the answer leaves before the next message is read
    except ViewerGone:
        viewer.drop()
    except ConnectionClosed:
        raise
    except Exception:  # a bug: close the socket, never write an HTTP 500 into the stream
        current_app.logger.exception("wsgiscope: a socket failed")
    finally:
        state.pacer.remove(viewer)
        state.viewers.leave()
        if viewer.dropped:
            state.viewers.dropped += 1
        viewer.session.run = viewer.session.flight = None


def healthz() -> ResponseReturnValue:
    """This process's viewers, runs, cache and simulation pool, for a load balancer."""
    return jsonify({"ok": True, **serving.get(current_app).summary()})


sock.bp.add_url_rule("/healthz", "healthz", healthz)
