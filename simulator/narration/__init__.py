"""Narration: a run told in plain words, one timed line per thing worth saying.

:func:`narrate` reads a Trace's event log and says what happened and why, the way a teacher
would tell it to a class: who connected, who had to wait in the kernel's backlog and for
what, which SYN was dropped and when it was retried, who waited for the GIL and who held
it, which worker was killed. The browser shows these lines beside the timeline and the CLI
prints them, so they are the same words everywhere.

A large run is summarised rather than told event by event: the first requests are told in
full, every lesson is told the first time it happens, progress is reported at a few
checkpoints, and the lines are capped with a note of how many were left out.

Each mechanism (the kernel's queue, accepting, a worker's thread pool, the cores, the GIL,
the workers' lifecycle, the client, Flask) tells its own part in a module of its own;
:mod:`.core` only runs them over the events and orders and thins what they say;
:mod:`.rules` lists them.
"""

from .base import DEFAULT_MAX_LINES as DEFAULT_MAX_LINES
from .base import describe_server as describe_server
from .base import fmt_dur as fmt_dur
from .base import fmt_t as fmt_t
from .base import lane_name as lane_name
from .base import user as user
from .core import narrate as narrate
