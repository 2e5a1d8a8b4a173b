"""Reading Claude Code transcript bytes into usage rows: the part of an import
that needs no database, so worker processes can do it in parallel.

A file is read as one or more :class:`Segment` byte ranges that start and end at
line boundaries; a file's last line may lack its newline, and is taken when it is a
whole JSON object (the offset then ends after it, before the newline to come).
Binary chunks go through one buffer, never the whole file (no
``mmap`` either: its pages count as resident, and its page faults cost as much as
the copy ``readinto`` makes). Only lines holding the JSON string ``"assistant"``
are parsed: StringZilla finds it with SIMD, four times faster than ``bytes.find``.
The others are only checked for looking like a JSON object, to count garbage. A
line longer than :data:`MAX_LINE` is dropped without being held whole.

A worker prices the responses whose model has a :class:`~nightcrew.usage.pricing.RateCard`
in the cards it was handed, so the process writing the database does not have to;
the others come back unpriced, for the Pricer of the parent process.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import msgspec
import orjson
import stringzilla

from nightcrew.usage.anthropic_format import reported_cost, tokens_from_usage
from nightcrew.usage.globaldb import format_ts
from nightcrew.usage.pricing import RateCard, ResponsePricer, card_pricer

# Read at call time, so tests can shrink them.
CHUNK_SIZE = 1 << 20  # bytes per read: the copy and the search stay in the CPU's cache
MAX_LINE = 64 << 20  # a longer line is dropped unparsed

# In a JSON string a quote is escaped, so this is JSON syntax: a "type" key whose value is
# "assistant", written compactly as Claude Code writes every line. A long needle is found
# faster (CPython's search skips further), and this one costs a third less than '"assistant"'.
_NEEDLE = b'"type":"assistant"'
# A buffer without it is searched again for this, so JSON written with spaces (not by
# Claude Code) is still read.
_LOOSE_NEEDLE = b'"assistant"'
_LBRACE, _RBRACE = ord("{"), ord("}")

# One response, a row of ``transcript_usage`` but its file id: (message_id, request_id,
# session, project, model, ts, input, output, cache_read, cache_write_5m, cache_write_1h,
# cost as Decimal text, cost source, sidechain). Cost and source are None when the model had
# no card (the parent prices it) or its price is unknown.
Row = tuple[
    str | None, str | None, str, str, str, str, int, int, int, int, int, str | None,
    str | None, int,
]  # fmt: skip
Cards = Mapping[str, RateCard]  # what a worker can price by itself, by model


class Segment(NamedTuple):
    """Bytes ``[start, stop)`` of one file; ``start`` is a line start."""

    path: str
    start: int
    stop: int
    head_len: int = -1  # >= 0: also hash the file's first head_len bytes (its head)


class SegmentResult(NamedTuple):
    rows: list[Row]  # priced, or with a reported cost
    unpriced: list[Row]  # their model had no card: cost and source are None
    skipped: int  # lines that are not JSON objects, or assistant lines of an odd shape
    oversized: int  # lines longer than MAX_LINE
    end: int  # file offset just after the last complete line read
    bytes_read: int
    head_sha: str  # sha256 hex of the file's head when the segment asked for it, else ""
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
_fromisoformat = datetime.fromisoformat


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

    def __init__(self, path: str, cards: Cards) -> None:
        self.path = path
        self._fallbacks: tuple[str, str] | None = None
        self.keyed: dict[tuple[str, str], Row] = {}
        self.unkeyed: list[Row] = []
        self.skipped = self.oversized = self.bytes_read = 0
        strings: dict[str, str] = {}  # one object per repeated session, cwd, model
        self._intern = strings.setdefault
        self._cards = cards
        self._pricers: dict[str, ResponsePricer | None] = {}

    def __len__(self) -> int:
        return len(self.keyed) + len(self.unkeyed)

    def rows(self) -> tuple[list[Row], list[Row]]:
        """The rows, sorted for the id index: those priced (or with a reported cost),
        and those whose model had no card."""
        rows: list[Row] = []
        unpriced: list[Row] = []
        for row in (*self.keyed.values(), *self.unkeyed):
            (rows if row[12] is not None else unpriced).append(row)
        rows.sort(key=_ids)
        unpriced.sort(key=_ids)
        return rows, unpriced

    def scan(self, buf: bytearray, view: Any, pos: int, end: int) -> None:
        """Take the complete lines of ``buf[pos:end]`` (``buf[end - 1]`` is a newline);
        ``view`` is a ``stringzilla.Str`` of ``buf``."""
        find, rfind = view.find, view.rfind
        lines = memoryview(buf)  # a line is decoded in place, not copied out
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
            self._add(lines[stop:nl])
            pos = nl + 1
            hit = find(needle, pos, end)

    def _add(self, raw: memoryview) -> None:
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
        split = u.cache_creation
        h = split.ephemeral_1h_input_tokens if split is not None else 0
        if w and h > w:
            h = w
        counts = (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_input_tokens,
            w - h if w > h else 0,
            h,
        )
        mid, rid = m.id, line.requestId
        key = kept = None
        if mid is not None and rid is not None:
            key = (mid, rid)
            kept = self.keyed.get(key)
            if kept is not None and kept[6:11] == counts:
                return  # a later content block of a response already taken: the usual copy
        raw_ts = line.timestamp
        if len(raw_ts) == 24 and raw_ts[23] == "Z" and raw_ts[4:20:3] == "--T::.":
            # Claude Code's own form, 2026-11-21T09:39:44.440Z: checked by parsing it,
            # rewritten 10x cheaper than by format_ts (see _timestamp)
            try:
                _fromisoformat(raw_ts)
            except ValueError:
                self.skipped += 1
                return
            ts: str | None = f"{raw_ts[:19]}.{raw_ts[20:23]}000+00:00"
        else:
            ts = _timestamp(raw_ts)
        if ts is None:
            self.skipped += 1
            return
        self._keep(key, kept, line.sessionId, line.cwd, m.model, ts, counts, line.costUSD,
                   line.isSidechain)  # fmt: skip

    def _add_odd(self, raw: memoryview) -> None:
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
        self._keep(key, kept, session, cwd, model, ts, counts, cost, sidechain)
        return True

    def _keep(self, key: tuple[str, str] | None, kept: Row | None, session: str | None,
              cwd: str | None, model: str, ts: str, counts: _Counts, cost: object,
              sidechain: bool) -> None:  # fmt: skip
        """Keep one response whose time is good, unless a copy at least as large (``kept``)
        is kept already."""
        if model == "<synthetic>":  # Claude Code's stand-in for a failed request
            return
        price: str | None
        if cost is None or (reported := reported_cost(cost)) is None:
            pricer = self._pricers.get(model, _UNSEEN)
            if pricer is _UNSEEN:
                card = self._cards.get(model)
                self._pricers[model] = pricer = None if card is None else card_pricer(card)
            if pricer is None:
                price = source = None  # the parent prices it
            else:
                price, source = pricer(*counts), "priced"
        else:
            price, source = format(reported, "f"), "reported"
        if session is None or cwd is None:
            if self._fallbacks is None:
                self._fallbacks = fallbacks(self.path)
            session = session if session is not None else self._fallbacks[0]
            cwd = cwd if cwd is not None else self._fallbacks[1]
        intern = self._intern
        i, o, r, w5m, w1h = counts
        row: Row = (
            key[0] if key else None, key[1] if key else None, intern(session, session),
            intern(cwd, cwd), intern(model, model), ts, i, o, r, w5m, w1h, price, source,
            1 if sidechain else 0,
        )  # fmt: skip
        if key is None:
            self.unkeyed.append(row)
        elif kept is None or sum(counts) > sum(kept[6:11]):
            self.keyed[key] = row


def _ids(row: Row) -> tuple[str, str]:
    return row[0] or "", row[1] or ""


def _unseen(i: int, o: int, r: int, w5m: int, w1h: int) -> str | None:
    raise AssertionError("a marker, never called")


_UNSEEN: ResponsePricer = _unseen


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
    # A stringzilla.Str does not pin its buffer: buf is never resized in place, and a new
    # buffer gets a new view.
    buf = _chunk_buffer()
    view = stringzilla.Str(buf)
    fill = 0  # bytes held; buf[0] starts a line (unless skipping)
    line_pos = read_pos = start  # file offsets of buf[0] and of the next byte to read
    skipping = False  # inside a line longer than MAX_LINE: drop bytes up to its newline
    while read_pos < stop:
        if fill == len(buf):  # one line fills the buffer
            if len(buf) >= MAX_LINE:
                buf, fill, skipping = bytearray(CHUNK_SIZE), 0, True
            else:
                buf = _resized(buf, fill, min(2 * len(buf), MAX_LINE))
            view = stringzilla.Str(buf)
        n = readinto(memoryview(buf)[fill : fill + min(len(buf) - fill, stop - read_pos)])
        if not n:
            break  # the file shrank while we read: the next import re-reads it
        read_pos += n
        search_from, fill = fill, fill + n
        if skipping:
            nl = view.find(b"\n", 0, fill)
            if nl < 0:
                fill = 0
                continue
            skipping = False
            sink.oversized += 1
            buf[: fill - nl - 1] = buf[nl + 1 : fill]
            search_from, fill = 0, fill - nl - 1
            line_pos = read_pos - fill
        last = view.rfind(b"\n", search_from, fill)
        if last < 0:
            continue
        sink.scan(buf, view, 0, last + 1)
        line_pos += last + 1
        buf[: fill - last - 1] = buf[last + 1 : fill]  # same length: no resize
        fill -= last + 1
        if len(buf) > CHUNK_SIZE and fill <= CHUNK_SIZE:
            buf = _resized(buf, fill, CHUNK_SIZE)
            view = stringzilla.Str(buf)
    if fill and not skipping and read_pos == stop and _complete(memoryview(buf)[:fill]):
        # The file ends in a line without its newline (still being written, or cut by a
        # crash) that is a whole JSON object: a prefix of a JSON object never is one, so
        # this line is done. Taken now, and the offset goes past it: what is appended
        # later ("\n" and more lines) is read from there, the "\n" as a blank line.
        tail = bytearray(memoryview(buf)[:fill])
        tail.append(0x0A)
        sink.scan(tail, stringzilla.Str(tail), 0, fill + 1)
        line_pos += fill
    sink.bytes_read += read_pos - start
    _chunk_buffer_done(buf)
    return line_pos


def _complete(line: memoryview) -> bool:
    """Whether an unterminated last line is a whole JSON object (else it is left for the
    next import, which sees it finished)."""
    if line[0] != _LBRACE:
        return False
    try:
        return type(orjson.loads(line)) is dict
    except orjson.JSONDecodeError:
        return False


_spare: list[bytearray] = []  # one chunk buffer, reused: a new one costs page faults


def _chunk_buffer() -> bytearray:
    """A CHUNK_SIZE buffer: the spare one if free (a worker reads hundreds of files)."""
    try:
        buf = _spare.pop()
    except IndexError:
        return bytearray(CHUNK_SIZE)
    return buf if len(buf) == CHUNK_SIZE else bytearray(CHUNK_SIZE)


def _chunk_buffer_done(buf: bytearray) -> None:
    if len(buf) == CHUNK_SIZE and not _spare:
        _spare.append(buf)


def _resized(buf: bytearray, fill: int, size: int) -> bytearray:
    new = bytearray(size)
    new[:fill] = memoryview(buf)[:fill]
    return new


def read_segment(segment: Segment, cards: Cards | None = None) -> SegmentResult:
    """The usage rows in one segment (deduplicated within it), priced where ``cards``
    has the model's card."""
    sink = _Collector(segment.path, cards or {})
    head_sha = ""
    try:
        with open(segment.path, "rb", buffering=0) as file:
            if segment.head_len >= 0:
                head = os.pread(file.fileno(), segment.head_len, 0)
                # a file that shrank meanwhile gets no hash: the next import reads it again
                head_sha = hashlib.sha256(head).hexdigest() if len(head) == segment.head_len else ""
            file.seek(segment.start)
            end = _read_lines(file.readinto, segment.start, segment.stop, sink)
    except OSError as exc:
        return SegmentResult([], [], 0, 0, segment.start, 0, "", exc)
    rows, unpriced = sink.rows()
    return SegmentResult(
        rows, unpriced, sink.skipped, sink.oversized, end, sink.bytes_read, head_sha, None
    )


def read_segments(segments: list[Segment], cards: Cards) -> list[SegmentResult]:
    """One task for a worker process: several segments, so small files travel together."""
    return [read_segment(s, cards) for s in segments]


def worker_started() -> None:
    """Set up a worker process: no cyclic garbage collector. A task builds tens of
    thousands of tuples that refcounting frees; the collector would walk them again and
    again for nothing (a tenth of the worker's time)."""
    gc.disable()


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
