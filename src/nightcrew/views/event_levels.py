"""The level of each stored event kind, in one table: what ``nightcrew logs
--level`` filters on and what the log and the dashboard colour by.

error: the work or the harness broke (an item failed, a crash, an agent that
cannot run, a tool call the policy refused, a run that ended failed); warn:
something a person may want to act on (budgets, refusals, rejected or
conflicting merges, gates and attempts that failed, questions); info: the
run's story as the console tells it; debug: the agent's own chatter (its
words, thinking, session), the route and the baseline's test ids. A few kinds
take their level from one field (a gate that failed warns). The table is read
in Python for each entry and turned into SQL for a filter; a test holds the
two to agree, and every stored kind to a row.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from nightcrew.core.events import EVENT_TYPES

LogLevel = Literal["debug", "info", "warn", "error"]
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)


@dataclass(frozen=True)
class LevelRule:
    """A kind's level, and the values of one of its fields that change it."""

    level: LogLevel
    field_name: str = ""
    when: Mapping[Any, LogLevel] = dataclasses.field(default_factory=dict)


_DEBUG, _INFO, _WARN, _ERROR = LOG_LEVELS

LEVELS: dict[str, LevelRule] = {
    # the run
    "run_started": LevelRule(_INFO),
    "run_finished": LevelRule(
        _INFO,
        "state",
        {"failed": _ERROR, "crashed": _ERROR, "interrupted": _WARN, "budget_exceeded": _WARN},
    ),
    "nothing_to_do": LevelRule(_INFO),
    "agent_unusable": LevelRule(_ERROR),
    "subscriber_failed": LevelRule(_WARN),
    "orphan_killed": LevelRule(_WARN),
    "crash_recovered": LevelRule(_ERROR),
    "unfinished_writes_removed": LevelRule(_WARN),
    "temp_files_unchecked": LevelRule(_WARN),
    "run_abandoned": LevelRule(_WARN),
    "left_alone": LevelRule(_WARN),
    "registry_failed": LevelRule(_WARN),
    "price_unknown": LevelRule(_WARN),
    "tests_detected": LevelRule(_INFO),
    "baseline_kept": LevelRule(_INFO),
    "baseline_started": LevelRule(_INFO),
    "baseline": LevelRule(_DEBUG),
    "baseline_failing": LevelRule(_WARN),
    # the plan and the backlog
    "plan_changed": LevelRule(_WARN),
    "plan_warning": LevelRule(_WARN),
    "batch_new": LevelRule(_INFO),
    "batch_changed": LevelRule(_WARN),
    "batch_gone": LevelRule(_WARN),
    "batch_already_passed": LevelRule(_INFO),
    "batch_empty": LevelRule(_WARN),
    "feature_released": LevelRule(_INFO),
    "claim_checking": LevelRule(_INFO),
    "claim_checked": LevelRule(_INFO, "passed", {False: _WARN}),
    "claim_refuted": LevelRule(_WARN),
    "feature_rejected": LevelRule(_WARN),
    # lanes and the merge queue
    "worktree_setup": LevelRule(_INFO, "passed", {False: _WARN}),
    "worktree_ready": LevelRule(_INFO),
    "item_waits": LevelRule(_INFO),
    "merge_queued": LevelRule(_INFO),
    "merge_checking": LevelRule(_INFO),
    "merge_landed": LevelRule(_INFO),
    "merge_rejected": LevelRule(_WARN),
    "merge_conflict": LevelRule(_WARN, "resolved_by", {"agent": _INFO}),
    "branch_kept": LevelRule(_INFO),
    # attempts
    "attempt_started": LevelRule(_INFO),
    "attempt_finished": LevelRule(
        _WARN, "state", {"passed": _INFO, "running": _INFO, "crashed": _ERROR}
    ),
    "session": LevelRule(_DEBUG),
    "tool_call": LevelRule(_INFO),
    "tool_denied": LevelRule(_ERROR),
    "tool_error": LevelRule(_INFO),  # a failed command is the agent's everyday business
    "text": LevelRule(_DEBUG),
    "thinking": LevelRule(_DEBUG),
    "gate_result": LevelRule(_INFO, "passed", {False: _WARN}),
    "passed_without_changes": LevelRule(_WARN),
    "usage_limit_wait": LevelRule(_WARN),
    "usage_limit_reset": LevelRule(_INFO),
    "commit": LevelRule(_INFO),
    "usage_seen": LevelRule(_DEBUG),  # one a response: the money, not the story
    # decisions and outcomes
    "decision": LevelRule(_WARN, "action", {"retry": _INFO, "escalate": _INFO}),
    "routing": LevelRule(_DEBUG),
    "budget_warning": LevelRule(_WARN),
    "budget_stop": LevelRule(_WARN),
    "question": LevelRule(_WARN),
    "item_passed": LevelRule(_INFO),
    "item_failed": LevelRule(_ERROR),
    "item_skipped": LevelRule(_WARN, "failed", {True: _ERROR}),
    # notifications and a person steering the run
    "notify_failed": LevelRule(_WARN),
    "run_paused": LevelRule(_INFO),
    "run_resumed": LevelRule(_INFO),
    "stop_requested": LevelRule(_WARN),
    "control_expired": LevelRule(_WARN),
}


def stored_kinds() -> list[str]:
    """Every kind the events table keeps, sorted."""
    return sorted(kind for kind, cls in EVENT_TYPES.items() if cls.persist)


def level_of(kind: str, payload: Mapping[str, Any]) -> LogLevel:
    """The level of a stored event (a kind without a row informs)."""
    rule = LEVELS.get(kind)
    if rule is None:
        return _INFO
    if rule.field_name and rule.field_name in payload:
        return rule.when.get(payload[rule.field_name], rule.level)
    return rule.level


def _rank(level: LogLevel) -> int:
    return LOG_LEVELS.index(level)


def level_sql(least: LogLevel) -> tuple[str, list[Any]]:
    """The SQL condition for events at ``least`` or above, from :data:`LEVELS`."""
    wanted = {lv for lv in LOG_LEVELS if _rank(lv) >= _rank(least)}
    plain = [k for k, r in LEVELS.items() if not r.field_name and r.level in wanted]
    parts = ["e.kind IN (SELECT value FROM json_each(?))"]
    args: list[Any] = [json.dumps(plain)]
    for kind, rule in LEVELS.items():
        if not rule.field_name:
            continue
        path = f"$.{rule.field_name}"
        if rule.level in wanted:  # all but the values that lower it
            out = [v for v, lv in rule.when.items() if lv not in wanted]
            parts.append(
                "(e.kind = ? AND (json_extract(e.payload_json, ?) IS NULL"
                " OR json_extract(e.payload_json, ?) NOT IN (SELECT value FROM json_each(?))))"
            )
            args += [kind, path, path, json.dumps(out)]
        else:  # only the values that raise it
            hits = [v for v, lv in rule.when.items() if lv in wanted]
            if hits:
                parts.append(
                    "(e.kind = ? AND json_extract(e.payload_json, ?)"
                    " IN (SELECT value FROM json_each(?)))"
                )
                args += [kind, path, json.dumps(hits)]
    if _INFO in wanted:  # kinds with no row here inform
        parts.append("e.kind NOT IN (SELECT value FROM json_each(?))")
        args.append(json.dumps(sorted(LEVELS)))
    return "(" + " OR ".join(parts) + ")", args
