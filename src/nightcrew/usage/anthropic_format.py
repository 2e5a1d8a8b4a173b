"""Token counts out of the two usage shapes Claude Code emits.

- a Messages-API ``usage`` object (snake_case; per response): ``input_tokens``
  counts uncached prompt tokens; ``cache_creation`` splits writes into 5-minute
  and 1-hour; without that split every write is a 5-minute write.
- a ``modelUsage`` entry of the final ``result`` (camelCase; per model, every
  call of the process, subagents included).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from nightcrew.core.usage import TokenCounts


def _int(data: Mapping[str, object], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(int(value), 0)


def tokens_from_usage(usage: Mapping[str, object]) -> TokenCounts:
    cache_write = _int(usage, "cache_creation_input_tokens")
    split = usage.get("cache_creation")
    write_1h = _int(split, "ephemeral_1h_input_tokens") if isinstance(split, Mapping) else 0
    write_1h = min(write_1h, cache_write) if cache_write else write_1h
    return TokenCounts(
        input=_int(usage, "input_tokens"),
        output=_int(usage, "output_tokens"),
        cache_read=_int(usage, "cache_read_input_tokens"),
        cache_write_5m=max(cache_write - write_1h, 0),
        cache_write_1h=write_1h,
    )


def tokens_from_model_usage(entry: Mapping[str, object]) -> TokenCounts:
    cache_write = _int(entry, "cacheCreationInputTokens")
    write_1h = min(_int(entry, "cacheCreationEphemeral1hInputTokens"), cache_write)
    return TokenCounts(
        input=_int(entry, "inputTokens"),
        output=_int(entry, "outputTokens"),
        cache_read=_int(entry, "cacheReadInputTokens"),
        cache_write_5m=cache_write - write_1h,
        cache_write_1h=write_1h,
    )


def reported_cost(value: object) -> Decimal | None:
    """A USD float as Claude Code reports it, as an exact Decimal of its
    printed form (never binary float noise); None when absent or invalid."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None
