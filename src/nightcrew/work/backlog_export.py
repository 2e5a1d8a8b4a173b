"""The backlog's exports: our JSON format (which ``backlog import`` reads back)
and a markdown document to read or paste."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from nightcrew.work.backlog import Feature

EXPORT_FORMAT = "nightcrew-backlog"
EXPORT_VERSION = 1
_BACKTICKS = re.compile(r"`+")


def _ordered(features: Sequence[Feature]) -> list[Feature]:
    return sorted(features, key=lambda f: (f.position, f.id))


def _feature_json(f: Feature) -> dict[str, object]:
    return {
        "id": f.id,
        "key": f.source_key or f"#{f.id}",
        "category": f.category,
        "name": f.name,
        "description": f.description,
        "steps": list(f.steps),
        "acceptance": list(f.acceptance),
        "manual": f.manual,
        "priority": f.priority,
        "files": list(f.files),
        "depends_on": list(f.depends_on),
        "state": str(f.state),
        "model": f.model,
        "input_request": f.input_request if f.state == "needs_input" else None,
    }


def export_json(features: Sequence[Feature]) -> str:
    """The backlog as our export format, in backlog order; ``parse_backlog``
    reads it back with its keys, ids (when free) and states (in progress comes
    back as pending)."""
    document = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "features": [_feature_json(f) for f in _ordered(features)],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _code(text: str) -> str:
    """A code span that holds *text* even when it contains backticks."""
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _feature_markdown(feature: Feature) -> str:
    meta = [feature.category, str(feature.state), f"priority {feature.priority}"]
    if feature.depends_on:
        meta.append("depends on " + ", ".join(f"#{d}" for d in feature.depends_on))
    blocks = [f"## {feature.label} {feature.name}", " · ".join(meta)]
    if feature.description.strip():
        blocks.append(feature.description.strip())
    if feature.steps:
        steps = []
        for number, step in enumerate(feature.steps, start=1):
            marker = f"{number}. "
            steps.append(marker + ("\n" + " " * len(marker)).join(step.strip().splitlines()))
        blocks.append("Steps:\n\n" + "\n".join(steps))
    if feature.acceptance:
        commands = "\n".join(f"- {_code(command)}" for command in feature.acceptance)
        blocks.append("Acceptance:\n\n" + commands)
    else:
        blocks.append(
            "Acceptance: " + ("manual: checked by a person" if feature.manual else "none")
        )
    if feature.files:
        blocks.append("Files: " + ", ".join(_code(path) for path in feature.files))
    return "\n\n".join(blocks)


def export_markdown(features: Sequence[Feature]) -> str:
    """The backlog as a document to read or paste, in backlog order."""
    blocks = ["# Backlog"] + [_feature_markdown(f) for f in _ordered(features)]
    if not features:
        blocks.append("No features.")
    return "\n\n".join(blocks) + "\n"
