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
item or field at fault. The stdlib decoder gives lines only for syntax errors,
so once the text is known to be valid JSON a small scanner walks it again,
decoding each value with ``raw_decode`` and noting the line it starts on.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, NoReturn

from nightcrew.engine.states import ItemState
from nightcrew.errors import BadInput, LocatedError
from nightcrew.work.backlog import (
    DEFAULT_CATEGORY,
    FEATURE_STATES,
    Feature,
    FeatureSpec,
    spec_problem,
)
from nightcrew.work.backlog_graph import find_cycle

BacklogFormat = Literal["quickstart", "prd", "nightcrew"]
EXPORT_FORMAT = "nightcrew-backlog"
EXPORT_VERSION = 1
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
_MAX_DEPTH = 6  # deeper values are decoded whole; no format reads below depth 4
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True)
class ParsedBacklog:
    """Features read from a file, ready for the store; warnings carry ``file:line: ``."""

    format: BacklogFormat
    specs: tuple[FeatureSpec, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Node:
    """A decoded JSON value and the line it starts on (a field: its key's line).
    Arrays and objects keep their children, so each item and field has a line."""

    value: object
    line: int
    items: tuple[_Node, ...] = ()
    fields: dict[str, _Node] = field(default_factory=dict)


class _Scanner:
    """Walks text already known to be valid JSON; it never meets a syntax error."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self.text, pos)
        return match.end() if match else pos

    def node(self, pos: int, depth: int = 0, line: int | None = None) -> tuple[_Node, int]:
        pos = self.skip(pos)
        line = self.line(pos) if line is None else line
        opener = self.text[pos]
        if opener == "[" and depth < _MAX_DEPTH:
            return self.array(pos + 1, depth, line)
        if opener == "{" and depth < _MAX_DEPTH:
            return self.object(pos + 1, depth, line)
        value, end = _DECODER.raw_decode(self.text, pos)
        return _Node(value, line), end

    def array(self, pos: int, depth: int, line: int) -> tuple[_Node, int]:
        items: list[_Node] = []
        pos = self.skip(pos)
        while self.text[pos] != "]":
            item, pos = self.node(pos, depth + 1)
            items.append(item)
            pos = self.skip(pos)
            if self.text[pos] == ",":
                pos = self.skip(pos + 1)
        return _Node([i.value for i in items], line, items=tuple(items)), pos + 1

    def object(self, pos: int, depth: int, line: int) -> tuple[_Node, int]:
        fields: dict[str, _Node] = {}
        pos = self.skip(pos)
        while self.text[pos] != "}":
            key_line = self.line(pos)
            key, pos = _DECODER.raw_decode(self.text, pos)
            pos = self.skip(pos) + 1
            fields[key], pos = self.node(pos, depth + 1, key_line)
            pos = self.skip(pos)
            if self.text[pos] == ",":
                pos = self.skip(pos + 1)
        value = {k: n.value for k, n in fields.items()}
        return _Node(value, line, fields=fields), pos + 1


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def _derived_name(description: str) -> str:
    """A quickstart feature has no name: the first sentence of its description
    stands in, short enough to scan in a list (the full text stays the description)."""
    line = next((part.strip() for part in description.splitlines() if part.strip()), "")
    sentence = _SENTENCE_END.split(line, maxsplit=1)[0]
    return _shorten(sentence.rstrip(".") or sentence, MAX_DERIVED_NAME)


@dataclass
class _Item:
    """One feature of the file being read: its fields, checked, and its errors,
    located and named so that a person can find it."""

    path: Path
    format: BacklogFormat
    number: int
    node: _Node
    title: str = ""

    def fail(self, message: str, node: _Node | None = None) -> NoReturn:
        title = _shorten(self.title.strip().split("\n")[0], 60)
        who = f'feature {self.number} ("{title}")' if title else f"feature {self.number}"
        line = (node or self.node).line
        detail = f"{who}: {message} (read as {_LABELS[self.format]})"
        raise LocatedError(str(self.path), line, detail)

    def get(self, key: str, required: bool = False) -> _Node | None:
        node = self.node.fields.get(key)
        if node is None and required:
            self.fail(f"'{key}' is missing")
        return None if node is None or node.value is None else node

    def text(self, key: str, default: str = "", required: bool = False) -> str:
        node = self.get(key, required)
        if node is None:
            return default
        if not isinstance(node.value, str):
            self.fail(f"'{key}' must be a string, not {_kind(node.value)}", node)
        return node.value

    def flag(self, key: str) -> bool:
        node = self.get(key)
        if node is not None and not isinstance(node.value, bool):
            self.fail(f"'{key}' must be true or false, not {_kind(node.value)}", node)
        return node is not None and node.value is True

    def integer(self, key: str) -> int | None:
        node = self.get(key)
        if node is None:
            return None
        if isinstance(node.value, bool) or not isinstance(node.value, int):
            self.fail(f"'{key}' must be a whole number, not {_kind(node.value)}", node)
        return node.value

    def key(self) -> int:
        self.get("id", required=True)
        found = self.integer("id")
        if found is None:
            self.fail("'id' must be a whole number, not null", self.node.fields["id"])
        return found

    def elements(self, key: str, kind: type, noun: str) -> list[_Node]:
        node = self.get(key)
        if node is None:
            return []
        if not isinstance(node.value, list):
            self.fail(f"'{key}' must be a list of {noun}, not {_kind(node.value)}", node)
        for number, element in enumerate(node.items, start=1):
            value = element.value
            if isinstance(value, bool) or not isinstance(value, kind):
                message = f"'{key}' must be a list of {noun}; item {number} is {_kind(value)}"
                self.fail(message, element)
        return list(node.items)

    def strings(self, key: str) -> tuple[str, ...]:
        return tuple(str(n.value) for n in self.elements(key, str, "strings"))


@dataclass(frozen=True)
class _Keyed:
    """A spec from a format with ids, and where its id and dependencies are written."""

    item: _Item
    spec: FeatureSpec
    key: int
    deps: list[_Node]


def _quickstart(item: _Item) -> FeatureSpec:
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


def _prd(item: _Item) -> _Keyed:
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


def _exported(item: _Item) -> _Keyed:
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
    edges = {e.key: [d.value for d in e.deps if isinstance(d.value, int)] for e in entries}
    cycle = find_cycle(edges)
    if cycle is not None:  # named at the first feature's reference to the next
        start = next(e for e in entries if e.key == cycle[0])
        node = next(d for d in start.deps if d.value == cycle[1])
        names = " → ".join(f"#{key}" for key in cycle)
        raise LocatedError(str(start.item.path), node.line, f"dependency cycle: {names}")


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LocatedError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"not UTF-8 text (bad byte at offset {exc.start})"
        raise LocatedError(str(path), line, message) from exc


def _root(path: Path, text: str) -> _Node:
    if not text.strip():
        raise LocatedError(str(path), 1, f"the file is empty; {_EXPECTED}")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} (column {exc.colno})"
        raise LocatedError(str(path), exc.lineno, message) from exc
    except RecursionError as exc:
        raise LocatedError(str(path), None, "not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # a number too long for int()
        reason = str(exc).split(":")[0]
        raise LocatedError(str(path), None, f"not valid JSON: {reason}") from exc
    return _Scanner(text).node(0)[0]


def _detect(path: Path, root: _Node) -> tuple[BacklogFormat, _Node]:
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
            found = "missing" if features is None else _kind(features.value)
            message = f"nightcrew export: 'features' must be a list, not {found}"
            raise LocatedError(where, (features or root).line, message)
        return "nightcrew", features
    if not isinstance(root.value, list):
        message = f"the file holds {_kind(root.value)}, not a backlog; {_EXPECTED}"
        raise LocatedError(where, root.line, message)
    if not root.items:
        return "quickstart", root
    first = root.items[0]
    if not isinstance(first.value, dict):
        message = f"feature 1 must be a JSON object, not {_kind(first.value)}; {_EXPECTED}"
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


def _items(path: Path, fmt: BacklogFormat, features: _Node) -> list[_Item]:
    items = []
    for number, node in enumerate(features.items, start=1):
        item = _Item(path, fmt, number, node)
        if not isinstance(node.value, dict):
            item.fail(f"must be a JSON object, not {_kind(node.value)}")
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
    text = (_read(path) if text is None else text).removeprefix("\ufeff")
    fmt, features = _detect(path, _root(path, text))
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


def _ordered(features: Sequence[Feature]) -> list[Feature]:
    return sorted(features, key=lambda f: (f.position, f.id))


def _feature_json(f: Feature) -> dict[str, object]:
    return {
        "id": f.id,
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
    }


def export_json(features: Sequence[Feature]) -> str:
    """The backlog as our export format, in backlog order; ``parse_backlog``
    reads it back (states other than passed come back as pending)."""
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
