"""Classroom rooms: a teacher's page drives, the class's pages follow.

A room is a short code (``K7M2QX``) and nothing else on the server: no list of rooms, no
state kept between messages. The teacher's page gets the code and a *secret*
(``POST /rooms``); the secret is an HMAC of the code under the server's room key, so any
process that shares the key checks it without asking anyone (as reveal.js multiplex checks
its presenter). Students open ``/r/<code>`` and follow.

Everyone in a room holds a socket on ``/rooms/<code>/ws``; the socket subscribes to the
room on the serving layer's broker (:mod:`.pubsub`: in memory, or Redis across processes
and instances). What travels is small:

* teacher -> class: ``run`` (the lesson and its scenario and seed, when they change or a
  student arrives) and ``play`` (playhead, playing, speed, the request inspected, the
  question's state). Each follower loads the run itself, on its own stream, from the shared
  run cache: one simulation for the whole class; after that only ``play`` messages flow.
* student -> teacher: ``hello`` and ``bye`` (who follows), ``answer`` (a prediction).
  Students never see each other's answers.

Messages on the broker are ``"A|" + json`` (for everyone) or ``"T|" + json`` (for the
teacher only), so a socket routes them without parsing them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from simple_websocket import ConnectionClosed

from . import serving
from .stream import sock

bp = Blueprint("rooms", __name__)

#: Room codes: six characters a class can read off a projector (no 0/O, 1/I).
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LEN = 6
CODE_RE = re.compile(f"[{ALPHABET}]{{{CODE_LEN}}}")
#: The largest message a room socket takes (a run message carries a scenario).
MAX_MESSAGE = 200_000
#: How often a room socket looks for the room's messages between its own.
POLL_S = 0.1
#: Where the shared room key lives in Redis (when rooms go through Redis).
REDIS_KEY = "wsgiscope:room-key"
_EXT = "wsgiscope.rooms.key"


class RoomError(ValueError):
    """A message a room cannot act on: answered with an error message on the socket."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def channel(code: str) -> str:
    return f"room:{code}"


def check_code(code: Any) -> str:
    text = str(code or "").strip().upper()
    if not CODE_RE.fullmatch(text):
        raise RoomError(f"a room code is {CODE_LEN} letters and digits, like K7M2QX "
                        f"(got {str(code)[:20]!r})", "code")
    return text


def room_key(app: Flask) -> bytes:
    """The key room secrets are made with: ``ROOM_KEY``, else ``SECRET_KEY``, else one
    shared through Redis when rooms go through Redis, else one for this process."""
    found = app.extensions.get(_EXT)
    if found is not None:
        return found  # type: ignore[no-any-return]
    given = app.config.get("ROOM_KEY") or app.config.get("SECRET_KEY")
    key = given.encode() if isinstance(given, str) else given
    if not key:
        client = getattr(serving.get(app).rooms, "client", None)
        fresh = secrets.token_hex(32)
        if client is not None:
            try:
                client.set(REDIS_KEY, fresh, nx=True)
                key = client.get(REDIS_KEY) or fresh.encode()
            except Exception:  # Redis down: this process's own key; rooms stay local
                key = fresh.encode()
        else:
            key = fresh.encode()
    app.extensions[_EXT] = key
    return key  # type: ignore[no-any-return]


def secret_for(key: bytes, code: str) -> str:
    return hmac.new(key, f"room:{code}".encode(), hashlib.sha256).hexdigest()[:32]


def new_room(key: bytes) -> tuple[str, str]:
    """A fresh code and the teacher's secret for it."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LEN))
    return code, secret_for(key, code)


# --- pages ---------------------------------------------------------------------------------


@bp.post("/rooms")
def create() -> ResponseReturnValue:
    """Open a room: its code, the teacher's secret and the address students open."""
    code, secret = new_room(room_key(current_app))
    join = url_for("rooms.join", code=code, _external=True)
    return jsonify({"code": code, "secret": secret, "join": join,
                    "socket": url_for("__flask_sock.room_socket", code=code)})


@bp.get("/r/<code>")
def join(code: str) -> ResponseReturnValue:
    """A student's way in: the page, following the room."""
    try:
        code = check_code(code)
    except RoomError as exc:
        return f"{exc}\n", 404, {"Content-Type": "text/plain; charset=utf-8"}
    extra = {"projector": "1"} if request.args.get("projector") == "1" else {}
    return redirect(url_for("views.index", room=code, **extra))


# --- the socket ----------------------------------------------------------------------------


def _number(msg: dict[str, Any], key: str, low: float, high: float, default: Any = None) -> float:
    v = msg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not (
        low <= v <= high
    ):
        raise RoomError(f"{key} must be a number from {low:g} to {high:g} (got {v!r})", key)
    return float(v)


def _name(msg: dict[str, Any], key: str, most: int = 80) -> str:
    v = msg.get(key, "")
    if not isinstance(v, str) or len(v) > most:
        raise RoomError(f"{key} must be text of at most {most} characters", key)
    return v


class Member:
    """One socket in a room: its role and what it may say (sending is the caller's)."""

    def __init__(self, code: str, key: bytes, publish: Any) -> None:
        self.code = code
        self.key = key
        self.publish = publish  # (text) -> None, onto the room's channel
        self.id = secrets.token_hex(4)
        self.role = ""  # "teacher" or "student", after hello

    def wants(self, text: str) -> bool:
        """Whether a message of the room goes to this socket."""
        if text.startswith("T|"):
            return self.role == "teacher"
        return text.startswith("A|")

    def say(self, to: str, message: dict[str, Any]) -> None:
        self.publish(f"{to}|" + json.dumps({**message, "from": self.id},
                                          separators=(",", ":")))

    def handle(self, text: Any) -> dict[str, Any] | None:
        """Act on one message; the reply for this socket alone, if any."""
        if not isinstance(text, str) or len(text) > MAX_MESSAGE:
            raise RoomError(f"a room message is JSON text of at most {MAX_MESSAGE} bytes")
        try:
            msg = json.loads(text)
        except ValueError as exc:
            raise RoomError(f"the message is not valid JSON ({exc})") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            raise RoomError('a message must be a JSON object with an "op" field', "op")
        op = msg["op"]
        if op == "hello":
            return self.hello(msg)
        if not self.role:
            raise RoomError("say hello first (as teacher, with the secret, or as student)", "op")
        if op in ("run", "play", "close"):
            if self.role != "teacher":
                raise RoomError("only the teacher's page drives the room: step away to "
                                "explore on your own", "op")
            getattr(self, f"op_{op}")(msg)
            return None
        if op == "answer":
            self.op_answer(msg)
            return {"type": "answered"}
        raise RoomError(f"unknown op {op!r} (allowed: hello, run, play, close, answer)", "op")

    def hello(self, msg: dict[str, Any]) -> dict[str, Any]:
        role = msg.get("role")
        if role == "teacher":
            given = msg.get("secret")
            if not isinstance(given, str) or not hmac.compare_digest(
                given, secret_for(self.key, self.code)
            ):
                raise RoomError("the room's secret does not match: only the page that opened "
                                "the room can drive it", "secret")
            self.role = "teacher"
        elif role == "student":
            self.role = "student"
            self.say("T", {"type": "hello"})  # the teacher's page answers with run and play
        else:
            raise RoomError(f"role must be teacher or student (got {role!r})", "role")
        return {"type": "welcome", "role": self.role, "id": self.id, "code": self.code}

    def op_run(self, msg: dict[str, Any]) -> None:
        scenario = msg.get("scenario")
        if not isinstance(scenario, dict):
            raise RoomError("run needs the scenario (a JSON object)", "scenario")
        seed = msg.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise RoomError(f"seed must be a whole number (got {seed!r})", "seed")
        self.say("A", {"type": "run", "lesson": _name(msg, "lesson"), "scenario": scenario,
                       "seed": seed})

    def op_play(self, msg: dict[str, Any]) -> None:
        t = _number(msg, "t", 0, 1e12)
        speed = msg.get("speed", 1)
        if speed != "max":
            speed = _number(msg, "speed", 0.1, 100, 1)
        inspect = msg.get("inspect", -1)
        if isinstance(inspect, bool) or not isinstance(inspect, int) or inspect < -1:
            raise RoomError(f"inspect must be a request number or -1 (got {inspect!r})",
                            "inspect")
        question = _name(msg, "question", 20)
        self.say("A", {"type": "play", "t": t,
                       "playing": bool(msg.get("playing")), "speed": speed,
                       "inspect": inspect, "question": question})

    def op_close(self, msg: dict[str, Any]) -> None:
        self.say("A", {"type": "closed"})

    def op_answer(self, msg: dict[str, Any]) -> None:
        kind = msg.get("kind")
        if kind not in ("number", "choice", "click"):
            raise RoomError(f"kind must be number, choice or click (got {kind!r})", "kind")
        value = _number(msg, "value", -1e12, 1e12)
        self.say("T", {"type": "answer", "lesson": _name(msg, "lesson"), "kind": kind,
                       "value": value})

    def leave(self) -> None:
        if self.role == "student":
            self.say("T", {"type": "bye"})


@sock.route("/rooms/<code>/ws")
def room_socket(ws: Any, code: str) -> None:
    """One page in a room: its messages go to the room, the room's come back."""
    state = serving.get(current_app)

    def send(message: dict[str, Any]) -> None:
        ws.send(json.dumps(message, separators=(",", ":")))

    try:
        code = check_code(code)
    except RoomError as exc:
        send({"type": "error", "error": str(exc), "field": exc.field})
        return
    if not state.viewers.enter():
        send({"type": "error", "field": "", "error": "this server is full; try again in a "
                                                     "minute"})
        return
    room = channel(code)
    member = Member(code, room_key(current_app), lambda text: state.rooms.publish(room, text))
    sub = state.rooms.subscribe(room)
    try:
        while True:
            text = ws.receive(timeout=POLL_S)
            if text is not None:
                try:
                    reply = member.handle(text)
                except RoomError as exc:
                    reply = {"type": "error", "error": str(exc), "field": exc.field}
                if reply is not None:
                    send(reply)
            while (out := sub.get(timeout=0)) is not None:
                if member.wants(out):
                    ws.send(out[2:])
    except ConnectionClosed:
        pass
    finally:
        sub.close()
        member.leave()
        state.viewers.leave()
