"""The backlog's file formats: the feature lists other harnesses write, which
``backlog import`` reads, and ours, which ``backlog export`` writes.

Four JSON formats come in, told apart by their content (people rename files):

* an Anthropic quickstart ``feature_list.json``: an array of
  ``{category, description, steps, passes}``, ordered by priority, with no
  names, ids, dependencies or commands;
* an Autocoder/AutoForge feature list: the same with ``name``, ``id``,
  ``priority`` (a number or high/medium/low) and ``dependencies`` (or
  ``depends_on``: ids in the file), as an array or wrapped as ``{"features": [...]}``;
* an Autonomous Coding Toolkit ``tasks/prd.json``: an array of
  ``{id, title, description, acceptance_criteria, passes, blocked_by}``;
* our own export: ``{"format": "nightcrew-backlog", "version": 1, "features": [...]}``.

A person fixes a bad file by line, so every error names ``file:line`` of the
item or field at fault (``backlog_json`` reads JSON with lines). The exports
are written by ``backlog_export``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from nightcrew.core.errors import BadInput, LocatedError
from nightcrew.core.states import ItemState
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
from nightcrew.work.backlog_graph import find_cycle
from nightcrew.work.backlog_json import Item, Node, kind, parse_root, read_text, shorten

__all__ = ["BacklogFormat", "ParsedBacklog", "export_json", "export_markdown", "parse_backlog"]

BacklogFormat = Literal["quickstart", "autocoder", "prd", "nightcrew"]
MAX_DERIVED_NAME = 80  # a quickstart name is cut from its description

_LABELS: dict[BacklogFormat, str] = {
    "quickstart": "an Anthropic quickstart feature_list.json",
    "autocoder": "an Autocoder/AutoForge feature list",
    "prd": "an Autonomous Coding Toolkit prd.json",
    "nightcrew": "a nightcrew export",
}
_EXPECTED = (
    "backlog import reads a quickstart or Autocoder feature list, a PRD prd.json (JSON"
    ' arrays, or an Autocoder list wrapped as {"features": [...]})'
    f' or a nightcrew export (an object with "format": "{EXPORT_FORMAT}")'
)
_PRD_KEYS = frozenset({"title", "acceptance_criteria", "blocked_by"})
_QUICKSTART_KEYS = frozenset({"category", "description", "steps", "passes"})
_AUTOCODER_KEYS = frozenset({"name", "id", "priority", "dependencies", "depends_on"})
_KNOWN: dict[BacklogFormat, frozenset[str]] = {  # the fields each format imports
    "quickstart": _QUICKSTART_KEYS,
    "autocoder": _QUICKSTART_KEYS | _AUTOCODER_KEYS,
    "prd": frozenset({"id", "title", "description", "acceptance_criteria", "passes"}) | _PRD_KEYS,
    "nightcrew": frozenset(
        {"id", "key", "category", "name", "description", "steps", "acceptance", "manual"}
        | {"priority", "files", "depends_on", "state", "model", "input_request"}
    ),
}
_PRIORITY_WORDS = {"high": 1, "medium": 2, "low": 3}
# Our own export's states come back as they were; passed too, since it is our
# harness's verdict, not a third party's claim (in progress comes back pending).
_KEPT_STATES = frozenset(
    {ItemState.PASSED, ItemState.SKIPPED, ItemState.FAILED, ItemState.NEEDS_INPUT}
)
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


@dataclass
class _Keyed:
    """A spec read from the file, its id (None: the file has none) and where its
    id and dependencies are written."""

    item: Item
    spec: FeatureSpec
    key: str | None
    deps: list[Node]


def _id(item: Item) -> str | None:
    node = item.get("id")
    if node is None:
        return None
    if isinstance(node.value, bool) or not isinstance(node.value, int | str):
        item.fail(f"'id' must be a number or a string, not {kind(node.value)}", node)
    if not str(node.value).strip():
        item.fail("'id' is empty", node)
    return str(node.value)


def _quickstart(item: Item) -> _Keyed:
    description = item.text("description", required=True)
    item.title = _derived_name(description)
    if not item.title:
        item.fail("'description' is empty", item.get("description"))
    spec = FeatureSpec(
        name=item.title,
        category=item.text("category", DEFAULT_CATEGORY),
        description=description.strip(),
        steps=item.strings("steps"),
        priority=item.number,
        passes=item.flag("passes"),
    )
    return _Keyed(item, spec, None, [])


def _priority(item: Item) -> int:
    """A number as it is (lower runs sooner), or high/medium/low as 1/2/3; none:
    the feature's place in the file."""
    node = item.get("priority")
    if node is None:
        return item.number
    if isinstance(node.value, str) and node.value.strip().lower() in _PRIORITY_WORDS:
        return _PRIORITY_WORDS[node.value.strip().lower()]
    if isinstance(node.value, bool) or not isinstance(node.value, int):
        shown = f" {node.value!r}" if isinstance(node.value, str) else ""
        item.fail(
            f"'priority' must be a whole number or high/medium/low, not {kind(node.value)}{shown}",
            node,
        )
    return node.value


def _autocoder(item: Item) -> _Keyed:
    name = item.text("name")
    description = item.text("description", required=not name.strip())
    item.title = name.strip() or _derived_name(description)
    if not item.title:
        item.fail("'name' and 'description' are empty", item.get("description"))
    if "dependencies" in item.node.fields and "depends_on" in item.node.fields:
        item.fail("give 'dependencies' or 'depends_on', not both", item.get("depends_on"))
    field = "depends_on" if "depends_on" in item.node.fields else "dependencies"
    deps = item.elements(field, (int, str), "feature ids")
    spec = FeatureSpec(
        name=item.title,
        category=item.text("category", DEFAULT_CATEGORY),
        description=description.strip(),
        steps=item.strings("steps"),
        priority=_priority(item),
        passes=item.flag("passes"),
    )
    return _Keyed(item, spec, _id(item), deps)


def _prd(item: Item) -> _Keyed:
    item.title = item.text("title", required=True)
    if not item.title.strip():
        item.fail("'title' is empty", item.get("title"))
    key = str(item.key())
    deps = item.elements("blocked_by", int, "task ids")
    spec = FeatureSpec(
        name=item.title.strip(),
        description=item.text("description").strip(),
        acceptance=item.strings("acceptance_criteria"),
        priority=item.number,
        passes=item.flag("passes"),
    )
    return _Keyed(item, spec, key, deps)


def _exported(item: Item) -> _Keyed:
    item.title = item.text("name", required=True)
    number = item.key()
    key = item.text("key") or str(number)
    state = item.text("state", ItemState.PENDING)
    if state not in FEATURE_STATES:
        known = ", ".join(FEATURE_STATES)
        item.fail(f"'state' is {state!r}, not one of {known}", item.get("state"))
    deps = item.elements("depends_on", int, "feature ids")
    model_node = item.get("model")
    request = item.text("input_request").strip() or None
    if state == ItemState.NEEDS_INPUT and request is None:
        state = ItemState.PENDING  # nothing to answer: it waits for nobody
    spec = FeatureSpec(
        name=item.title,
        category=item.text("category", DEFAULT_CATEGORY),
        description=item.text("description"),
        steps=item.strings("steps"),
        acceptance=item.strings("acceptance"),
        manual=item.flag("manual"),
        priority=item.integer("priority"),
        files=item.strings("files"),
        model=None if model_node is None or model_node.value is None else item.text("model"),
        state=ItemState(state) if state in _KEPT_STATES else None,
        input_request=request if state == ItemState.NEEDS_INPUT else None,
        wanted_id=number,
    )
    return _Keyed(item, spec, key, [(d) for d in deps])


def _content_key(spec: FeatureSpec) -> str:
    """The key of a feature from a file without ids: its category, name and text."""
    text = "\0".join((spec.category.strip(), spec.name.strip(), spec.description.strip()))
    return "h:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _link(entries: Sequence[_Keyed], prefix: str) -> list[FeatureSpec]:
    """Each spec with its key and its dependencies as keys. A file gives every
    feature an id or none: ids are unique, and a dependency names another
    feature's id (in a file without ids, its 1-based place, as AutoForge numbers
    a fresh project). The file is imported whole, so a dangling id is a mistake."""
    with_ids = [e for e in entries if e.key is not None]
    if with_ids and len(with_ids) < len(entries):
        missing = next(e for e in entries if e.key is None)
        missing.item.fail("has no 'id', but other features of the file have one")
    ids: dict[str, Node] = {}
    for entry in entries:
        if entry.key is None:
            entry.key = _content_key(entry.spec)
            node = entry.item.node
            if entry.key in ids:
                first = ids[entry.key].line
                entry.item.fail(f"is the same feature as the one at line {first}")
        else:
            node = entry.item.node.fields["id"]
            if entry.key in ids:
                first = ids[entry.key].line
                entry.item.fail(f"id {entry.key} appears twice (first at line {first})", node)
        ids[entry.key] = node
    keys = [str(e.key) for e in entries]
    numbers = {str(e.item.node.fields["id"].value): str(e.key) for e in with_ids}
    specs = []
    refs: list[tuple[int, int, Node]] = []  # (feature, the one it needs, where) by place
    for index, entry in enumerate(entries):
        deps: list[str] = []
        for dep in entry.deps:
            field = {"prd": "'blocked_by'", "nightcrew": "'depends_on'"}.get(
                entry.item.format, "a dependency"
            )
            if with_ids:
                if str(dep.value) not in numbers:
                    entry.item.fail(f"{field} names id {dep.value}, which is not in this file", dep)
                target = numbers[str(dep.value)]
            else:
                place = dep.value
                if not isinstance(place, int) or not 1 <= place <= len(entries):
                    entry.item.fail(
                        f"{field} names {place!r}: a file without ids names features by"
                        f" their place, 1 to {len(entries)}",
                        dep,
                    )
                target = keys[place - 1]
            if target == entry.key:
                entry.item.fail(f"{field} names the feature's own id {dep.value}", dep)
            deps.append(prefix + target)
            refs.append((index, keys.index(target), dep))
        specs.append(
            replace(
                entry.spec,
                source_key=prefix + str(entry.key),
                depends_on_keys=tuple(dict.fromkeys(deps)),
            )
        )
    _refuse_cycle(entries, refs, [str(e.item.node.fields["id"].value) for e in with_ids])
    return specs


def _refuse_cycle(
    entries: Sequence[_Keyed], refs: Sequence[tuple[int, int, Node]], ids: Sequence[str]
) -> None:
    """A file whose features depend on each other in a circle is refused where
    the circle starts: ``dependency cycle: #1 → #3 → #2 → #1``, named by the
    file's ids (or places, in a file without ids)."""
    edges: dict[int, list[int]] = {i: [] for i in range(len(entries))}
    for feature, needed, _ in refs:
        edges[feature].append(needed)
    cycle = find_cycle(edges)
    if cycle is None:
        return
    node = next(n for f, d, n in refs if f == cycle[0] and d == cycle[1])
    names = " → ".join(f"#{ids[i] if ids else i + 1}" for i in cycle)
    raise LocatedError(str(entries[cycle[0]].item.path), node.line, f"dependency cycle: {names}")


def _detect(path: Path, root: Node) -> tuple[BacklogFormat, Node]:
    """The format of the file and the array of its features."""
    where = str(path)
    wrapped = root.fields.get("features")
    if isinstance(root.value, dict) and "format" not in root.value and wrapped is not None:
        if not isinstance(wrapped.value, list):
            message = f"'features' must be a list, not {kind(wrapped.value)}"
            raise LocatedError(where, wrapped.line, message)
        return "autocoder", wrapped
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
    if _QUICKSTART_KEYS & first.value.keys() or "name" in first.value:
        if any(
            _AUTOCODER_KEYS & set(item.value) for item in root.items if isinstance(item.value, dict)
        ):
            return "autocoder", root
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


_READERS = {
    "quickstart": _quickstart,
    "autocoder": _autocoder,
    "prd": _prd,
    "nightcrew": _exported,
}


def _unknown_fields(path: Path, fmt: BacklogFormat, items: Sequence[Item]) -> str | None:
    """One warning line naming every field of the file that is not imported."""
    counts: dict[str, int] = {}
    first: int | None = None
    for item in items:
        for name, node in item.node.fields.items():
            if name not in _KNOWN[fmt]:
                counts[name] = counts.get(name, 0) + 1
                first = node.line if first is None else first
    if not counts:
        return None
    listed = ", ".join(
        f"{name} ({n} feature{'s' if n != 1 else ''})" for name, n in sorted(counts.items())
    )
    return f"{path}:{first}: fields not imported: {listed}"


def parse_backlog(
    path: Path,
    text: str | None = None,
    *,
    default_acceptance: tuple[str, ...] = (),
    prefix: str | None = None,
) -> ParsedBacklog:
    """Read the features of a backlog file in any format ``import`` knows.

    *text*, when given, is used instead of reading *path* (which then only names
    the file in messages). Every feature gets a key: the file's id, or a hash of
    its category, name and description; *prefix* (``--prefix``) goes in front of
    the keys, so two files with the same ids stay apart. Raises LocatedError (a
    BadInput) for the first problem found: the file is imported whole or not at all.
    """
    if any(not command.strip() for command in default_acceptance):
        raise BadInput("an acceptance command given for the import is empty")
    if prefix is not None and (not prefix.strip() or prefix != prefix.strip()):
        raise BadInput(f"--prefix {prefix!r}: give a word such as auth (no spaces around it)")
    text = (read_text(path) if text is None else text).removeprefix("\ufeff")
    fmt, features = _detect(path, parse_root(path, text, _EXPECTED))
    items = _items(path, fmt, features)
    entries = [_READERS[fmt](item) for item in items]
    linked = _link(entries, f"{prefix}:" if prefix else "")
    pairs = [(entry.item, spec) for entry, spec in zip(entries, linked, strict=True)]
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
    unknown = _unknown_fields(path, fmt, items)
    if unknown is not None:
        warnings.append(unknown)
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
