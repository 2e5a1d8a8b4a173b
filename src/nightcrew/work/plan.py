"""The markdown plan: batches of tasks, parsed with a real CommonMark parser.

A plan is a markdown file with ``## Batch N: title`` headers, each holding
``### Task M: title`` headers and free text. Everything inside code (fenced
with backticks or tildes, indented, or an HTML block) is text, never structure:
a ``## Batch 7`` line in a code fence belongs to the batch around it.

Only top-level ATX headers count. The text of a batch runs from the line after
its header to the line before the next batch header (or the end of the file),
so other headers inside a batch are part of its text. Text before the first
batch is the plan's preamble.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from nightcrew.core.errors import LocatedError

_MD = MarkdownIt("commonmark")
_CODE_TYPES = frozenset({"fence", "code_block", "html_block"})
_LIST_TYPES = frozenset({"bullet_list", "ordered_list"})
# "Batch 3: title", "Batch 3 — title", "Batch 3 - title"; the number is any
# run of non-separator characters so that "Batch two: x" can be reported.
_HEAD_RE = re.compile(
    r"(?P<kw>[A-Za-z]+)(?:\s+(?P<num>-[0-9]+|[^\s:—–-]+))?\s*"
    r"(?:(?P<sep>[:—–-])\s*(?P<title>.*)|(?P<tail>.*))",
    re.DOTALL,
)
_LOOSE_HEAD_RE = re.compile(r"(?i)(batch|task)\s+[0-9]+\b")
_INT_RE = re.compile(r"-?[0-9]+")
_CRITICAL_RE = re.compile(r"\bCRITICAL\b")
_REFS_RE = re.compile(r"[ \t]*context_refs:(?P<refs>.*)")
# A line of its own in a batch's text: the batch may pass without changing a file.
_NO_CHANGE_RE = re.compile(r"[ \t]*no[-_]change[-_]ok[ \t]*(?::[ \t]*(?:true|yes)[ \t]*)?", re.I)
_FILES_RE = re.compile(r"\**\s*Files\s*\**\s*:?\s*\**\s*:?", re.IGNORECASE)
_KIND_RE = re.compile(r"\**\s*(?P<kind>Create|Modify|Test)\s*\**\s*:\s*\**\s*(?P<rest>.*)", re.I)
_CODE_SPAN_RE = re.compile(r"`+\s*([^`]+?)\s*`+")
_LINE_SUFFIX_RE = re.compile(r":[0-9]+(?:-[0-9]+)?$")


@dataclass(frozen=True)
class Task:
    number: int
    title: str
    line: int


@dataclass(frozen=True)
class Batch:
    number: int
    title: str
    line: int
    body: str
    tasks: tuple[Task, ...]
    context_refs: tuple[str, ...]
    files_create: tuple[str, ...]
    files_modify: tuple[str, ...]
    critical: bool
    files_test: tuple[str, ...] = ()
    context_refs_line: int | None = None
    no_change_ok: bool = False  # a `no-change-ok` line: passing with no file changed is fine

    @property
    def sha256(self) -> str:
        """Hash of the (canonical) header and the body: a new title or text changes it."""
        header = f"## Batch {self.number}: {self.title}\n"
        return hashlib.sha256((header + self.body).encode("utf-8")).hexdigest()

    @property
    def is_empty(self) -> bool:
        return not self.body.strip()


@dataclass(frozen=True)
class PlanWarning:
    line: int
    message: str


@dataclass(frozen=True)
class Plan:
    path: Path
    preamble: str
    batches: tuple[Batch, ...]
    warnings: tuple[PlanWarning, ...]
    sha256: str

    def batch(self, number: int) -> Batch:
        for batch in self.batches:
            if batch.number == number:
                return batch
        raise KeyError(number)

    def to_json(self) -> dict[str, Any]:
        return {
            "batches": [
                {
                    "number": b.number,
                    "title": b.title,
                    "line": b.line,
                    "tasks": [{"number": t.number, "title": t.title} for t in b.tasks],
                    "context_refs": list(b.context_refs),
                    "files": {"create": list(b.files_create), "modify": list(b.files_modify)},
                    "critical": b.critical,
                    "no_change_ok": b.no_change_ok,
                }
                for b in self.batches
            ],
            "warnings": [{"line": w.line, "message": w.message} for w in self.warnings],
        }


class _HeaderError(Exception):
    pass


@dataclass(frozen=True)
class _Header:
    kind: str  # "batch" or "task"
    number: int
    title: str
    index: int  # 0-based line


def _parse_header(kind: str, text: str) -> tuple[int, str] | None:
    """``(number, title)`` if *text* is a *kind* header, None if it is not one at
    all; raises _HeaderError if it clearly means to be one but is malformed."""
    m = _HEAD_RE.fullmatch(text)
    if m is None or m["kw"].lower() != kind:
        return None
    num, sep = m["num"], m["sep"]
    is_int = num is not None and _INT_RE.fullmatch(num) is not None
    if not is_int and sep is None:
        return None
    example = f"'{'## Batch' if kind == 'batch' else '### Task'} N: title'"
    if num is None:
        raise _HeaderError(f"{kind} header has no number (expected {example})")
    if not is_int or int(num) < 1:
        raise _HeaderError(f"{kind} number '{num}' is not a positive integer")
    number = int(num)
    title = (m["title"] or "").strip()
    if sep is None and (m["tail"] or "").strip():
        raise _HeaderError(f"{kind} {number}: expected ':' after the number ({example})")
    if not title and kind == "task":
        raise _HeaderError(f"{kind} {number} has no title")
    return number, title  # a batch without a title is an error only when it has a body


def _inline_text(node: SyntaxTreeNode) -> str:
    return "".join(child.content for child in node.children if child.type == "inline").strip()


def _code_span_paths(text: str) -> list[str]:
    paths = _CODE_SPAN_RE.findall(text)
    if not paths and text.strip() and len(text.split()) == 1:
        paths = [text.strip()]
    return [_LINE_SUFFIX_RE.sub("", p) for p in paths]


def _collect_files(lst: SyntaxTreeNode, inherited: str | None, out: dict[str, list[str]]) -> None:
    """Items of a Files list: ``Create: `path` `` and friends, at any depth; a
    ``Create:`` item with a nested list gives its kind to the nested items."""
    for item in lst.children:
        kids = item.children
        text = _inline_text(kids[0]) if kids and kids[0].type == "paragraph" else ""
        m = _KIND_RE.fullmatch(text)
        kind = m["kind"].lower() if m else inherited
        if kind is not None:
            for path in _code_span_paths(m["rest"] if m else text):
                if path not in out[kind]:
                    out[kind].append(path)
        for sub in kids:
            if sub.type in _LIST_TYPES:
                _collect_files(sub, kind, out)


def _find_files(nodes: list[SyntaxTreeNode], out: dict[str, list[str]]) -> None:
    """A ``**Files:**`` paragraph (or heading) followed by a list, found at the top
    level or inside list items (``- **Files:**`` with a nested list)."""
    for i, node in enumerate(nodes):
        if node.type in ("paragraph", "heading") and _FILES_RE.fullmatch(_inline_text(node)):
            following = nodes[i + 1] if i + 1 < len(nodes) else None
            if following is not None and following.type in _LIST_TYPES:
                _collect_files(following, None, out)
        elif node.type in _LIST_TYPES:
            for item in node.children:
                _find_files(item.children, out)


def _strip_blank_ends(lines: list[str]) -> str:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


def _normalize(text: str) -> str:
    if text.startswith("\ufeff"):
        text = text[1:]
    return re.sub(r"\r\n?", "\n", text)


class PlanError(LocatedError):
    """Every problem found in a plan, in file order. It reads as the first one
    (noting how many more there are); ``errors`` holds them all."""

    def __init__(self, path: Path, errors: list[tuple[int | None, str]]) -> None:
        line, message = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(str(path), line, message + more)
        self.errors = tuple(errors)

    def lines(self) -> list[str]:
        """One ``file:line: message`` line per error."""
        return [
            f"{self.path}:{n}: {m}" if n is not None else f"{self.path}: {m}"
            for n, m in self.errors
        ]


def _raise_first(path: Path, errors: list[tuple[int | None, str]]) -> None:
    if not errors:
        return
    errors.sort(key=lambda e: e[0] or 0)
    raise PlanError(path, errors)


class _Parser:
    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        self.text = _normalize(text)
        self.lines = self.text.split("\n")
        self.root = SyntaxTreeNode(_MD.parse(self.text))
        self.errors: list[tuple[int | None, str]] = []
        self.warnings: list[PlanWarning] = []
        self.code_lines: set[int] = set()
        self.malformed_batch = False

    def warn(self, index: int, message: str) -> None:
        self.warnings.append(PlanWarning(index + 1, message))

    def headers(self) -> list[_Header]:
        found: list[_Header] = []
        for node in self.root.walk(include_self=False):
            if node.type in _CODE_TYPES and node.map is not None:
                self.code_lines.update(range(*node.map))
            if node.type != "heading" or node.map is None:
                continue
            text, index = _inline_text(node), node.map[0]
            top = node.parent is self.root and node.markup.startswith("#")
            kind = {"h2": "batch", "h3": "task"}.get(node.tag) if top else None
            try:
                parsed = _parse_header(kind, text) if kind else None
            except _HeaderError as exc:
                self.errors.append((index + 1, str(exc)))
                self.malformed_batch |= kind == "batch"
                continue
            if parsed is None or kind is None:
                if _LOOSE_HEAD_RE.match(text):
                    self.warn(
                        index,
                        f"heading '{text}' is not a plan header: batches are "
                        "top-level '## Batch N: title', tasks '### Task N: title'",
                    )
                continue
            found.append(_Header(kind, parsed[0], parsed[1], index))
        return found

    def context_refs(self, start: int, end: int, number: int) -> tuple[tuple[str, ...], int | None]:
        refs: tuple[str, ...] = ()
        first: int | None = None
        for index in range(start, end):
            m = _REFS_RE.fullmatch(self.lines[index])
            if m is None or index in self.code_lines:
                continue
            if first is not None:
                self.warn(
                    index,
                    f"batch {number} has a second context_refs line; "
                    f"only the first (line {first}) is used",
                )
                continue
            first = index + 1
            parts = (part.strip().strip("`").strip() for part in m["refs"].split(","))
            refs = tuple(dict.fromkeys(part for part in parts if part))
        return refs, first

    def batch(self, head: _Header, end: int, tasks: list[_Header]) -> Batch:
        start = head.index + 1
        body = _strip_blank_ends(self.lines[start:end])
        seen: dict[int, int] = {}
        for task in tasks:
            if task.number in seen:
                self.warn(
                    task.index,
                    f"task {task.number} appears twice in batch {head.number} "
                    f"(first at line {seen[task.number]})",
                )
            seen.setdefault(task.number, task.index + 1)
        refs, refs_line = self.context_refs(start, end, head.number)
        files: dict[str, list[str]] = {"create": [], "modify": [], "test": []}
        nodes = [n for n in self.root.children if n.map is not None and start <= n.map[0] < end]
        _find_files(nodes, files)
        batch = Batch(
            number=head.number,
            title=head.title,
            line=head.index + 1,
            body=body,
            tasks=tuple(Task(t.number, t.title, t.index + 1) for t in tasks),
            context_refs=refs,
            files_create=tuple(files["create"]),
            files_modify=tuple(files["modify"]),
            critical=_CRITICAL_RE.search(head.title) is not None,
            files_test=tuple(files["test"]),
            context_refs_line=refs_line,
            no_change_ok=any(
                _NO_CHANGE_RE.fullmatch(self.lines[i]) and i not in self.code_lines
                for i in range(start, end)
            ),
        )
        if batch.is_empty:
            self.warn(head.index, f"batch {head.number} is empty and will be skipped")
        return batch

    def check_numbers(self, heads: list[_Header]) -> None:
        first_line: dict[int, int] = {}
        previous = 0
        for head in heads:
            n, line = head.number, head.index + 1
            if n in first_line:
                self.errors.append((line, f"duplicate batch {n} (first at line {first_line[n]})"))
            elif n < previous:
                self.errors.append((line, f"batch {n} comes after batch {previous}"))
            elif previous == 0 and n != 1:
                self.warn(head.index, f"batch numbers start at {n}, not 1")
            elif previous and n > previous + 1:
                self.warn(head.index, f"batch numbers skip from {previous} to {n}")
            first_line.setdefault(n, line)
            previous = max(previous, n)

    def parse(self) -> Plan:
        headers = self.headers()
        heads = [h for h in headers if h.kind == "batch"]
        first = heads[0].index if heads else len(self.lines)
        for task in headers:
            if task.kind == "task" and task.index < first:
                self.errors.append(
                    (
                        task.index + 1,
                        f"task {task.number} is outside a batch: "
                        "tasks go under a '## Batch N: title' header",
                    )
                )
        if not heads and not self.malformed_batch:
            self.errors.append((None, "no batches: expected headers like '## Batch 1: title'"))
        self.check_numbers(heads)
        for i, head in enumerate(heads):
            end = heads[i + 1].index if i + 1 < len(heads) else len(self.lines)
            if not head.title and _strip_blank_ends(self.lines[head.index + 1 : end]):
                self.errors.append((head.index + 1, f"batch {head.number} has no title"))
        _raise_first(self.path, self.errors)
        batches = []
        for i, head in enumerate(heads):
            end = heads[i + 1].index if i + 1 < len(heads) else len(self.lines)
            tasks = [h for h in headers if h.kind == "task" and head.index < h.index < end]
            batches.append(self.batch(head, end, tasks))
        return Plan(
            path=self.path,
            preamble=_strip_blank_ends(self.lines[:first]),
            batches=tuple(batches),
            warnings=tuple(sorted(self.warnings, key=lambda w: w.line)),
            sha256=hashlib.sha256(self.text.encode("utf-8")).hexdigest(),
        )


def parse_plan(text: str, path: Path) -> Plan:
    """Parse plan *text* (no filesystem access); *path* is only used in messages.

    Raises LocatedError for the first error in file order, noting how many more
    there are. Line endings are normalized to ``\\n`` and a leading BOM dropped.
    """
    return _Parser(text, path).parse()


def load_plan(path: Path, project_root: Path) -> Plan:
    """Read and parse the plan at *path*, then check that every context_ref is a
    file inside *project_root* (relative paths are taken from there)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LocatedError(str(path), None, f"cannot read plan: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LocatedError(
            str(path), line, f"plan is not valid UTF-8 (bad byte at offset {exc.start})"
        ) from exc
    plan = parse_plan(text, path)
    root = project_root.resolve()
    errors: list[tuple[int | None, str]] = []
    for batch in plan.batches:
        for ref in batch.context_refs:
            target = (project_root / ref).resolve()
            if not target.is_relative_to(root):
                problem = "is outside the project"
            elif not target.exists():
                problem = f"does not exist (looked in {project_root})"
            elif not target.is_file():
                problem = "is not a file"
            else:
                continue
            errors.append((batch.context_refs_line, f"context_ref '{ref}' {problem}"))
    _raise_first(path, errors)
    return plan
