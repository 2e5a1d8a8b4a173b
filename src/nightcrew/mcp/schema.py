"""Checking a tool call's arguments against the tool's JSON Schema, so every
transport refuses the same calls with the same words.

Only the part of JSON Schema the backlog tools use: ``type`` (object, array,
string, integer, boolean), ``properties``, ``required``,
``additionalProperties: false``, ``items``, ``minItems``, ``minimum`` and
``maximum``. Each refusal is one line naming the argument, such as
``'features[2].steps' must be a list of strings, not a string``. The
schemas of the backlog tools' arguments that are shared live here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nightcrew.work.backlog import DEFAULT_CATEGORY

_EXPECTED = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _fits(value: object, expected: str) -> bool:
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    raise ValueError(f"schema type {expected!r} is not supported here")


def _expected(schema: Mapping[str, Any]) -> str:
    text = _EXPECTED[schema["type"]]
    items = schema.get("items")
    if schema["type"] == "array" and isinstance(items, Mapping) and "type" in items:
        plural = {"string": "strings", "integer": "integers", "object": "objects"}
        text += " of " + plural.get(items["type"], _EXPECTED[items["type"]])
    return text


def problem(value: object, schema: Mapping[str, Any], where: str = "") -> str | None:
    """Why ``value`` does not fit ``schema``, or None. ``where`` is the path of
    ``value`` in the arguments (empty for the arguments themselves)."""
    expected = schema.get("type")
    if expected is not None and not _fits(value, expected):
        return f"{where or 'the arguments'!r} must be {_expected(schema)}, not {_kind(value)}"
    if isinstance(value, dict):
        return _object_problem(value, schema, where)
    if isinstance(value, list):
        least = schema.get("minItems")
        if least is not None and len(value) < least:
            return f"{where!r} must have at least {least} item{'s' if least != 1 else ''}"
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                found = problem(item, items, f"{where}[{index}]")
                if found is not None:
                    return found
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{where!r} must be at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{where!r} must be at most {schema['maximum']}"
    return None


def _object_problem(value: dict[str, Any], schema: Mapping[str, Any], where: str) -> str | None:
    properties: Mapping[str, Any] = schema.get("properties", {})
    missing = [name for name in schema.get("required", ()) if name not in value]
    if missing:
        if where:
            return f"{where!r} is missing {missing[0]!r}"
        return f"missing argument {missing[0]!r}"
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(value) - set(properties))
        if unknown:
            known = ", ".join(properties) or "nothing"
            if where:
                return f"{where!r} has an unknown field {unknown[0]!r} (fields: {known})"
            return f"unknown argument {unknown[0]!r} (this tool takes: {known})"
    for name, sub in properties.items():
        if name in value:
            found = problem(value[name], sub, f"{where}.{name}" if where else name)
            if found is not None:
                return found
    return None


# ---- the backlog tools' arguments ---------------------------------------------


def object_schema(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }


def strings_schema(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def ids_schema(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "integer"}, "description": description}


FEATURE_ID = {"type": "integer", "description": "A feature id, such as 7."}
OWN_FEATURE_ID = {
    "type": "integer",
    "description": "A feature id; defaults to the feature you were given to work on.",
}

FEATURE_FIELDS: dict[str, Any] = {
    "name": {
        "type": "string",
        "description": "One-line title of what a user can do, e.g. 'User logs in with email'.",
    },
    "category": {
        "type": "string",
        "description": f"A group such as functional or style (default {DEFAULT_CATEGORY}).",
    },
    "description": {
        "type": "string",
        "description": "What it does, for whoever builds it.",
    },
    "steps": strings_schema("How to check it by hand, one step per item."),
    "acceptance": strings_schema(
        "Shell commands run from the project root that each exit 0 when the feature works,"
        " e.g. 'pytest -q tests/test_login.py'. The harness runs them to decide that the"
        " feature passed. Required unless manual is true."
    ),
    "manual": {
        "type": "boolean",
        "description": "True if only a person can check it; the build never picks it.",
    },
    "priority": {
        "type": "integer",
        "description": "Lower goes sooner among features that are ready (default 0).",
    },
    "files": strings_schema("Files it will likely touch; used to warn about conflicting features."),
    "depends_on": ids_schema("Ids of features already in the backlog that must pass first."),
}
NEW_FEATURE = object_schema(
    {
        **FEATURE_FIELDS,
        "depends_on_indices": ids_schema(
            "0-based indices of EARLIER features in this same call that must pass first."
        ),
    },
    required=["name"],
)
