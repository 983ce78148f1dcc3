"""What the browser may send on the WebSocket (:mod:`.stream`): messages, speeds, times.

A message is JSON text of at most :data:`MAX_MESSAGE_BYTES`, without ``NaN`` or
``Infinity``, nested no deeper than a scenario may be; anything else is a one-line
:class:`ProtocolError`. A scenario inside a ``start`` is validated as a scenario later.
"""

from __future__ import annotations

import json
import math
from typing import Any

from wsgiscope import simulator
from wsgiscope.simulator.validation import MAX_DEPTH, check_depth

#: Playback speeds the page offers; ``"max"`` sends frames as fast as the socket takes them.
MIN_SPEED, MAX_SPEED = 0.1, 100.0
#: The largest message the browser may send (a start with its scenario).
MAX_MESSAGE_BYTES = 2_000_000


class ProtocolError(ValueError):
    """A message the server cannot act on; answered with an error frame."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"the message holds {name}, which is not a number JSON allows")


def _int(text: str) -> int | float:
    return int(text) if len(text) <= 40 else float(text)  # no 5,000-digit int() here


def parse_message(text: str) -> Any:
    """The message ``text`` holds (see the module docstring)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"the message is {size:,} bytes; a message may be at most "
                            f"{MAX_MESSAGE_BYTES:,} bytes")
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_int=_int)
    except RecursionError:
        raise ProtocolError(f"the message nests more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        if isinstance(exc, ProtocolError):
            raise
        detail = " ".join(str(exc).split())[:200]
        raise ProtocolError(f"the message is not valid JSON ({detail})") from None
    try:
        check_depth(data, MAX_DEPTH + 1)  # the message around a scenario is one level more
    except simulator.ScenarioError as exc:
        raise ProtocolError(f"the message {exc.message}", exc.field) from None
    return data


def _speed(value: Any) -> float:
    if value == "max":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        MIN_SPEED <= value <= MAX_SPEED
    ):
        raise ProtocolError(
            f"speed must be a number from {MIN_SPEED:g} to {MAX_SPEED:g} or \"max\" "
            f"(got {value!r})", "speed")
    return float(value)


def _time(msg: dict[str, Any]) -> float | None:
    t = msg.get("t")
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ProtocolError(f"t must be a time in ms (got {t!r})", "t")
    return float(t)
