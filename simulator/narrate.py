"""Narration under its former name: the run told in plain words.

The narrator now lives in :mod:`.narration`, one module per mechanism; import from there.
This module keeps the names it always had for code that still imports them here.
"""

from .narration import DEFAULT_MAX_LINES as DEFAULT_MAX_LINES
from .narration import describe_server as describe_server
from .narration import fmt_dur as fmt_dur
from .narration import fmt_t as fmt_t
from .narration import lane_name as lane_name
from .narration import narrate as narrate
from .narration import user as user
