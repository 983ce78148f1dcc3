"""The event log of a :class:`~.trace.Trace`: :class:`Event` tuples, stored by column.

A big run logs millions of events; a tuple per event costs ~120 bytes, an
:class:`EventLog` ~33 (times in an array of doubles, kinds as byte codes, the rest as
lists of ints and strings shared between events). See :mod:`.trace` for what the kinds
mean.
"""

from __future__ import annotations

import abc
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, islice, repeat
from typing import Any, NamedTuple, overload


class Event(NamedTuple):
    """One entry of the event log. See :mod:`.trace` for the kinds."""

    t: float
    kind: str
    who: str | int
    what: str | int
    ref: str | int


#: The kinds of event an :class:`EventLog` knows without being told, by code.
KINDS = ("thread", "gil", "backlog", "req", "worker", "core")

_new = tuple.__new__  # builds an Event from a row without NamedTuple's Python-level __new__


class EventLog(Sequence[Event]):
    """The event log, stored by column instead of a tuple per event.

    ``t`` is an ``array('d')`` of times, ``codes`` an ``array('B')`` of kinds (an index into
    :attr:`kinds`, which starts with :data:`KINDS`), and ``who``, ``what`` and ``ref`` are
    lists of ints and strings shared between events (a thread key or a state is one string
    object however often it occurs). That is about 33 bytes per event instead of ~120.

    It reads like the list of :class:`Event` tuples it replaces: ``len``, iteration,
    ``log[i]``, ``log[a:b]`` (a list), ``append``, ``extend``, ``log[:] = events`` and ``==``
    against another log or a list of events. Hot readers skip building an :class:`Event` per
    event: :meth:`rows` yields plain ``(t, kind, who, what, ref)`` tuples, and the columns
    are there to read directly. The column objects are never replaced (slice assignment
    rewrites them in place), so a writer may keep their bound ``append`` methods.
    """

    __slots__ = ("t", "codes", "kinds", "who", "what", "ref", "_code_of", "_peak", "_peak_n")

    def __init__(self, events: Iterable[Sequence[Any]] = ()) -> None:
        self.t = array("d")
        self.codes = array("B")
        #: Kind names by code; kinds beyond :data:`KINDS` are added as they are met.
        self.kinds: list[str] = list(KINDS)
        self.who: list[Any] = []
        self.what: list[Any] = []
        self.ref: list[Any] = []
        self._code_of = {k: i for i, k in enumerate(KINDS)}
        #: :meth:`max_backlog` of the first ``_peak_n`` events (None: no backlog event among
        #: them); events are only ever added at the end, except by slice assignment, which
        #: starts it over. The run's :class:`~.request.Recorder` keeps it up to date.
        self._peak: Any = None
        self._peak_n = 0
        self.extend(events)

    def code(self, kind: str) -> int:
        """The code of ``kind`` in :attr:`codes` (a new one for a kind not seen before)."""
        code = self._code_of.get(kind)
        if code is None:
            if not isinstance(kind, str):
                raise TypeError(f"an event's kind must be a string (got {kind!r})")
            code = len(self.kinds)
            if code > 255:
                raise ValueError("an event log holds at most 256 kinds of event")
            self.kinds.append(kind)
            self._code_of[kind] = code
        return code

    def append(self, event: Sequence[Any]) -> None:
        """Add one ``(t, kind, who, what, ref)`` event at the end."""
        t, kind, who, what, ref = event
        code = self.code(kind)  # first: a bad kind leaves the log as it was
        if self._peak_n == len(self.codes):  # keep max_backlog's memory up to date
            self._peak_n += 1
            if kind == "backlog" and (self._peak is None or what > self._peak):
                self._peak = what
        self.t.append(t)
        self.codes.append(code)
        self.who.append(who)
        self.what.append(what)
        self.ref.append(ref)

    def extend(self, events: Iterable[Sequence[Any]]) -> None:
        """Add events at the end. Equal strings and ints among them are stored once (a log
        decoded from JSON would otherwise hold a copy per event)."""
        shared: dict[Any, Any] = {}
        keep = shared.setdefault
        t_add, code_add = self.t.append, self.codes.append
        who_add, what_add, ref_add = self.who.append, self.what.append, self.ref.append
        code_of = self._code_of
        for t, kind, who, what, ref in events:
            code = code_of.get(kind)
            code_add(self.code(kind) if code is None else code)
            t_add(t)
            # exact types only: True and 1.0 are equal to 1 as dict keys
            who_add(keep(who, who) if type(who) is str or type(who) is int else who)
            what_add(keep(what, what) if type(what) is str or type(what) is int else what)
            ref_add(keep(ref, ref) if type(ref) is str or type(ref) is int else ref)

    def max_backlog(self) -> Any:
        """The deepest accept queue: the largest ``what`` of the ``backlog`` events (0 if
        there are none). Remembered, so only events added since the last call are read."""
        n = len(self.codes)
        done, peak = self._peak_n, self._peak
        if done > n:
            done, peak = 0, None
        if done < n:
            # the backlog events' places as a byte mask, in C: no loop over the events here
            table = bytearray(256)
            table[self.code("backlog")] = 1
            mask = self.codes[done:].tobytes().translate(table)
            whats: Iterable[Any] = self.what if done == 0 else islice(self.what, done, None)
            tail = max(compress(whats, mask), default=None)
            if tail is not None and (peak is None or tail > peak):
                peak = tail
            self._peak, self._peak_n = peak, n
        return 0 if peak is None else peak

    def rows(self) -> Iterator[tuple[float, str, Any, Any, Any]]:
        """The events as plain ``(t, kind, who, what, ref)`` tuples, the fastest way to read
        them all (no :class:`Event` is built)."""
        return zip(self.t, map(self.kinds.__getitem__, self.codes),
                   self.who, self.what, self.ref, strict=True)

    def kind_column(self) -> Iterator[str]:
        """Each event's kind, in order."""
        return map(self.kinds.__getitem__, self.codes)

    def __iter__(self) -> Iterator[Event]:
        return map(_new, repeat(Event), self.rows())

    def __len__(self) -> int:
        return len(self.t)

    @overload
    def __getitem__(self, i: int) -> Event: ...

    @overload
    def __getitem__(self, i: slice) -> list[Event]: ...

    def __getitem__(self, i: int | slice) -> Event | list[Event]:
        if isinstance(i, slice):
            kinds = self.kinds
            return [_new(Event, row) for row in zip(
                self.t[i], [kinds[c] for c in self.codes[i]], self.who[i], self.what[i],
                self.ref[i], strict=True)]
        return _new(Event, (self.t[i], self.kinds[self.codes[i]], self.who[i],
                            self.what[i], self.ref[i]))

    def __setitem__(self, i: slice, events: Iterable[Sequence[Any]]) -> None:
        """``log[a:b] = events``: the columns are rewritten in place."""
        if not isinstance(i, slice):
            raise TypeError("an event log is changed by slices only (log[a:b] = events)")
        rows = list(self)
        rows[i] = [tuple(e) for e in events]  # type: ignore[misc]
        self._peak, self._peak_n = None, 0
        for column in (self.who, self.what, self.ref):
            del column[:]
        del self.t[:]
        del self.codes[:]
        self.extend(rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventLog):
            if self.kinds[:len(other.kinds)] == other.kinds[:len(self.kinds)]:
                return (self.t == other.t and self.codes == other.codes
                        and self.who == other.who and self.what == other.what
                        and self.ref == other.ref)
            return list(self.rows()) == list(other.rows())
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(
                tuple(a) == tuple(b) for a, b in zip(self.rows(), other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<EventLog of {len(self)} events>"


if "_abc_impl" not in vars(EventLog):
    # Compiled, the class is made without ``ABCMeta.__new__``, so it has no registry and
    # cache of its own and ``isinstance`` would use ``Sequence``'s, where ``list`` and
    # ``tuple`` are: ``isinstance([], EventLog)`` was True (a Trace kept a list given as
    # its events), and what that cached could make ``isinstance([], Sequence)`` False.
    abc._abc_init(EventLog)  # type: ignore[attr-defined]  # what ABCMeta.__new__ does
