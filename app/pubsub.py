"""Rooms: publish a message to every subscriber of a room, in this process or, with Redis,
in every process and instance that shares it.

The interface is two calls, so a classroom room (a teacher's playhead followed by a class)
does not care where its followers are::

    broker.publish(room, message)      # str; returns how many local subscribers got it
    sub = broker.subscribe(room)       # a Subscription
    sub.get(timeout=1.0)               # the next message, or None after the timeout
    sub.close()

Each subscription holds at most ``maxlen`` messages: a subscriber that does not keep up
loses the oldest ones (``sub.lost`` counts them), never the server's memory. Room state
messages are snapshots, so the newest is the one that matters.

* :class:`MemoryBroker` -- one process (the embedded default); needs nothing.
* :class:`RedisBroker` -- Redis pub/sub: one pattern subscription per process, read by one
  background reader (a greenlet under gevent) that hands each message to the local
  subscribers of its room; a dropped Redis connection is retried, with a pause.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from typing import Any, Protocol

log = logging.getLogger("wsgiscope.pubsub")

#: Messages a subscription keeps before it drops the oldest.
DEFAULT_MAXLEN = 256
#: The longest room name (rooms are named by the app, not typed freely, but still bounded).
MAX_ROOM = 200


def _check_room(room: str) -> str:
    if not isinstance(room, str) or not room or len(room) > MAX_ROOM:
        raise ValueError(f"room must be a name of 1 to {MAX_ROOM} characters (got {room!r})")
    return room


class Subscription:
    """One subscriber's bounded queue of a room's messages."""

    def __init__(self, room: str, broker: _Local, maxlen: int = DEFAULT_MAXLEN) -> None:
        self.room = room
        self.lost = 0
        self.closed = False
        self._items: collections.deque[str] = collections.deque()
        self._maxlen = maxlen
        self._ready = threading.Event()
        self._broker = broker

    def put(self, message: str) -> None:
        if self.closed:
            return
        if len(self._items) >= self._maxlen:
            self._items.popleft()
            self.lost += 1
        self._items.append(message)
        self._ready.set()

    def get(self, timeout: float | None = None) -> str | None:
        """The next message; None if none came within ``timeout`` or the subscription closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._items:
                return self._items.popleft()
            if self.closed:
                return None
            self._ready.clear()
            if self._items:
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._ready.wait(left)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._ready.set()
            self._broker._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Broker(Protocol):
    def publish(self, room: str, message: str) -> int: ...

    def subscribe(self, room: str) -> Subscription: ...


class _Local:
    """The subscribers of this process, by room."""

    def __init__(self, maxlen: int = DEFAULT_MAXLEN) -> None:
        self.maxlen = maxlen
        self._rooms: dict[str, set[Subscription]] = {}
        self._lock = threading.Lock()

    def subscribe(self, room: str) -> Subscription:
        sub = Subscription(_check_room(room), self, self.maxlen)
        with self._lock:
            self._rooms.setdefault(room, set()).add(sub)
        return sub

    def deliver(self, room: str, message: str) -> int:
        with self._lock:
            subs = list(self._rooms.get(room, ()))
        for sub in subs:
            sub.put(message)
        return len(subs)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._rooms.get(sub.room)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._rooms[sub.room]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"rooms": len(self._rooms),
                    "subscribers": sum(len(s) for s in self._rooms.values())}


class MemoryBroker(_Local):
    """Rooms within one process."""

    def publish(self, room: str, message: str) -> int:
        return self.deliver(_check_room(room), message)


class RedisBroker(_Local):
    """Rooms across processes and instances through Redis pub/sub."""

    def __init__(self, url: str, prefix: str = "wsgiscope:room:",
                 maxlen: int = DEFAULT_MAXLEN) -> None:
        import redis

        super().__init__(maxlen)
        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._errors = (redis.RedisError, OSError)
        self._stopped = False
        self._connected = threading.Event()
        self._reader = threading.Thread(target=self._read, name="wsgiscope-rooms",
                                        daemon=True)
        self._reader.start()

    def publish(self, room: str, message: str) -> int:
        try:
            return int(self.client.publish(self.prefix + _check_room(room), message))
        except self._errors as exc:
            log.warning("wsgiscope: publishing to room %r failed: %s", room, exc)
            return 0

    def wait_connected(self, timeout: float) -> bool:
        """Whether the reader is subscribed (a message published before may be missed)."""
        return self._connected.wait(timeout)

    def _read(self) -> None:
        while not self._stopped:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(self.prefix + "*")
                pubsub.get_message(timeout=1.0)  # the subscription's confirmation
                self._connected.set()
                while not self._stopped:
                    msg = pubsub.get_message(timeout=1.0)
                    if msg is None or msg.get("type") != "pmessage":
                        continue
                    channel = msg["channel"].decode(errors="replace")
                    data = msg["data"]
                    self.deliver(channel[len(self.prefix):],
                                 data.decode(errors="replace") if isinstance(data, bytes)
                                 else str(data))
            except self._errors as exc:
                self._connected.clear()
                log.warning("wsgiscope: the rooms' Redis connection failed (%s); retrying",
                            exc)
                time.sleep(1.0)
            finally:
                with contextlib.suppress(*self._errors):
                    pubsub.close()

    def close(self) -> None:
        self._stopped = True
