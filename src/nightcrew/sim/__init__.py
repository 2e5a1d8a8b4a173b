"""A scripted, offline stand-in for the Anthropic Messages API.

Point the real Claude Code CLI at a :class:`SimServer` (see :func:`agent_env`) and it runs
the tool calls a :class:`Scenario` scripts, reporting the token usage the test chose. The
format is documented in docs/sim.md; ``python -m nightcrew.sim --scenario FILE`` serves one.
"""

from nightcrew.sim.env import agent_env
from nightcrew.sim.scenario import Scenario, load_scenario
from nightcrew.sim.server import SimRequest, SimServer

__all__ = ["Scenario", "SimRequest", "SimServer", "agent_env", "load_scenario"]
