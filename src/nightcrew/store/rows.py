"""Typed rows of the store's tables, as the rest of nightcrew sees them."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.core.usage import TokenCounts


def _dec(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def dec_text(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


@dataclass(frozen=True)
class RunRow:
    id: str
    kind: str
    source_path: str
    source_sha256: str
    config: dict[str, Any]
    state: RunState
    started_at: str
    finished_at: str | None
    prefix_sha256: str | None
    orchestrator_pid: int | None
    message: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRow:
        return cls(
            id=row["id"],
            kind=row["kind"],
            source_path=row["source_path"],
            source_sha256=row["source_sha256"],
            config=json.loads(row["config_json"]),
            state=RunState(row["state"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            prefix_sha256=row["prefix_sha256"],
            orchestrator_pid=row["orchestrator_pid"],
            message=row["message"],
        )


@dataclass(frozen=True)
class ItemRow:
    id: int
    run_id: str
    key: str
    number: int | None
    title: str
    body: str
    body_sha256: str
    state: ItemState
    attempts: int
    commit_sha: str | None
    message: str | None
    feature_id: int | None = None  # a build's item: its backlog feature
    window_start: int = 1  # attempts numbered from here count for the policy

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ItemRow:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            key=row["key"],
            number=row["number"],
            title=row["title"],
            body=row["body"],
            body_sha256=row["body_sha256"],
            state=ItemState(row["state"]),
            attempts=row["attempts"],
            commit_sha=row["commit_sha"],
            message=row["message"],
            feature_id=row["feature_id"],
            window_start=row["window_start"],
        )


@dataclass(frozen=True)
class AttemptRow:
    id: int
    run_id: str
    item_id: int
    number: int
    backend: str
    model: str | None
    models: list[str]
    session_id: str | None
    prefix_sha256: str
    prompt_sha256: str
    base_sha: str | None
    commit_sha: str | None
    state: AttemptState
    exit_reason: str | None
    result_subtype: str | None
    is_error: bool | None
    tool_calls: int
    started_at: str
    finished_at: str | None
    agent_seconds: float | None
    gate_seconds: float | None
    cost_usd: Decimal | None
    cost_source: str | None
    agent_pid: int | None
    agent_create_time: float | None
    evidence_dir: str | None
    digest: str | None
    signature: str | None
    last_text: str | None
    tool_denials: int = 0
    files: tuple[str, ...] | None = None  # the files it changed; None: not known
    lane: int | None = None  # 1.. in a parallel build; None: in place, or not recorded

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> AttemptRow:
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            item_id=row["item_id"],
            number=row["number"],
            backend=row["backend"],
            model=row["model"],
            models=json.loads(row["models_json"] or "[]"),
            session_id=row["session_id"],
            prefix_sha256=row["prefix_sha256"],
            prompt_sha256=row["prompt_sha256"],
            base_sha=row["base_sha"],
            commit_sha=row["commit_sha"],
            state=AttemptState(row["state"]),
            exit_reason=row["exit_reason"],
            result_subtype=row["result_subtype"],
            is_error=None if row["is_error"] is None else bool(row["is_error"]),
            tool_calls=row["tool_calls"],
            tool_denials=row["tool_denials"],
            files=None if row["files_json"] is None else tuple(json.loads(row["files_json"])),
            lane=row["lane"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            agent_seconds=row["agent_seconds"],
            gate_seconds=row["gate_seconds"],
            cost_usd=_dec(row["cost_usd"]),
            cost_source=row["cost_source"],
            agent_pid=row["agent_pid"],
            agent_create_time=row["agent_create_time"],
            evidence_dir=row["evidence_dir"],
            digest=row["digest"],
            signature=row["signature"],
            last_text=row["last_text"],
        )


@dataclass(frozen=True)
class GateRow:
    name: str
    command: str | None
    passed: bool
    duration_s: float
    tests_passed: int | None
    tests_failed: int | None
    output_path: str | None
    digest: str
    regressions: tuple[str, ...] = ()  # test ids that passed before and fail now

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> GateRow:
        return cls(
            name=row["name"],
            command=row["command"],
            passed=bool(row["passed"]),
            duration_s=row["duration_s"],
            tests_passed=row["tests_passed"],
            tests_failed=row["tests_failed"],
            output_path=row["output_path"],
            digest=row["digest"],
            regressions=tuple(json.loads(row["regressions_json"] or "[]")),
        )


@dataclass(frozen=True)
class Totals:
    """Money and tokens over some attempts. ``cost_usd`` is None only when no
    cost at all is known; ``unknown_cost`` counts attempts whose cost is not."""

    cost_usd: Decimal | None
    unknown_cost: int
    tokens: TokenCounts
