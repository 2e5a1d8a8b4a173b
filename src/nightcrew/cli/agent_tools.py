"""Which backlog tools each kind of agent session gets, bound to its backlog,
run and attempt (imported by the commands that start agents)."""

from __future__ import annotations

from collections.abc import Sequence

from nightcrew.agents.base import HarnessTool
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import AttemptRow
from nightcrew.work.backlog import Feature

READ = ("get_stats", "get_ready_features", "get_feature", "get_dependency_graph")
# A feature's builder reads the backlog, claims its feature passes (recorded and
# verified, never believed) and may ask a person; it does not reshape the backlog.
BUILD = (*READ, "claim_passing", "request_human_input")
# The initializer creates the backlog.
INIT = (*READ, "create_features", "create_feature", "set_dependencies")


def build_tools(
    backlog: Backlog, feature: Feature, run_id: str, attempt: AttemptRow
) -> Sequence[HarnessTool]:
    from nightcrew.mcp.tools import ToolContext, bind

    context = ToolContext(backlog, f"agent:{run_id}", feature.id, attempt.id)
    return bind(context, BUILD)


def init_tools(backlog: Backlog, run_id: str, attempt: AttemptRow) -> Sequence[HarnessTool]:
    from nightcrew.mcp.tools import ToolContext, bind

    return bind(ToolContext(backlog, f"init:{run_id}", None, attempt.id), INIT)
