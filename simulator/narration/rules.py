"""The registry: every mechanism's rules, in the order they hear about one event.

To narrate a new mechanism, write a module with a :class:`base.Rule` subclass and add it
here. The order matters where two rules listen to the same event (their lines at one
instant come out in this order): ``Threads`` keeps the thread facts that ``Cores`` and
``Gil`` read on the same event; ``Accept`` explains a backlog wait before ``Client`` tells
how that request ended; ``Client`` tells a slow client before ``FlaskApp`` tells the stage
it is in. The closing summary's clauses come in this order too: ``Overview``'s tally,
``Kernel``'s backlog peak, ``Gil``'s forced switches.
"""

from __future__ import annotations

from .accept import Accept
from .accept_race import AcceptRace
from .base import Rule
from .client import Client
from .core_sharing import CoreSharing
from .cores import Cores
from .flask_app import FlaskApp
from .flask_paths import FlaskPaths
from .gil import Gil
from .gil_contention import GilContention
from .kernel import Kernel
from .lifecycle import Lifecycle
from .overview import Overview
from .pool import Pool
from .replacement import Replacement
from .threads import Threads

RULES: tuple[type[Rule], ...] = (
    Overview,
    Threads,
    Kernel,
    Accept,
    AcceptRace,
    Pool,
    Cores,
    CoreSharing,
    Gil,
    GilContention,
    Lifecycle,
    Replacement,
    Client,
    FlaskApp,
    FlaskPaths,
)
