"""Import Claude Code transcripts (``projects/**/*.jsonl``) into the global usage database.

Transcripts grow to hundreds of MB, and tools that read them whole crash or take
minutes (formats.md §2.3), while a report wants them re-imported on every run. So:

* **Incremental.** Each file's size, mtime, inode, the offset consumed so far
  and a hash of its first bytes are kept. An unchanged file costs one ``stat``;
  a grown one is read from its offset; a truncated or rewritten one is re-read.
* **Bounded memory.** Binary chunks go through one buffer, never the whole file
  (no ``mmap`` either: its pages count as resident). A line longer than
  :data:`MAX_LINE` is dropped without being held whole.
* **Fast.** Most bytes are user, tool-result and attachment lines. Only lines
  holding the JSON string ``"assistant"`` (found at ``memchr``-like speed) are
  parsed; the others are only checked for looking like a JSON object, to count
  garbage.

Bad lines are skipped and counted, never fatal. A file's rows and its new offset
are committed in one transaction, so a crash never leaves one without the other.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from nightcrew.errors import BadInput
from nightcrew.usage import globaldb
from nightcrew.usage.anthropic_format import reported_cost, tokens_from_usage
from nightcrew.usage.globaldb import KnownFile, format_ts
from nightcrew.usage.pricing import Pricer

# Read at call time, so tests can shrink them.
CHUNK_SIZE = 8 << 20  # bytes per read
MAX_LINE = 64 << 20  # a longer line is dropped unparsed
HEAD_LEN = 4096  # bytes hashed to notice a rewritten file
FLUSH_ROWS = 5_000  # responses held in memory before they are written
COMMIT_SECONDS = 0.25  # small files share a transaction for at most this long

_NEEDLE = b'"assistant"'  # in a JSON string a quote is escaped, so this is a JSON token
_LBRACE, _RBRACE = ord("{"), ord("}")
_log = logging.getLogger(__name__)


# ---- discovery ------------------------------------------------------------------------


def default_roots() -> list[Path]:
    """Where Claude Code keeps transcripts: ``projects`` under each entry of
    ``$CLAUDE_CONFIG_DIR`` (comma-separated), ``~/.config/claude`` and ``~/.claude``.
    Only existing directories, each once."""
    config = [p.strip() for p in os.environ.get("CLAUDE_CONFIG_DIR", "").split(",")]
    home = Path.home()
    candidates = [Path(p).expanduser() / "projects" for p in config if p]
    candidates += [home / ".config" / "claude" / "projects", home / ".claude" / "projects"]
    roots: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir() and (resolved := candidate.resolve()) not in roots:
            roots.append(resolved)
    return roots


def find_transcripts(paths: Sequence[Path]) -> list[Path]:
    """The ``.jsonl`` files under ``paths``, recursively (so subagent transcripts in
    ``<session>/subagents/`` are included); a file named directly is taken as is."""
    found: set[str] = set()
    for path in paths:
        where = os.path.abspath(path)
        if os.path.isfile(where):
            found.add(where)
        elif os.path.isdir(where):
            for folder, _dirs, names in os.walk(where):
                found.update(os.path.join(folder, n) for n in names if n.endswith(".jsonl"))
        else:
            raise BadInput(f"{path}: no such file or directory")
    return [Path(p) for p in sorted(found)]


# ---- one file's usage lines ----------------------------------------------------------------


class _Line(NamedTuple):
    message_id: str | None
    request_id: str | None
    session: str
    project: str
    model: str
    ts: str
    usage: dict[str, Any]
    reported: Decimal | None
    sidechain: bool


def _timestamp(value: str) -> str | None:
    """``value`` in the database's one time format; None unless it is ISO 8601 with a zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if len(value) == 24 and value[23] == "Z" and value[4:20:3] == "--T::.":
        # Claude Code's own form, 2026-11-21T09:39:44.440Z (valid: it parsed): a 10x
        # cheaper rewrite than format_ts, and this runs for every response.
        return f"{value[:19]}.{value[20:23]}000+00:00"
    try:
        return format_ts(moment) if moment.tzinfo is not None else None
    except OverflowError:
        return None


def _total(usage: dict[str, Any]) -> int:
    return tokens_from_usage(usage).total


class _Collector:
    """The usage lines of one file, deduplicated on (message id, request id):
    Claude Code writes one line per content block, each with the response's usage.
    Of two copies the larger total wins, else the first."""

    def __init__(self, session: str, project: str) -> None:
        self.fallback_session, self.fallback_project = session, project
        self.keyed: dict[tuple[str, str], _Line] = {}
        self.unkeyed: list[_Line] = []
        self.skipped = 0
        self._strings: dict[str, str] = {}  # one object per repeated session, cwd, model

    def __len__(self) -> int:
        return len(self.keyed) + len(self.unkeyed)

    def take(self) -> list[_Line]:
        lines = [*self.keyed.values(), *self.unkeyed]
        self.keyed, self.unkeyed = {}, []
        return lines

    def scan(self, buf: bytearray, pos: int, end: int) -> None:
        """Take the complete lines of ``buf[pos:end]`` (``buf[end - 1]`` is a newline)."""
        find, rfind = buf.find, buf.rfind
        while pos < end:
            hit = find(_NEEDLE, pos, end)
            # the start of the hit's line: after the newline before it, else ``pos``
            stop = end if hit < 0 else (rfind(b"\n", pos, hit) + 1 or pos)
            # Lines without the needle: only count those that cannot be a JSON object.
            bad = 0
            while pos < stop:
                nl = find(b"\n", pos, stop)
                if (buf[pos] != _LBRACE or buf[nl - 1] != _RBRACE) and nl != pos:
                    bad += 1  # a blank line is not counted
                pos = nl + 1
            self.skipped += bad
            if hit < 0:
                return
            nl = find(b"\n", hit, end)
            self._add(buf[stop:nl])
            pos = nl + 1

    def _add(self, raw: bytearray) -> None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.skipped += 1
            return
        if type(obj) is not dict or (obj.get("type") == "assistant" and not self._assistant(obj)):
            self.skipped += 1

    def _assistant(self, obj: dict[str, Any]) -> bool:
        """Take one assistant line; False when its shape is unexpected."""
        message = obj.get("message")
        if type(message) is not dict:
            return False
        usage, model, raw_ts = message.get("usage"), message.get("model"), obj.get("timestamp")
        if type(usage) is not dict or type(model) is not str or type(raw_ts) is not str:
            return False
        if (
            type(usage.get("input_tokens")) is not int
            or type(usage.get("output_tokens")) is not int
        ):
            return False
        message_id, request_id = message.get("id"), obj.get("requestId")
        key = (message_id, request_id) if type(message_id) is type(request_id) is str else None
        kept = self.keyed.get(key) if key is not None else None
        if kept is not None and kept.usage == usage:
            return True  # a later content block of a response already taken
        ts = _timestamp(raw_ts)
        if ts is None:
            return False
        if model == "<synthetic>":  # Claude Code's stand-in for a failed request
            return True
        session, cwd, intern = obj.get("sessionId"), obj.get("cwd"), self._strings.setdefault
        line = _Line(
            message_id if key else None,
            request_id if key else None,
            intern(session, session) if type(session) is str else self.fallback_session,
            intern(cwd, cwd) if type(cwd) is str else self.fallback_project,
            intern(model, model),
            ts,
            usage,
            reported_cost(obj["costUSD"]) if "costUSD" in obj else None,
            obj.get("isSidechain") is True,
        )
        if key is None:
            self.unkeyed.append(line)
        elif kept is None or _total(usage) > _total(kept.usage):
            self.keyed[key] = line
        return True


def _fallbacks(path: str) -> tuple[str, str]:
    """Session and project for lines without ``sessionId`` / ``cwd``, from the layout
    ``projects/<escaped-cwd>/<session>.jsonl`` or ``.../<session>/subagents/<agent>.jsonl``."""
    parts = Path(path).parts
    session, project = Path(path).stem, parts[-2] if len(parts) > 1 else ""
    if "projects" in parts[:-2]:
        below = parts[len(parts) - parts[::-1].index("projects") :]
        project = below[0]
        if len(below) > 2:
            session = below[1]
    return session, project


# ---- reading a file --------------------------------------------------------------------------


def _read_lines(readinto: Callable[[memoryview], int | None], start: int, stop: int,
                sink: _Sink) -> int:  # fmt: skip
    """Feed the complete lines of file bytes ``[start, stop)`` to ``sink``, one
    buffer at a time; return the offset just after the last complete line."""
    buf = bytearray(max(min(CHUNK_SIZE, stop - start), 1))
    fill = 0  # bytes held; buf[0] starts a line (unless skipping)
    line_pos = read_pos = start  # file offsets of buf[0] and of the next byte to read
    skipping = False  # inside a line longer than MAX_LINE: drop bytes up to its newline
    while read_pos < stop:
        if fill == len(buf):  # one line fills the buffer
            if len(buf) >= MAX_LINE:
                buf, fill, skipping = bytearray(CHUNK_SIZE), 0, True
            else:
                buf = _resized(buf, fill, min(2 * len(buf), MAX_LINE))
        n = readinto(memoryview(buf)[fill : fill + min(len(buf) - fill, stop - read_pos)])
        if not n:
            break  # the file shrank while we read: the next import re-reads it
        read_pos += n
        search_from, fill = fill, fill + n
        if skipping:
            nl = buf.find(b"\n", 0, fill)
            if nl < 0:
                fill = 0
                continue
            skipping = False
            sink.oversized += 1
            buf[: fill - nl - 1] = buf[nl + 1 : fill]
            search_from, fill = 0, fill - nl - 1
            line_pos = read_pos - fill
        last = buf.rfind(b"\n", search_from, fill)
        if last < 0:
            continue
        sink.lines.scan(buf, 0, last + 1)
        if len(sink.lines) >= FLUSH_ROWS:
            sink.flush()
        line_pos += last + 1
        buf[: fill - last - 1] = buf[last + 1 : fill]
        fill -= last + 1
        if len(buf) > CHUNK_SIZE and fill <= CHUNK_SIZE:
            buf = _resized(buf, fill, CHUNK_SIZE)
    sink.bytes_read += read_pos - start
    return line_pos


def _resized(buf: bytearray, fill: int, size: int) -> bytearray:
    new = bytearray(size)
    new[:fill] = memoryview(buf)[:fill]
    return new


# ---- writing ----------------------------------------------------------------------------------


class _Raced(Exception):
    """Another import changed this file's row while we read the file."""


class _Sink:
    """One file's import: its lines, its counters and its rows in the database.

    Writing starts at the first flush (usually at the end of the file), so the
    database is locked while writing rather than while reading."""

    def __init__(self, db: sqlite3.Connection, path: str, known: KnownFile | None,
                 pricer: Pricer, rewrite: bool) -> None:  # fmt: skip
        self.db, self.path, self.known, self.pricer, self.rewrite = db, path, known, pricer, rewrite
        self.lines = _Collector(*_fallbacks(path))
        self.oversized = self.bytes_read = self.rows_before = 0
        self.file_id: int | None = None

    def flush(self) -> None:
        if self.file_id is None:
            begun = globaldb.begin_file(self.db, self.path, self.known, rewrite=self.rewrite)
            if begun is None:
                raise _Raced
            self.file_id, self.rows_before = begun
        price, file_id = self.pricer.price_response, self.file_id
        rows = []
        cost: Decimal | None
        source: str | None
        for line in self.lines.take():
            t = tokens_from_usage(line.usage)
            if line.reported is not None:
                cost, source = line.reported, "reported"
            else:
                priced = price(line.model, t)
                cost, source = priced.usd, priced.source
            rows.append((
                file_id, line.message_id, line.request_id, line.session, line.project,
                line.model, line.ts, t.input, t.output, t.cache_read, t.cache_write_5m,
                t.cache_write_1h, None if cost is None else format(cost, "f"), source,
                int(line.sidechain),
            ))  # fmt: skip
        rows.sort(key=lambda row: (row[1] or "", row[2] or ""))  # index-friendly order
        self.db.executemany(globaldb.UPSERT_USAGE, rows)

    def finish(self, st: os.stat_result, offset: int, head: bytes) -> int:
        """Write the rest and the file's new state (uncommitted); return rows added."""
        self.flush()
        assert self.file_id is not None
        skipped = self.lines.skipped + self.oversized
        if self.known is not None and not self.rewrite:
            skipped += self.known.lines_skipped
        state = KnownFile(self.file_id, st.st_size, st.st_mtime_ns, st.st_ino, offset,
                          len(head), hashlib.sha256(head).hexdigest(), skipped)  # fmt: skip
        return globaldb.end_file(self.db, state) - self.rows_before


# ---- import ----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    files_seen: int = 0
    files_read: int = 0  # files with new bytes read
    files_unchanged: int = 0
    files_rewritten: int = 0  # truncated or rewritten: read again from the start
    files_unreadable: int = 0  # could not be opened or read (logged as a warning)
    bytes_read: int = 0
    entries_added: int = 0  # responses new to the database
    lines_skipped: int = 0  # not JSON, or an assistant line of an unexpected shape
    oversized_lines: int = 0  # longer than MAX_LINE, dropped unparsed
    seconds: float = 0.0


def import_transcripts(db: sqlite3.Connection, files: Sequence[Path], pricer: Pricer, *,
                       on_file: Callable[[Path], None] | None = None) -> ImportReport:  # fmt: skip
    """Import what is new in ``files`` (see the module docstring). ``on_file`` is
    called with each file before it is looked at (for progress)."""
    started = time.perf_counter()
    report = ImportReport()
    known = globaldb.known_files(db)
    began = 0.0
    try:
        for path in files:
            report.files_seen += 1
            if on_file is not None:
                on_file(path)
            where = os.path.abspath(path)
            try:
                st = os.stat(where)
                prev = known.get(where)
                if prev is not None and (prev.size, prev.mtime_ns, prev.inode) == (
                    st.st_size, st.st_mtime_ns, st.st_ino,
                ):  # fmt: skip
                    report.files_unchanged += 1
                    continue
                began = began if db.in_transaction else time.perf_counter()
                _import_file(db, where, prev, pricer, report)
            except FileNotFoundError:
                continue  # gone since it was found; its imported rows stay
            except OSError as exc:
                _log.warning("cannot read transcript %s: %s", where, exc)
                report.files_unreadable += 1
            if db.in_transaction and time.perf_counter() - began >= COMMIT_SECONDS:
                db.execute("COMMIT")
        if db.in_transaction:
            db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    report.seconds = time.perf_counter() - started
    return report


def _import_file(db: sqlite3.Connection, path: str, known: KnownFile | None, pricer: Pricer,
                 report: ImportReport) -> None:  # fmt: skip
    with open(path, "rb", buffering=0) as file:
        st = os.fstat(file.fileno())
        head = os.pread(file.fileno(), min(HEAD_LEN, st.st_size), 0)
        rewrite = known is not None and not _same_start(known, st.st_size, head)
        start = known.offset if known is not None and not rewrite else 0
        sink = _Sink(db, path, known, pricer, rewrite)
        file.seek(start)
        try:
            offset = _read_lines(file.readinto, start, st.st_size, sink)
            added = sink.finish(st, offset, head)
        except _Raced:  # another import took this file meanwhile
            report.files_unchanged += 1
            return
        except OSError:
            if sink.file_id is not None:
                globaldb.undo_file(db)
            raise
    report.files_read += sink.bytes_read > 0
    report.files_unchanged += sink.bytes_read == 0
    report.files_rewritten += rewrite
    report.bytes_read += sink.bytes_read
    report.entries_added += added
    report.lines_skipped += sink.lines.skipped
    report.oversized_lines += sink.oversized


def _same_start(known: KnownFile, size: int, head: bytes) -> bool:
    """Whether the file still begins with what was imported (else it was rewritten)."""
    if size < known.offset or len(head) < known.head_len:
        return False
    return hashlib.sha256(head[: known.head_len]).hexdigest() == known.head_sha
