"""Prepared runs cached by content hash, so equal requests cost one simulation.

A run is a pure function of its scenario, seed and the page's limits
(:func:`cache_key` hashes them), so a class opening the same lesson
shares one :class:`~wsgiscope.app.runs.Prepared` run.

* :class:`MemoryRunCache` -- each serving process's own level: decoded runs, least
  recently used first out, bounded by an estimate of the bytes they hold.
* :class:`RedisRunStore` -- the level several processes or instances share, given
  ``--redis URL``: the runs as :meth:`Prepared.to_bytes`, bounded by bytes with the least
  recently used out first (one Lua script per put, so concurrent writers keep the account
  right), plus a short-lived claim per key so that only one process simulates a run that
  several ask for at once, and the refusals of the last minute so that the others get the
  same answer without running it again.

Redis being down never stops the page: the store logs it and reports a miss, and the
process simulates on its own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from .runpack import WIRE_FORMAT
from .runs import CHUNK_MEMO, CHUNK_MEMO_TEXT, Prepared

log = logging.getLogger("wsgiscope.cache")

#: Default bound of each process's cache of decoded runs.
DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024
#: Default bound of the shared cache in Redis.
DEFAULT_SHARED_BYTES = 512 * 1024 * 1024
#: How long a refusal (a scenario error, a budget refusal) is remembered in Redis.
ERROR_TTL_S = 60


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wsgiscope")
    except PackageNotFoundError:  # pragma: no cover - a checkout without metadata
        return "0"


def cache_key(scenario: dict[str, Any], seed: int | None, max_frames: int,
              max_requests: int, max_events: int | None = None) -> str:
    """The content hash a prepared run is cached under: the canonical scenario
    (``Scenario.to_dict()``), the seed, the page's limits, the engine's budget, the wire
    format and the package version, so equal requests share one simulation and instances
    of another version never read each other's runs."""
    text = json.dumps([WIRE_FORMAT, _version(), scenario, seed, max_frames, max_requests,
                       max_events], sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def approx_size(run: Prepared) -> int:
    """The bytes a decoded run holds, roughly: its arrays and strings, with object headers."""
    arrays = (run.times, run.th, run.g, run.span_starts, run.done_times, run.line_times,
              *run.counters.values())
    size = sum(a.itemsize * len(a) + 64 for a in arrays)
    for texts in (run.spans, run.done, run.narration):
        size += sum(len(t) for t in texts) + 57 * len(texts)  # str header and list slot
    if run.inspect is not None:
        size += run.inspect.approx_size()
    size += CHUNK_MEMO * CHUNK_MEMO_TEXT // 4  # its memo of encoded chunks, when in use
    return size + len(json.dumps(run.meta)) * 3  # the meta as Python objects


class MemoryRunCache:
    """Decoded runs by key, least recently used out first, bounded by ``max_bytes``."""

    def __init__(self, max_bytes: int = DEFAULT_MEMORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self._runs: OrderedDict[str, tuple[Prepared, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "evicted": 0}

    def get(self, key: str) -> Prepared | None:
        with self._lock:
            entry = self._runs.get(key)
            if entry is None:
                self.stats["misses"] += 1
                return None
            self._runs.move_to_end(key)
            self.stats["hits"] += 1
            return entry[0]

    def peek(self, key: str) -> Prepared | None:
        """The run under ``key``, without counting a hit or a miss."""
        with self._lock:
            entry = self._runs.get(key)
            return None if entry is None else entry[0]

    def put(self, key: str, run: Prepared) -> None:
        size = approx_size(run)
        if size > self.max_bytes:
            return  # larger than the whole cache: served to whoever asked, not kept
        with self._lock:
            old = self._runs.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._runs[key] = (run, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._runs.popitem(last=False)
                self._bytes -= dropped
                self.stats["evicted"] += 1

    def summary(self) -> dict[str, Any]:
        return {"entries": len(self._runs), "bytes": self._bytes,
                "max_bytes": self.max_bytes, **self.stats}


# KEYS: data key, lru zset, sizes hash, total; ARGV: blob, now, max bytes, id, data prefix
_PUT = """
local size = string.len(ARGV[1])
local max = tonumber(ARGV[3])
if size > max then return 0 end
local old = redis.call('HGET', KEYS[3], ARGV[4])
if old then redis.call('DECRBY', KEYS[4], old) end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[4], size)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
local total = redis.call('INCRBY', KEYS[4], size)
while total > max do
  local victim = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not victim then break end
  local vsize = tonumber(redis.call('HGET', KEYS[3], victim) or '0')
  redis.call('ZREM', KEYS[2], victim)
  redis.call('HDEL', KEYS[3], victim)
  redis.call('DEL', ARGV[5] .. victim)
  total = redis.call('DECRBY', KEYS[4], vsize)
end
return 1
"""

# KEYS: data key, lru zset, sizes hash, total; ARGV: now, id
_GET = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[1], ARGV[2])
else
  local size = redis.call('HGET', KEYS[3], ARGV[2])
  if size then
    redis.call('HDEL', KEYS[3], ARGV[2])
    redis.call('ZREM', KEYS[2], ARGV[2])
    redis.call('DECRBY', KEYS[4], size)
  end
end
return v
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisRunStore:
    """Runs as bytes in Redis, shared by every process and instance given the same URL."""

    def __init__(self, url: str, max_bytes: int = DEFAULT_SHARED_BYTES,
                 prefix: str = "wsgiscope:") -> None:
        import redis

        self.url = url
        self.max_bytes = max_bytes
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._errors = (redis.RedisError, OSError)
        self._put = self.client.register_script(_PUT)
        self._get = self.client.register_script(_GET)
        self._release = self.client.register_script(_RELEASE)
        self._keys = [prefix + "runs:lru", prefix + "runs:sizes", prefix + "runs:bytes"]
        self._token = uuid.uuid4().hex
        self._warned = 0.0
        self.stats = {"hits": 0, "misses": 0, "errors": 0}

    def _down(self, exc: BaseException) -> None:
        self.stats["errors"] += 1
        now = time.monotonic()
        if now - self._warned > 30:  # once in a while, not once per request
            self._warned = now
            log.warning("wsgiscope: the shared cache at %s is unavailable (%s); simulating "
                        "in this process meanwhile", self.url, exc)

    def ping(self) -> None:
        """Raise if Redis cannot be reached (``wsgiscope serve`` checks at start)."""
        self.client.ping()

    def get(self, key: str) -> bytes | None:
        try:
            data = self._get(keys=[self.prefix + "run:" + key, *self._keys],
                             args=[time.time(), key])
        except self._errors as exc:
            self._down(exc)
            return None
        self.stats["hits" if data is not None else "misses"] += 1
        return data  # type: ignore[no-any-return]

    def put(self, key: str, data: bytes) -> None:
        try:
            self._put(keys=[self.prefix + "run:" + key, *self._keys],
                      args=[data, time.time(), self.max_bytes, key, self.prefix + "run:"])
        except self._errors as exc:
            self._down(exc)

    def claim(self, key: str, ttl_s: float) -> bool:
        """Take the right to simulate ``key`` for ``ttl_s``; False if another process has
        it. With Redis down, every process may simulate (True)."""
        try:
            return bool(self.client.set(self.prefix + "claim:" + key, self._token, nx=True,
                                        px=max(1, int(ttl_s * 1000))))
        except self._errors as exc:
            self._down(exc)
            return True

    def claimed(self, key: str) -> bool:
        try:
            return bool(self.client.exists(self.prefix + "claim:" + key))
        except self._errors as exc:
            self._down(exc)
            return False

    def release(self, key: str) -> None:
        try:
            self._release(keys=[self.prefix + "claim:" + key], args=[self._token])
        except self._errors as exc:
            self._down(exc)

    def put_error(self, key: str, error: dict[str, Any]) -> None:
        try:
            self.client.set(self.prefix + "error:" + key, json.dumps(error), ex=ERROR_TTL_S)
        except self._errors as exc:
            self._down(exc)

    def get_error(self, key: str) -> dict[str, Any] | None:
        try:
            raw = self.client.get(self.prefix + "error:" + key)
        except self._errors as exc:
            self._down(exc)
            return None
        return None if raw is None else json.loads(raw)  # type: ignore[no-any-return]

    def summary(self) -> dict[str, Any]:
        try:
            used = int(self.client.get(self.prefix + "runs:bytes") or 0)
            entries = int(self.client.zcard(self.prefix + "runs:lru"))
        except self._errors:
            used, entries = -1, -1
        return {"entries": entries, "bytes": used, "max_bytes": self.max_bytes, **self.stats}
