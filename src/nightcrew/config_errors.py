"""What is wrong with a setting, in nightcrew's words: pydantic's error records
become short phrases ("must be at most 50, got 99"). Nothing here shows
pydantic's own wording."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import ErrorDetails


def _shown(value: Any) -> str:
    """A value as a person wrote it: numbers bare (inf, nan too), text quoted."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


_TYPES = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text in quotes",
    "tuple_type": 'a list, e.g. ["a", "b"]',
    "list_type": 'a list, e.g. ["a", "b"]',
    "dict_type": "a table",
}


def describe(error: ErrorDetails) -> str:
    """One error record as ``must be …, got …`` (without the setting's name)."""
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    got = _shown(error.get("input"))
    if kind in _TYPES:
        return f"must be {_TYPES[kind]}, got {got}"
    if kind == "finite_number":
        return f"must be a finite number, got {got}"
    if kind == "greater_than":
        return f"must be more than {_shown(ctx['gt'])}, got {got}"
    if kind == "greater_than_equal":
        return f"must be at least {_shown(ctx['ge'])}, got {got}"
    if kind == "less_than_equal":
        return f"must be at most {_shown(ctx['le'])}, got {got}"
    if kind == "less_than":
        return f"must be less than {_shown(ctx['lt'])}, got {got}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}, got {got}"
    if kind == "value_error":
        return str(ctx.get("error", "is not a value nightcrew can use"))
    return f"is not a value nightcrew can use: {got}"


def setting_name(loc: Sequence[int | str], *, option: bool = False) -> str:
    """``max_retries``, ``gates item 2``, ``pricing.m.input``; as an option
    ``--max-retries``."""
    if not loc:
        return "option" if option else "setting"
    head = str(loc[0])
    if option:
        head = "--" + head.replace("_", "-")
    parts = [head]
    for part in loc[1:]:
        parts.append(f" item {part + 1}" if isinstance(part, int) else f".{part}")
    return "".join(parts)
