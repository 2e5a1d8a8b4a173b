"""Reading JSON so that every error names ``file:line``: the backlog formats
(``backlog_formats``) are read through these nodes and items.

The stdlib decoder gives lines only for syntax errors, so once the text is
known to be valid JSON a small scanner walks it again, decoding each value with
``raw_decode`` and noting the line it starts on.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from nightcrew.core.errors import LocatedError

_MAX_DEPTH = 6  # deeper values are decoded whole; no format reads below depth 4
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\r\n]*")


@dataclass(frozen=True)
class Node:
    """A decoded JSON value and the line it starts on (a field: its key's line).
    Arrays and objects keep their children, so each item and field has a line."""

    value: object
    line: int
    items: tuple[Node, ...] = ()
    fields: dict[str, Node] = field(default_factory=dict)


class Scanner:
    """Walks text already known to be valid JSON; it never meets a syntax error."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self.text, pos)
        return match.end() if match else pos

    def node(self, pos: int, depth: int = 0, line: int | None = None) -> tuple[Node, int]:
        pos = self.skip(pos)
        line = self.line(pos) if line is None else line
        opener = self.text[pos]
        if opener == "[" and depth < _MAX_DEPTH:
            return self.array(pos + 1, depth, line)
        if opener == "{" and depth < _MAX_DEPTH:
            return self.object(pos + 1, depth, line)
        value, end = _DECODER.raw_decode(self.text, pos)
        return Node(value, line), end

    def array(self, pos: int, depth: int, line: int) -> tuple[Node, int]:
        items: list[Node] = []
        pos = self.skip(pos)
        while self.text[pos] != "]":
            item, pos = self.node(pos, depth + 1)
            items.append(item)
            pos = self.skip(pos)
            if self.text[pos] == ",":
                pos = self.skip(pos + 1)
        return Node([i.value for i in items], line, items=tuple(items)), pos + 1

    def object(self, pos: int, depth: int, line: int) -> tuple[Node, int]:
        fields: dict[str, Node] = {}
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
        return Node(value, line, fields=fields), pos + 1


def kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


@dataclass
class Item:
    """One feature of the file being read: its fields, checked, and its errors,
    located and named so that a person can find it."""

    path: Path
    format: str
    read_as: str  # the format, as a person knows it
    number: int
    node: Node
    title: str = ""

    def fail(self, message: str, node: Node | None = None) -> NoReturn:
        title = shorten(self.title.strip().split("\n")[0], 60)
        who = f'feature {self.number} ("{title}")' if title else f"feature {self.number}"
        line = (node or self.node).line
        detail = f"{who}: {message} (read as {self.read_as})"
        raise LocatedError(str(self.path), line, detail)

    def get(self, key: str, required: bool = False) -> Node | None:
        node = self.node.fields.get(key)
        if node is None and required:
            self.fail(f"'{key}' is missing")
        return None if node is None or node.value is None else node

    def text(self, key: str, default: str = "", required: bool = False) -> str:
        node = self.get(key, required)
        if node is None:
            return default
        if not isinstance(node.value, str):
            self.fail(f"'{key}' must be a string, not {kind(node.value)}", node)
        return node.value

    def flag(self, key: str) -> bool:
        node = self.get(key)
        if node is not None and not isinstance(node.value, bool):
            self.fail(f"'{key}' must be true or false, not {kind(node.value)}", node)
        return node is not None and node.value is True

    def integer(self, key: str) -> int | None:
        node = self.get(key)
        if node is None:
            return None
        if isinstance(node.value, bool) or not isinstance(node.value, int):
            self.fail(f"'{key}' must be a whole number, not {kind(node.value)}", node)
        return node.value

    def key(self) -> int:
        self.get("id", required=True)
        found = self.integer("id")
        if found is None:
            self.fail("'id' must be a whole number, not null", self.node.fields["id"])
        return found

    def elements(self, key: str, of: type | tuple[type, ...], noun: str) -> list[Node]:
        node = self.get(key)
        if node is None:
            return []
        if not isinstance(node.value, list):
            self.fail(f"'{key}' must be a list of {noun}, not {kind(node.value)}", node)
        for number, element in enumerate(node.items, start=1):
            value = element.value
            if isinstance(value, bool) or not isinstance(value, of):
                message = f"'{key}' must be a list of {noun}; item {number} is {kind(value)}"
                self.fail(message, element)
        return list(node.items)

    def strings(self, key: str) -> tuple[str, ...]:
        return tuple(str(n.value) for n in self.elements(key, str, "strings"))


def read_text(path: Path) -> str:
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


def parse_root(path: Path, text: str, expected: str) -> Node:
    if not text.strip():
        raise LocatedError(str(path), 1, f"the file is empty; {expected}")
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
    return Scanner(text).node(0)[0]
