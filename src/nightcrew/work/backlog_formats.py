"""The backlog's file formats: the feature lists other harnesses write, which
``backlog import`` reads, and ours, which ``backlog export`` writes.

Three JSON formats come in, told apart by their content (people rename files):

* an Anthropic quickstart ``feature_list.json``: an array of
  ``{category, description, steps, passes}``, ordered by priority, with no
  names, ids, dependencies or commands;
* an Autonomous Coding Toolkit ``tasks/prd.json``: an array of
  ``{id, title, description, acceptance_criteria, passes, blocked_by}``;
* our own export: ``{"format": "nightcrew-backlog", "version": 1, "features": [...]}``.

A person fixes a bad file by line, so every error names ``file:line`` of the
item or field at fault (``backlog_json`` reads JSON with lines). The exports
are written by ``backlog_export``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from nightcrew.engine.states import ItemState
from nightcrew.errors import BadInput, LocatedError
from nightcrew.work.backlog import (
    DEFAULT_CATEGORY,
    FEATURE_STATES,
    FeatureSpec,
    spec_problem,
)
from nightcrew.work.backlog_export import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    export_json,
    export_markdown,
)
from nightcrew.work.backlog_json import Item, Node, kind, parse_root, read_text, shorten

__all__ = ["BacklogFormat", "ParsedBacklog", "export_json", "export_markdown", "parse_backlog"]

BacklogFormat = Literal["quickstart", "prd", "nightcrew"]
MAX_DERIVED_NAME = 80  # a quickstart name is cut from its description

_LABELS: dict[BacklogFormat, str] = {
    "quickstart": "an Anthropic quickstart feature_list.json",
    "prd": "an Autonomous Coding Toolkit prd.json",
    "nightcrew": "a nightcrew export",
}
_EXPECTED = (
    "backlog import reads a quickstart feature_list.json or a PRD prd.json (JSON arrays)"
    f' or a nightcrew export (an object with "format": "{EXPORT_FORMAT}")'
)
_PRD_KEYS = frozenset({"title", "acceptance_criteria", "blocked_by"})
_QUICKSTART_KEYS = frozenset({"category", "description", "steps", "passes"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True)
class ParsedBacklog:
    """Features read from a file, ready for the store; warnings carry ``file:line: ``."""

    format: BacklogFormat
    specs: tuple[FeatureSpec, ...]
    warnings: tuple[str, ...]


def _derived_name(description: str) -> str:
    """A quickstart feature has no name: the first sentence of its description
    stands in, short enough to scan in a list (the full text stays the description)."""
    line = next((part.strip() for part in description.splitlines() if part.strip()), "")
    sentence = _SENTENCE_END.split(line, maxsplit=1)[0]
    return shorten(sentence.rstrip(".") or sentence, MAX_DERIVED_NAME)


@dataclass(frozen=True)
class _Keyed:
    """A spec from a format with ids, and where its id and dependencies are written."""

    item: Item
    spec: FeatureSpec
    key: int
    deps: list[Node]


def _quickstart(item: Item) -> FeatureSpec:
    description = item.text("description", required=True)
    item.title = _derived_name(description)
    if not item.title:
        item.fail("'description' is empty", item.get("description"))
    return FeatureSpec(
        name=item.title,
        category=item.text("category", DEFAULT_CATEGORY),
        description=description.strip(),
        steps=item.strings("steps"),
        priority=item.number,
        passes=item.flag("passes"),
    )


def _prd(item: Item) -> _Keyed:
    item.title = item.text("title", required=True)
    if not item.title.strip():
        item.fail("'title' is empty", item.get("title"))
    key = item.key()
    deps = item.elements("blocked_by", int, "task ids")
    spec = FeatureSpec(
        name=item.title.strip(),
        description=item.text("description").strip(),
        acceptance=item.strings("acceptance_criteria"),
        priority=item.number,
        depends_on_keys=tuple(dict.fromkeys(str(d.value) for d in deps)),
        passes=item.flag("passes"),
        source_key=str(key),
    )
    return _Keyed(item, spec, key, deps)


def _exported(item: Item) -> _Keyed:
    item.title = item.text("name", required=True)
    key = item.key()
    state = item.text("state", ItemState.PENDING)
    if state not in FEATURE_STATES:
        known = ", ".join(FEATURE_STATES)
        item.fail(f"'state' is {state!r}, not one of {known}", item.get("state"))
    deps = item.elements("depends_on", int, "feature ids")
    model_node = item.get("model")
    spec = FeatureSpec(
        name=item.title,
        category=item.text("category", DEFAULT_CATEGORY),
        description=item.text("description"),
        steps=item.strings("steps"),
        acceptance=item.strings("acceptance"),
        manual=item.flag("manual"),
        priority=item.integer("priority"),
        files=item.strings("files"),
        depends_on_keys=tuple(dict.fromkeys(str(d.value) for d in deps)),
        passes=state == ItemState.PASSED,
        source_key=str(key),
        model=None if model_node is None or model_node.value is None else item.text("model"),
    )
    return _Keyed(item, spec, key, deps)


def _check_references(entries: Sequence[_Keyed]) -> None:
    """Ids are unique and every dependency names another feature of the file:
    the file is imported whole, so a dangling id is a mistake in it."""
    lines: dict[int, int] = {}
    for entry in entries:
        id_node = entry.item.node.fields["id"]
        if entry.key in lines:
            first = lines[entry.key]
            entry.item.fail(f"id {entry.key} appears twice (first at line {first})", id_node)
        lines[entry.key] = id_node.line
    for entry in entries:
        for dep in entry.deps:
            where = "'blocked_by' names" if entry.item.format == "prd" else "'depends_on' names"
            if dep.value == entry.key:
                entry.item.fail(f"{where} the feature's own id {entry.key}", dep)
            if dep.value not in lines:
                entry.item.fail(f"{where} id {dep.value}, which is not in this file", dep)


def _detect(path: Path, root: Node) -> tuple[BacklogFormat, Node]:
    """The format of the file and the array of its features."""
    where = str(path)
    if isinstance(root.value, dict):
        if root.value.get("format") != EXPORT_FORMAT:
            message = f"a JSON object that is not a nightcrew export; {_EXPECTED}"
            raise LocatedError(where, root.line, message)
        version = root.fields.get("version")
        if version is None or version.value != EXPORT_VERSION:
            read = "no version" if version is None else f"version {json.dumps(version.value)}"
            message = f"nightcrew export with {read}; this nightcrew reads version {EXPORT_VERSION}"
            raise LocatedError(where, (version or root).line, message)
        features = root.fields.get("features")
        if features is None or not isinstance(features.value, list):
            found = "missing" if features is None else kind(features.value)
            message = f"nightcrew export: 'features' must be a list, not {found}"
            raise LocatedError(where, (features or root).line, message)
        return "nightcrew", features
    if not isinstance(root.value, list):
        message = f"the file holds {kind(root.value)}, not a backlog; {_EXPECTED}"
        raise LocatedError(where, root.line, message)
    if not root.items:
        return "quickstart", root
    first = root.items[0]
    if not isinstance(first.value, dict):
        message = f"feature 1 must be a JSON object, not {kind(first.value)}; {_EXPECTED}"
        raise LocatedError(where, first.line, message)
    if _PRD_KEYS & first.value.keys():
        return "prd", root
    if _QUICKSTART_KEYS & first.value.keys():
        return "quickstart", root
    raise LocatedError(
        where,
        first.line,
        "feature 1 is neither a quickstart feature (category, description, steps, passes)"
        " nor a PRD task (id, title, acceptance_criteria, blocked_by)",
    )


def _items(path: Path, fmt: BacklogFormat, features: Node) -> list[Item]:
    items = []
    for number, node in enumerate(features.items, start=1):
        item = Item(path, fmt, _LABELS[fmt], number, node)
        if not isinstance(node.value, dict):
            item.fail(f"must be a JSON object, not {kind(node.value)}")
        items.append(item)
    return items


def _complete(
    spec: FeatureSpec, fmt: BacklogFormat, default_acceptance: tuple[str, ...]
) -> FeatureSpec:
    """A spec with no command gets the caller's commands; from a foreign format it
    is otherwise manual (ours says whether it is, and a wrong file is refused)."""
    if spec.acceptance or spec.manual:
        return spec
    if default_acceptance:
        return replace(spec, acceptance=default_acceptance)
    return replace(spec, manual=True) if fmt != "nightcrew" else spec


def parse_backlog(
    path: Path, text: str | None = None, *, default_acceptance: tuple[str, ...] = ()
) -> ParsedBacklog:
    """Read the features of a backlog file in any format ``import`` knows.

    *text*, when given, is used instead of reading *path* (which then only names
    the file in messages). Raises LocatedError (a BadInput) for the first
    problem found: the file is imported whole or not at all.
    """
    if any(not command.strip() for command in default_acceptance):
        raise BadInput("an acceptance command given for the import is empty")
    text = (read_text(path) if text is None else text).removeprefix("\ufeff")
    fmt, features = _detect(path, parse_root(path, text, _EXPECTED))
    items = _items(path, fmt, features)
    if fmt == "quickstart":
        pairs = [(item, _quickstart(item)) for item in items]
    else:
        entries = [(_prd if fmt == "prd" else _exported)(item) for item in items]
        _check_references(entries)
        pairs = [(entry.item, entry.spec) for entry in entries]
    specs: list[FeatureSpec] = []
    made_manual: list[int] = []
    for item, read in pairs:
        spec = _complete(read, fmt, default_acceptance)
        if spec.manual and not read.manual:
            made_manual.append(item.node.line)
        problem = spec_problem(spec)
        if problem is not None:
            item.fail(problem)
        specs.append(spec)
    warnings: list[str] = []
    if not specs:
        warnings.append(f"{path}:{features.line}: no features")
    if made_manual:
        count = f"{len(made_manual)} feature{'s' if len(made_manual) != 1 else ''}"
        warnings.append(
            f"{path}:{made_manual[0]}: {count} came in as manual, with no acceptance command"
            " for build to run; give one with `nightcrew backlog edit ID --accept CMD`"
            " (or import with `--accept CMD`)"
        )
    return ParsedBacklog(fmt, tuple(specs), tuple(warnings))
