"""wsgiscope's simulation engine: pure Python, no Flask, no I/O, no threads, no clock.

Scenario in, deterministic :class:`Trace` out.
"""

from .trace import Event as Event
from .trace import RequestRecord as RequestRecord
from .trace import Trace as Trace
