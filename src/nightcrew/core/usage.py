"""Token counts, per-model usage and the usage entry every report adds up.

Project usage (runs, work items, attempts) and imported Claude Code transcripts
both become :class:`Entry` values, so one set of report functions serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of one API response or one model's total, in Anthropic's meaning:
    ``input`` counts uncached prompt tokens only."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write_5m + other.cache_write_5m,
            self.cache_write_1h + other.cache_write_1h,
        )


@dataclass(frozen=True)
class ModelUsage:
    """Authoritative per-model totals from the agent's final report."""

    model: str
    tokens: TokenCounts
    reported_cost_usd: Decimal | None


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
