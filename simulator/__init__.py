"""wsgiscope's simulation engine: pure Python, no Flask, no I/O, no threads, no clock.

Scenario in, deterministic :class:`Trace` out::

    from wsgiscope import simulator
    trace = simulator.run(simulator.presets.get("dev-single-thread").scenario)
"""

from . import presets as presets
from .engine import Simulation as Simulation
from .engine import no_gc as no_gc
from .engine import run as run
from .scenario import Scenario as Scenario
from .scenario import ScenarioError as ScenarioError
from .scenario import load_scenario as load_scenario
from .trace import Event as Event
from .trace import RequestRecord as RequestRecord
from .trace import Trace as Trace
