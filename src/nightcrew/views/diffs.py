"""An attempt's diff (git's unified patch, as ``changes.patch`` in its
evidence) read into files and lines a page can show with ``+``/``-`` and
line numbers, so a person can comment on a line of the attempt's version."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")
_GIT = re.compile(r"^diff --git a/(.*) b/(.*)$")

LineKind = Literal["add", "del", "ctx", "hunk", "note"]


@dataclass(frozen=True)
class DiffLine:
    kind: LineKind
    text: str
    old: int | None = None  # its number before the attempt (removed and context lines)
    new: int | None = None  # its number in the attempt's version: what a comment names

    @property
    def sign(self) -> str:
        return {"add": "+", "del": "-", "ctx": " "}.get(self.kind, "")


@dataclass
class DiffFile:
    path: str
    status: str = "modified"  # added | deleted | renamed | modified | binary
    lines: list[DiffLine] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind == "add")

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind == "del")


def parse_patch(text: str) -> list[DiffFile]:
    """The files of a ``git diff`` patch, in its order. Lines outside any
    file (there are none in git's output) are ignored."""
    files: list[DiffFile] = []
    current: DiffFile | None = None
    old = new = 0
    in_hunk = False
    for raw in text.splitlines():
        started = _GIT.match(raw)
        if started:
            current = DiffFile(started.group(2))
            files.append(current)
            in_hunk = False
            continue
        if current is None:
            continue
        hunk = _HUNK.match(raw)
        if hunk:
            old, new = int(hunk.group(1)), int(hunk.group(2))
            current.lines.append(DiffLine("hunk", raw))
            in_hunk = True
            continue
        if not in_hunk:
            _header(current, raw)
            continue
        if raw.startswith("+"):
            current.lines.append(DiffLine("add", raw[1:], new=new))
            new += 1
        elif raw.startswith("-"):
            current.lines.append(DiffLine("del", raw[1:], old=old))
            old += 1
        elif raw.startswith("\\"):
            current.lines.append(DiffLine("note", raw[2:]))
        else:
            current.lines.append(DiffLine("ctx", raw[1:], old=old, new=new))
            old += 1
            new += 1
    return files


def _header(file: DiffFile, raw: str) -> None:
    if raw.startswith("new file mode"):
        file.status = "added"
    elif raw.startswith("deleted file mode"):
        file.status = "deleted"
    elif raw.startswith("rename to "):
        file.status = "renamed"
        file.path = raw.removeprefix("rename to ")
    elif raw.startswith("Binary files"):
        file.status = "binary"
