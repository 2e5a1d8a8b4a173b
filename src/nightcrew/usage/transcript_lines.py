"""Reading Claude Code transcript bytes into usage rows: the part of an import
that needs no database, so worker processes can do it in parallel.

A file is read as one or more :class:`Segment` byte ranges that start and end at
line boundaries. Binary chunks go through one buffer, never the whole file (no
``mmap`` either: its pages count as resident). Only lines holding the JSON string
``"assistant"`` (found at ``memchr``-like speed) are parsed; the others are only
checked for looking like a JSON object, to count garbage. A line longer than
:data:`MAX_LINE` is dropped without being held whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import msgspec
import orjson

from nightcrew.usage.anthropic_format import reported_cost, tokens_from_usage
from nightcrew.usage.globaldb import format_ts

# Read at call time, so tests can shrink them.
CHUNK_SIZE = 8 << 20  # bytes per read
MAX_LINE = 64 << 20  # a longer line is dropped unparsed

# In a JSON string a quote is escaped, so this is JSON syntax: a "type" key whose value is
# "assistant", written compactly as Claude Code writes every line. A long needle is found
# faster (CPython's search skips further), and this one costs a third less than '"assistant"'.
_NEEDLE = b'"type":"assistant"'
# A buffer without it is searched again for this, so JSON written with spaces (not by
# Claude Code) is still read.
_LOOSE_NEEDLE = b'"assistant"'
_LBRACE, _RBRACE = ord("{"), ord("}")

# One response: (message_id, request_id, session, project, model, ts, input, output,
# cache_read, cache_write_5m, cache_write_1h, Claude Code's own cost as Decimal text or
# None (then the importer prices it), sidechain).
Row = tuple[
    str | None, str | None, str, str, str, str, int, int, int, int, int, str | None, int,
]  # fmt: skip


class Segment(NamedTuple):
    """Bytes ``[start, stop)`` of one file; ``start`` is a line start."""

    path: str
    start: int
    stop: int
    session: str  # for lines without sessionId / cwd (see fallbacks)
    project: str


class SegmentResult(NamedTuple):
    rows: list[Row]
    skipped: int  # lines that are not JSON objects, or assistant lines of an odd shape
    oversized: int  # lines longer than MAX_LINE
    end: int  # file offset just after the last complete line read
    bytes_read: int
    error: OSError | None  # the segment could not be read


_Counts = tuple[int, int, int, int, int]  # input, output, cache read, 5m write, 1h write


# The fields of an assistant line that matter, decoded in C by msgspec: other
# fields (the message content above all) are skipped without building objects.
# A negative count fails the decode and takes the slow path (tokens_from_usage's rules).
_Tokens = Annotated[int, msgspec.Meta(ge=0)]


class _CacheSplit(msgspec.Struct):
    ephemeral_1h_input_tokens: _Tokens = 0


class _Usage(msgspec.Struct):
    input_tokens: _Tokens
    output_tokens: _Tokens
    cache_read_input_tokens: _Tokens = 0
    cache_creation_input_tokens: _Tokens = 0
    cache_creation: _CacheSplit | None = None


class _Message(msgspec.Struct):
    model: str
    usage: _Usage
    id: str | None = None


class _AssistantLine(msgspec.Struct):
    type: str
    timestamp: str
    message: _Message
    requestId: str | None = None
    sessionId: str | None = None
    cwd: str | None = None
    isSidechain: bool = False
    costUSD: float | None = None


_DECODE = msgspec.json.Decoder(_AssistantLine).decode


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


def _counts(usage: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """``tokens_from_usage`` as a tuple, with a fast path for the usual shape (this
    runs for every response of a multi-GB import)."""
    i, o = usage.get("input_tokens"), usage.get("output_tokens")
    r, w = usage.get("cache_read_input_tokens", 0), usage.get("cache_creation_input_tokens", 0)
    split = usage.get("cache_creation")
    h = split.get("ephemeral_1h_input_tokens", 0) if type(split) is dict else 0
    if type(i) is type(o) is type(r) is type(w) is type(h) is int and min(i, o, r, w, h) >= 0:
        if w:
            h = min(h, w)
        return i, o, r, max(w - h, 0), h
    t = tokens_from_usage(usage)
    return t.input, t.output, t.cache_read, t.cache_write_5m, t.cache_write_1h


class _Collector:
    """The usage lines of one file, deduplicated on (message id, request id):
    Claude Code writes one line per content block, each with the response's usage.
    Of two copies the larger total wins, else the first."""

    def __init__(self, session: str, project: str) -> None:
        self.fallback_session, self.fallback_project = session, project
        self.keyed: dict[tuple[str, str], Row] = {}
        self.unkeyed: list[Row] = []
        self.skipped = self.oversized = self.bytes_read = 0
        self._strings: dict[str, str] = {}  # one object per repeated session, cwd, model

    def __len__(self) -> int:
        return len(self.keyed) + len(self.unkeyed)

    def rows(self) -> list[Row]:
        return [*self.keyed.values(), *self.unkeyed]

    def scan(self, buf: bytearray, pos: int, end: int) -> None:
        """Take the complete lines of ``buf[pos:end]`` (``buf[end - 1]`` is a newline)."""
        find, rfind = buf.find, buf.rfind
        needle = _NEEDLE
        hit = find(needle, pos, end)
        if hit < 0:  # no compact assistant line here: perhaps JSON written with spaces
            needle = _LOOSE_NEEDLE
            hit = find(needle, pos, end)
        while pos < end:
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
            hit = find(needle, pos, end)

    def _add(self, raw: bytearray) -> None:
        try:
            line = _DECODE(raw)
        except msgspec.DecodeError:
            self._add_odd(raw)  # not JSON, not an assistant line, or an odd shape
            return
        if line.type != "assistant":
            return
        m = line.message
        u = m.usage
        # tokens_from_usage's rules, inline: this runs for every line of a big import
        w = u.cache_creation_input_tokens
        h = u.cache_creation.ephemeral_1h_input_tokens if u.cache_creation is not None else 0
        if w and h > w:
            h = w
        counts = (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_input_tokens,
            w - h if w > h else 0,
            h,
        )
        if not self._take(
            m.id, line.requestId, line.sessionId, line.cwd, m.model, line.timestamp,
            counts, line.costUSD, line.isSidechain,
        ):  # fmt: skip
            self.skipped += 1

    def _add_odd(self, raw: bytearray) -> None:
        """The slow path: any JSON, judged field by field."""
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.skipped += 1
            return
        if type(obj) is not dict or (obj.get("type") == "assistant" and not self._assistant(obj)):
            self.skipped += 1

    def _assistant(self, obj: dict[str, Any]) -> bool:
        """An assistant line the decoder refused; False when its shape is unexpected."""
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
        session, cwd = obj.get("sessionId"), obj.get("cwd")
        return self._take(
            message_id if type(message_id) is str else None,
            request_id if type(request_id) is str else None,
            session if type(session) is str else None,
            cwd if type(cwd) is str else None,
            model, raw_ts, _counts(usage), obj.get("costUSD"), obj.get("isSidechain") is True,
        )  # fmt: skip

    def _take(self, message_id: str | None, request_id: str | None, session: str | None,
              cwd: str | None, model: str, raw_ts: str, counts: _Counts, cost: object,
              sidechain: bool) -> bool:  # fmt: skip
        """Keep one response (or a better copy of one); False when its time is bad."""
        key = (
            (message_id, request_id) if message_id is not None and request_id is not None else None
        )
        kept = self.keyed.get(key) if key is not None else None
        if kept is not None and kept[6:11] == counts:
            return True  # a later content block of a response already taken
        ts = _timestamp(raw_ts)
        if ts is None:
            return False
        if model == "<synthetic>":  # Claude Code's stand-in for a failed request
            return True
        intern = self._strings.setdefault
        reported = reported_cost(cost) if cost is not None else None
        row: Row = (
            message_id if key else None,
            request_id if key else None,
            intern(session, session) if session is not None else self.fallback_session,
            intern(cwd, cwd) if cwd is not None else self.fallback_project,
            intern(model, model),
            ts,
            *counts,
            None if reported is None else format(reported, "f"),
            int(sidechain),
        )  # fmt: skip
        if key is None:
            self.unkeyed.append(row)
        elif kept is None or sum(counts) > sum(kept[6:11]):
            self.keyed[key] = row
        return True


def fallbacks(path: str) -> tuple[str, str]:
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
                sink: _Collector) -> int:  # fmt: skip
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
        sink.scan(buf, 0, last + 1)
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


def read_segment(segment: Segment) -> SegmentResult:
    """The usage rows in one segment (deduplicated within it), not yet priced."""
    sink = _Collector(segment.session, segment.project)
    try:
        with open(segment.path, "rb", buffering=0) as file:
            file.seek(segment.start)
            end = _read_lines(file.readinto, segment.start, segment.stop, sink)
    except OSError as exc:
        return SegmentResult([], 0, 0, segment.start, 0, exc)
    return SegmentResult(sink.rows(), sink.skipped, sink.oversized, end, sink.bytes_read, None)


def read_segments(segments: list[Segment]) -> list[SegmentResult]:
    """One task for a worker process: several segments, so small files travel together."""
    return [read_segment(s) for s in segments]


def line_start_after(fd: int, offset: int, stop: int) -> int:
    """The first line start at or after ``offset`` (``stop`` if none before it)."""
    pos = offset
    while pos < stop:
        chunk = os.pread(fd, min(1 << 16, stop - pos), pos)
        if not chunk:
            return stop
        nl = chunk.find(b"\n")
        if nl >= 0:
            return pos + nl + 1
        pos += len(chunk)
    return stop
