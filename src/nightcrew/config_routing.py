"""The ``[[routing]]`` list of the config: which model chain each kind of work
climbs (see :mod:`nightcrew.engine.routing`, which applies the rules).

Each rule is checked here with our own wording, the error naming the file and
the line of the bad rule or key, before the settings model sees the table.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from nightcrew.core.errors import LocatedError

KINDS = ("init", "batch", "feature", "conflict", "summary")
_TEXTS = ("kind", "category", "labels")  # one value or a list
_SIZES = (("min_chars", "max_chars"), ("min_files", "max_files"))
KEYS = ("name", *_TEXTS, "critical", *(k for pair in _SIZES for k in pair), "models")
EXAMPLE = 'e.g. models = ["haiku", "sonnet"]'


class RoutingRule(BaseModel):
    """One rule: every condition given must hold; ``models`` is the chain the
    matching item climbs, weakest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    models: tuple[str, ...]
    kind: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    critical: bool | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    min_files: int | None = None
    max_files: int | None = None


def _line(text: str, pattern: str, start: int = 0, end: int | None = None) -> int | None:
    match = re.compile(pattern, re.MULTILINE).search(text, start, len(text) if end is None else end)
    return text.count("\n", 0, match.start()) + 1 if match else None


class _Where:
    """Finds the line of rule ``i`` (1-based) and of a key inside it."""

    def __init__(self, text: str, tool: bool) -> None:
        self.text = text
        header = r"\[\[tool\.nightcrew\.routing\]\]" if tool else r"\[\[routing\]\]"
        self.headers = [m.start() for m in re.finditer(rf"^[ \t]*{header}", text, re.MULTILINE)]
        self.inline = _line(text, r"^[ \t]*routing[ \t]*=")

    def rule(self, i: int) -> int | None:
        if self.inline is not None or i > len(self.headers):
            return self.inline
        return self.text.count("\n", 0, self.headers[i - 1]) + 1

    def key(self, i: int, key: str) -> int | None:
        if self.inline is not None or i > len(self.headers):
            return self.inline
        start = self.headers[i - 1]
        following = re.compile(r"^[ \t]*\[", re.MULTILINE).search(self.text, start + 1)
        end = following.start() if following else None
        found = _line(self.text, rf"^[ \t]*{re.escape(key)}[ \t]*=", start, end)
        return found or self.rule(i)


def _texts(value: object) -> tuple[str, ...] | None:
    """One string or a list of strings, none blank; None when it is not."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, str) and v.strip() for v in values):
        return None
    return tuple(v.strip() for v in values)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _rule(i: int, raw: dict[str, Any], where: _Where, path: str) -> dict[str, Any]:
    name = raw.get("name")
    label = f"routing rule {i}" + (f" '{name}'" if isinstance(name, str) and name.strip() else "")

    def fail(key: str | None, what: str) -> LocatedError:
        line = where.key(i, key) if key else where.rule(i)
        return LocatedError(path, line, f"{label}: {what}")

    for key in raw:
        if key not in KEYS:
            raise fail(key, f"unknown key '{key}' (known: {', '.join(KEYS)})")
    rule: dict[str, Any] = {"name": f"rule {i}"}
    if "name" in raw:
        if not isinstance(name, str) or not name.strip():
            raise fail("name", "name must be text in quotes, not empty")
        rule["name"] = name.strip()
    if "models" not in raw:
        raise fail(None, f"models is missing: give the model chain it climbs, {EXAMPLE}")
    models = _texts(raw["models"])
    if models is None or isinstance(raw["models"], str):
        raise fail("models", f"models must be a list of model names, none empty, {EXAMPLE}")
    twice = next((m for n, m in enumerate(models) if m in models[:n]), None)
    if twice is not None:
        raise fail(
            "models", f"models: '{twice}' is named twice (each step climbs to another model)"
        )
    rule["models"] = models
    for key in _TEXTS:
        if key in raw:
            values = _texts(raw[key])
            if values is None:
                raise fail(key, f"{key} must be text in quotes or a list of them, none empty")
            if key == "kind":
                unknown = [v for v in values if v not in KINDS]
                if unknown:
                    raise fail(key, f"kind must be one of {', '.join(KINDS)}, got '{unknown[0]}'")
            rule[key] = values
    if "critical" in raw:
        if not isinstance(raw["critical"], bool):
            raise fail("critical", "critical must be true or false")
        rule["critical"] = raw["critical"]
    for low, high in _SIZES:
        for key in (low, high):
            if key in raw:
                if not _count(raw[key]):
                    raise fail(key, f"{key} must be a whole number, 0 or more")
                rule[key] = raw[key]
        if low in rule and high in rule and rule[low] > rule[high]:
            raise fail(
                low, f"{low} {rule[low]} is more than {high} {rule[high]}: nothing can match"
            )
    return rule


def check_routing_table(
    table: dict[str, Any], path: str, text: str, tool: bool
) -> list[dict[str, Any]] | None:
    """The rules of ``routing`` in ``table``, checked and put in the settings'
    shape (each with a name, lists for one value); None without rules. Raise
    :class:`LocatedError` for the first bad rule (``tool``: the table lives in
    pyproject's ``[tool.nightcrew]``)."""
    if "routing" not in table:
        return None
    value = table["routing"]
    where = _Where(text, tool)
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        header = "[[tool.nightcrew.routing]]" if tool else "[[routing]]"
        table_header = r"\[tool\.nightcrew\.routing\]" if tool else r"\[routing\]"
        line = where.inline or where.rule(1) or _line(text, rf"^[ \t]*{table_header}")
        raise LocatedError(path, line, f"routing must be a list of {header} tables")
    rules = [_rule(i, raw, where, path) for i, raw in enumerate(value, 1)]
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules, 1):
        name = str(rule["name"])
        if name in seen:
            raise LocatedError(
                path,
                where.key(i, "name"),
                f"routing rule {i}: the name '{name}' is taken by rule {seen[name]}",
            )
        seen[name] = i
    return rules
