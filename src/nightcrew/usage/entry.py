"""One priced use of a model: the unit every usage report adds up.

Project usage (runs, work items, attempts) and imported Claude Code transcripts
both become :class:`Entry` values, so one set of report functions serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from nightcrew.agents.base import TokenCounts


@dataclass(frozen=True, slots=True)
class Entry:
    ts: datetime  # timezone-aware (UTC)
    model: str
    tokens: TokenCounts
    cost_usd: Decimal | None  # None = unknown, never 0
    cost_source: str | None  # "reported" | "priced" | None
    session: str | None = None  # the agent's session id
    project: str | None = None  # project root (or transcript cwd)
    run_id: str | None = None
    item: str | None = None  # e.g. "batch 2: Add the parser"
    attempt_id: int | None = None
