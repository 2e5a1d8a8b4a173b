"""The backlog as shown: every feature's displayed state and blockers, and a
feature's JSON shape (``backlog list --json``, ``backlog show``, the MCP tools)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nightcrew.work.backlog_graph import blocked_by

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nightcrew.work.backlog import Feature
    from nightcrew.work.backlog_graph import Node


def feature_json(feature: Feature, view: BacklogView) -> dict[str, Any]:
    return {
        "id": feature.id,
        "name": feature.name,
        "category": feature.category,
        "state": view.states[feature.id],
        "priority": feature.priority,
        "position": feature.position,
        "depends_on": list(feature.depends_on),
        "blocked_by": view.blocked.get(feature.id, []),
        "description": feature.description,
        "steps": list(feature.steps),
        "acceptance": list(feature.acceptance),
        "manual": feature.manual,
        "files": list(feature.files),
        "model": feature.model,
        "attempts": feature.attempts,
        "input_request": feature.input_request,
        "input_answer": feature.input_answer,
        "source_key": feature.source_key,
    }


class BacklogView:
    """Every feature's shown state and blockers, worked out in one pass."""

    def __init__(self, features: Sequence[Node]) -> None:
        self.features = features
        self.blocked = blocked_by(features)
        self.states = {f.id: "blocked" if f.id in self.blocked else f.state.value for f in features}
