"""The backlog tools, defined once and served by every transport: ``nightcrew
mcp`` over stdio (:mod:`nightcrew.mcp.server`) and in-process to the agent of a
build (:func:`bind`, which :mod:`nightcrew.agents.claude.sdk_tools` serves to Claude Code).

A tool is a name, a description written for an agent, a JSON Schema of its
arguments and a handler ``(context, args) -> dict`` over the backlog store.
:func:`call_tool` checks the arguments against the schema, runs the handler
and turns every refusal into a one-line error reply: a bad call never raises
and never stops a server.

Nothing here marks a feature passed: ``claim_passing`` records a claim that
the harness verifies by running the feature's acceptance commands.

The JSON shapes of features and the stats are the read models of
:mod:`nightcrew.views`, shared with the command line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nightcrew.agents.base import HarnessTool, ToolReply
from nightcrew.core.errors import NightcrewError
from nightcrew.mcp.schema import (
    FEATURE_FIELDS,
    FEATURE_ID,
    NEW_FEATURE,
    OWN_FEATURE_ID,
    ids_schema,
    object_schema,
    problem,
)
from nightcrew.views.backlog import BacklogView, feature_json
from nightcrew.views.backlog_money import backlog_stats
from nightcrew.work.backlog import DEFAULT_CATEGORY, Feature, FeatureSpec

if TYPE_CHECKING:
    from nightcrew.store.backlog import Backlog

Args = Mapping[str, Any]
Result = dict[str, Any]

log = logging.getLogger(__name__)

READY_LIMIT = 50


@dataclass(frozen=True)
class ToolContext:
    """The backlog a call acts on, and who is calling.

    ``source`` labels what the caller writes (``agent:<run id>``,
    ``mcp:<pid>``); ``feature_id`` is the feature the agent is working on, the
    default for ``claim_passing`` and ``request_human_input``; ``attempt_id``
    is recorded with each claim so the build can judge the claims of its own
    attempt."""

    backlog: Backlog
    source: str
    feature_id: int | None = None
    attempt_id: int | None = None


class ToolError(Exception):
    """A refused call; the message is the one line the caller reads."""


@dataclass(frozen=True)
class BacklogTool:
    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: Callable[[ToolContext, Args], Result]
    read_only: bool = False


# ---- helpers -----------------------------------------------------------------------


def _view(features: list[Feature]) -> BacklogView:
    return BacklogView(features)


def _feature_json(feature: Feature, view: BacklogView) -> Result:
    return feature_json(feature, view)


def _brief(feature: Feature) -> Result:
    return {
        "id": feature.id,
        "name": feature.name,
        "category": feature.category,
        "priority": feature.priority,
        "depends_on": list(feature.depends_on),
    }


def _own_id(context: ToolContext, args: Args) -> int:
    fid = args.get("id", context.feature_id)
    if fid is None:
        raise ToolError("missing argument 'id': which feature?")
    return int(fid)


def _spec(item: Args) -> FeatureSpec:
    return FeatureSpec(
        name=item["name"],
        category=item.get("category", DEFAULT_CATEGORY),
        description=item.get("description", ""),
        steps=tuple(item.get("steps", ())),
        acceptance=tuple(item.get("acceptance", ())),
        manual=item.get("manual", False),
        priority=item.get("priority"),
        files=tuple(item.get("files", ())),
        depends_on=tuple(item.get("depends_on", ())),
        depends_on_indices=tuple(item.get("depends_on_indices", ())),
    )


def _labels(ids: Iterable[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


# ---- reading ----------------------------------------------------------------------


def _get_stats(context: ToolContext, args: Args) -> Result:
    stats = backlog_stats(context.backlog)
    ready = context.backlog.ready()
    return {
        "passed": stats["passed"],
        "total": stats["total"],
        "states": stats["states"],
        "remaining": stats["remaining"],
        "ready_count": len(ready),
        "ready_next": [_brief(f) for f in ready[:5]],
        "cost_usd": stats["cost_usd"],
        "message": f"{stats['passed']} of {stats['total']} features passed;"
        f" {len(ready)} ready to build",
    }


def _get_ready(context: ToolContext, args: Args) -> Result:
    ready = context.backlog.ready()
    limit = args.get("limit", 10)
    return {"count": len(ready), "ready": [_brief(f) for f in ready[:limit]]}


def _get_feature(context: ToolContext, args: Args) -> Result:
    backlog = context.backlog
    feature = backlog.feature(args["id"])
    features = backlog.features()
    view = _view(features)
    by_id = {f.id: f for f in features}
    data = _feature_json(feature, view)
    data["dependencies"] = [
        {"id": d, "name": by_id[d].name, "state": view.states[d]}
        for d in feature.depends_on
        if d in by_id
    ]
    data["needed_by"] = [f.id for f in features if feature.id in f.depends_on]
    return data


def _get_graph(context: ToolContext, args: Args) -> Result:
    from nightcrew.work.backlog_graph import topological_order  # noqa: PLC0415 - light, local

    features = context.backlog.features()
    view = _view(features)
    return {
        "nodes": [
            {
                "id": f.id,
                "name": f.name,
                "category": f.category,
                "state": view.states[f.id],
                "priority": f.priority,
            }
            for f in features
        ],
        "edges": [{"feature": f.id, "depends_on": d} for f in features for d in f.depends_on],
        "order": [placed.feature.id for placed in topological_order(features)],
    }


# ---- changing ----------------------------------------------------------------------


def _create_features(context: ToolContext, args: Args) -> Result:
    items = args["features"]
    created = context.backlog.create([_spec(item) for item in items], source=context.source)
    made: list[Result] = [
        {"index": index, "id": fid, "name": str(items[index]["name"]).strip()}
        for index, fid in enumerate(created.ids)
        if fid is not None
    ]
    rejected = [{"index": r.index, "name": r.name, "reason": r.reason} for r in created.rejected]
    message = f"created {len(made)} of {len(items)} feature(s)"
    if made:
        message += f": {_labels(created.created)}"
    if rejected:
        message += f"; {len(rejected)} rejected (see 'rejected': fix them and call again)"
    return {"ids": list(created.ids), "created": made, "rejected": rejected, "message": message}


def _create_feature(context: ToolContext, args: Args) -> Result:
    created = context.backlog.create([_spec(args)], source=context.source)
    if created.rejected:
        raise ToolError(f"feature not created: {created.rejected[0].reason}")
    fid = created.created[0]
    return {"id": fid, "name": args["name"].strip(), "message": f"created #{fid}"}


def _set_dependencies(context: ToolContext, args: Args) -> Result:
    feature = context.backlog.set_dependencies(args["id"], args["depends_on"])
    after = _labels(feature.depends_on) or "nothing"
    return {
        "id": feature.id,
        "depends_on": list(feature.depends_on),
        "message": f"#{feature.id} now depends on {after}",
    }


def _skip_feature(context: ToolContext, args: Args) -> Result:
    reason = args["reason"].strip()
    if not reason:
        raise ToolError("give a reason for skipping")
    changed = context.backlog.skip([args["id"]], reason=f"{reason} ({context.source})")
    fid = args["id"]
    return {
        "id": fid,
        "state": "skipped",
        "message": f"#{fid} skipped; it moved to the end of the backlog"
        if changed
        else f"#{fid} was already skipped",
    }


def _claim_passing(context: ToolContext, args: Args) -> Result:
    backlog = context.backlog
    fid = _own_id(context, args)
    feature = backlog.feature(fid)
    claim = backlog.claim_passing(
        fid, source=context.source, note=args.get("note"), attempt_id=context.attempt_id
    )
    if feature.acceptance:
        check = (
            "the harness will verify it by running its acceptance commands ("
            + "; ".join(feature.acceptance)
            + ") and the project's gates, and only then mark it passed"
        )
    else:
        check = "it is a manual feature: a person checks it and marks it passed"
    return {
        "claim_id": claim,
        "id": fid,
        "state": _view(backlog.features()).states[fid],
        "verified_by": list(feature.acceptance),
        "message": f"Recorded your claim that #{fid} passes. This does not mark it passed:"
        f" {check}.",
    }


def _request_input(context: ToolContext, args: Args) -> Result:
    fid = _own_id(context, args)
    feature = context.backlog.request_input(fid, args["question"])
    return {
        "id": fid,
        "state": str(feature.state),
        "message": f"#{fid} now waits for a person, who answers with `nightcrew backlog"
        f" answer {fid}`; it then goes back in the queue with the answer. Stop working"
        " on it now.",
    }


# ---- the tools ---------------------------------------------------------------------

TOOLS: tuple[BacklogTool, ...] = (
    BacklogTool(
        "get_stats",
        "How far the backlog is: features passed of total, how many are in each state"
        " (pending, in_progress, passed, failed, skipped, needs_input, blocked), and the"
        " next features ready to build.",
        object_schema({}),
        _get_stats,
        read_only=True,
    ),
    BacklogTool(
        "get_ready_features",
        "The features that can be built now (pending, not manual, every dependency"
        " passed), best first: the one that unblocks the most other work comes first.",
        object_schema(
            {
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": READY_LIMIT,
                    "description": f"How many to list (1-{READY_LIMIT}, default 10).",
                }
            }
        ),
        _get_ready,
        read_only=True,
    ),
    BacklogTool(
        "get_feature",
        "One feature in full: description, steps, acceptance commands, state, its"
        " dependencies with their states, what blocks it, and which features need it.",
        object_schema({"id": FEATURE_ID}, required=["id"]),
        _get_feature,
        read_only=True,
    ),
    BacklogTool(
        "get_dependency_graph",
        "The whole backlog as a graph: nodes (id, name, category, state), edges"
        " (feature depends_on another) and an order that builds each feature after"
        " its dependencies.",
        object_schema({}),
        _get_graph,
        read_only=True,
    ),
    BacklogTool(
        "create_features",
        "Add many features in one call, with their dependencies. Each feature needs a name"
        " and, unless manual, acceptance commands. A feature may depend on features"
        " already in the backlog (depends_on: ids) and on earlier features of the same"
        " call (depends_on_indices: 0-based positions in this list), so a whole"
        " dependency graph goes in at once. Features that are invalid, depend on a"
        " rejected or unknown feature, or would close a cycle are rejected with the"
        " reason; the others are created. Returns the new ids in order (null where"
        " rejected) and every rejection.",
        object_schema(
            {
                "features": {
                    "type": "array",
                    "minItems": 1,
                    "items": NEW_FEATURE,
                    "description": "The features to add, in order.",
                }
            },
            required=["features"],
        ),
        _create_features,
    ),
    BacklogTool(
        "create_feature",
        "Add one feature. It needs a name and, unless manual, acceptance commands (shell"
        " commands that exit 0 when it works). Returns its id, or an error saying why it"
        " was refused.",
        object_schema(FEATURE_FIELDS, required=["name"]),
        _create_feature,
    ),
    BacklogTool(
        "set_dependencies",
        "Replace what a feature depends on (an empty list removes every dependency)."
        " Unknown ids, the feature itself, more than 20 and cycles are refused.",
        object_schema(
            {"id": FEATURE_ID, "depends_on": ids_schema("Every feature it must wait for, by id.")},
            required=["id", "depends_on"],
        ),
        _set_dependencies,
    ),
    BacklogTool(
        "skip_feature",
        "Skip a feature (not one that passed): it moves to the end of the backlog, the"
        " build no longer picks it, and features that depend on it show as blocked.",
        object_schema(
            {"id": FEATURE_ID, "reason": {"type": "string", "description": "Why, for the person."}},
            required=["id", "reason"],
        ),
        _skip_feature,
    ),
    BacklogTool(
        "claim_passing",
        "Say that a feature now works. This records a claim; it does NOT mark the feature"
        " passed. The harness verifies the claim by running the feature's acceptance"
        " commands and the project's gates.",
        object_schema(
            {
                "id": OWN_FEATURE_ID,
                "note": {"type": "string", "description": "What you did and how you checked it."},
            }
        ),
        _claim_passing,
    ),
    BacklogTool(
        "request_human_input",
        "Ask a person a question you cannot answer yourself (a credential, a product"
        " decision). Only for a feature in progress: it waits in needs_input until a"
        " person answers with `nightcrew backlog answer ID`. Stop working on it after"
        " asking.",
        object_schema(
            {
                "id": OWN_FEATURE_ID,
                "question": {"type": "string", "description": "What you need to know, and why."},
            },
            required=["question"],
        ),
        _request_input,
    ),
)

TOOL_NAMES: tuple[str, ...] = tuple(t.name for t in TOOLS)
_BY_NAME = {t.name: t for t in TOOLS}


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "the call failed"


# Names agents guess for an argument, by the name the tools take.
_ALIASES = {"id": ("feature_id",)}


def _unaliased(arguments: Args, schema: Mapping[str, Any]) -> Args | str:
    """``arguments`` with a guessed name (``feature_id``) renamed to the one the
    tool takes (``id``), or why not: both given, with different values."""
    properties = schema.get("properties", {})
    renamed = dict(arguments)
    for name, guesses in _ALIASES.items():
        for guess in guesses:
            if name not in properties or guess in properties or guess not in renamed:
                continue
            value = renamed.pop(guess)
            if name in renamed and renamed[name] != value:
                return f"{guess!r} and {name!r} name different features; give only {name!r}"
            renamed[name] = value
    return renamed


def call_tool(context: ToolContext, name: str, args: Args | None) -> ToolReply:
    """Run the tool ``name``; never raises. A refused call (unknown tool, bad
    arguments, an id not in the backlog, a cycle, …) is a one-line error reply."""
    tool = _BY_NAME.get(name)
    if tool is None:
        return ToolReply(f"unknown tool {name!r} (tools: {', '.join(TOOL_NAMES)})", True)
    arguments = _unaliased({} if args is None else args, tool.input_schema)
    if isinstance(arguments, str):
        return ToolReply(f"{name}: {arguments}", True)
    found = problem(arguments, tool.input_schema)
    if found is not None:
        return ToolReply(f"{name}: {found}", True)
    try:
        data = tool.handler(context, arguments)
    except (ToolError, NightcrewError, ValueError) as exc:
        return ToolReply(f"{name}: {_one_line(str(exc))}", True)
    except Exception as exc:  # a tool call must not take its server down
        log.exception("backlog tool %s failed", name)
        return ToolReply(
            f"{name}: internal error: {type(exc).__name__}: {_one_line(str(exc))}", True
        )
    return ToolReply(json.dumps(data, ensure_ascii=False), data=data)


def bind(context: ToolContext, names: Iterable[str] | None = None) -> tuple[HarnessTool, ...]:
    """The tools (all, or those named) bound to ``context``, for an
    :class:`~nightcrew.agents.base.AgentRequest`'s ``harness_tools``."""
    chosen = TOOL_NAMES if names is None else tuple(names)
    unknown = [n for n in chosen if n not in _BY_NAME]
    if unknown:
        raise ValueError(f"no backlog tool {unknown[0]!r}")

    def bound(tool: BacklogTool) -> HarnessTool:
        async def call(args: Args) -> ToolReply:
            return call_tool(context, tool.name, args)

        return HarnessTool(tool.name, tool.description, tool.input_schema, call, tool.read_only)

    return tuple(bound(_BY_NAME[n]) for n in chosen)
