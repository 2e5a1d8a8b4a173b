"""Import Claude Code transcripts (``projects/**/*.jsonl``) into the global usage database.

Transcripts grow to hundreds of MB, and tools that read them whole crash or take
minutes (formats.md §2.3), while a report wants them re-imported on every run. So:

* **Incremental.** Each file's size, mtime, inode, the offset consumed so far
  and a hash of its first bytes are kept. An unchanged file costs one ``stat``;
  a grown one is read from its offset; a truncated or rewritten one is re-read.
* **Bounded memory.** Files are streamed in segments (see ``transcript_lines``);
  rows are written a segment at a time.
* **Fast.** Segments of a big import are read by worker processes, one per CPU,
  while this process prices and writes; a small import reads in-process.

Bad lines are skipped and counted, never fatal. A file's rows and its new offset
are committed in one transaction, so a crash never leaves one without the other.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from nightcrew.usage import globaldb
from nightcrew.usage.globaldb import KnownFile
from nightcrew.usage.pricing import Pricer, ResponsePricer
from nightcrew.usage.transcript_files import default_roots, find_transcripts
from nightcrew.usage.transcript_lines import (
    Segment,
    SegmentResult,
    fallbacks,
    line_start_after,
    read_segment,
    read_segments,
)

# Read at call time, so tests can shrink them.
HEAD_LEN = 4096  # bytes hashed to notice a rewritten file
SEGMENT_BYTES = 32 << 20  # a file is read in segments of about this size
PARALLEL_BYTES = 64 << 20  # below this much to read, worker processes cost more than they save
MAX_WORKERS = 4
COMMIT_SECONDS = 0.25  # small files share a transaction for at most this long

_log = logging.getLogger(__name__)

__all__ = ["ImportReport", "default_roots", "find_transcripts", "import_transcripts"]


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


@dataclass
class _FileJob:
    """One file with bytes to read: what is known about it and its segments."""

    path: str
    known: KnownFile | None
    st: os.stat_result
    head: bytes
    rewrite: bool
    segments: list[Segment] = field(default_factory=list)


def import_transcripts(db: sqlite3.Connection, files: Sequence[Path], pricer: Pricer, *,
                       on_file: Callable[[Path], None] | None = None) -> ImportReport:  # fmt: skip
    """Import what is new in ``files`` (see the module docstring). ``on_file`` is
    called with each file before it is looked at (for progress)."""
    started = time.perf_counter()
    report = ImportReport()
    known = globaldb.known_files(db)
    jobs: list[_FileJob] = []
    for path in files:
        report.files_seen += 1
        if on_file is not None:
            on_file(path)
        job = _plan(os.path.abspath(path), known, report)
        if job is not None:
            jobs.append(job)
    results = _read_all(jobs)
    pricers = _Pricers(pricer)
    began = 0.0
    try:
        for job in jobs:
            began = began if db.in_transaction else time.perf_counter()
            _write_file(db, job, results, pricers, report)
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


def _plan(where: str, known: dict[str, KnownFile], report: ImportReport) -> _FileJob | None:
    """What to read of one file: nothing when unchanged, its new bytes when it grew,
    everything when it was truncated or rewritten."""
    try:
        st = os.stat(where)
        prev = known.get(where)
        if prev is not None and (prev.size, prev.mtime_ns, prev.inode) == (
            st.st_size, st.st_mtime_ns, st.st_ino,
        ):  # fmt: skip
            report.files_unchanged += 1
            return None
        with open(where, "rb", buffering=0) as file:
            fd = file.fileno()
            st = os.fstat(fd)
            head = os.pread(fd, min(HEAD_LEN, st.st_size), 0)
            rewrite = prev is not None and not _same_start(prev, st.st_size, head)
            start = prev.offset if prev is not None and not rewrite else 0
            job = _FileJob(where, prev, st, head, rewrite)
            session, project = fallbacks(where)
            # Segments of about SEGMENT_BYTES, cut at line starts, so one big file
            # is read by several workers.
            while True:
                cut = st.st_size
                if st.st_size - start > SEGMENT_BYTES:
                    cut = line_start_after(fd, start + SEGMENT_BYTES, st.st_size)
                job.segments.append(Segment(where, start, cut, session, project))
                if cut >= st.st_size:
                    return job
                start = cut
    except FileNotFoundError:
        return None  # gone since it was found; its imported rows stay
    except OSError as exc:
        _log.warning("cannot read transcript %s: %s", where, exc)
        report.files_unreadable += 1
        return None


def _read_all(jobs: list[_FileJob]) -> Iterator[SegmentResult]:
    """Every segment's result, in order: in worker processes when there is a lot
    to read and more than one CPU, else here."""
    segments = [s for job in jobs for s in job.segments]
    total = sum(s.stop - s.start for s in segments)
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if total < PARALLEL_BYTES or workers < 2:
        return (read_segment(s) for s in segments)
    return _read_in_workers(segments, workers)


def _read_in_workers(segments: list[Segment], workers: int) -> Iterator[SegmentResult]:
    # Small files travel together, so a task is about one segment's worth of bytes.
    tasks: list[list[Segment]] = [[]]
    size = 0
    for segment in segments:
        if size >= SEGMENT_BYTES:
            tasks.append([])
            size = 0
        tasks[-1].append(segment)
        size += segment.stop - segment.start
    # fork: workers need nothing but this module, and start in milliseconds.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for results in pool.map(read_segments, tasks):
            yield from results


def _write_file(db: sqlite3.Connection, job: _FileJob, results: Iterator[SegmentResult],
                pricers: _Pricers, report: ImportReport) -> None:  # fmt: skip
    """One file's rows, a segment at a time, and its new state, in the open transaction
    (and a savepoint of it when the file has several segments). Every one of its
    segments' results is consumed."""
    file_id = rows_before = skipped = oversized = read = end = 0
    failed: OSError | None = None
    undoable = len(job.segments) > 1  # rows written before a later segment fails
    for number, result in enumerate(next(results) for _ in job.segments):
        if failed is not None or file_id < 0:
            continue  # drain the rest of this file's results
        if result.error is not None:
            failed = result.error
            if number:
                globaldb.undo_file(db)
            continue
        if number == 0:
            begun = globaldb.begin_file(
                db, job.path, job.known, rewrite=job.rewrite, undoable=undoable
            )
            if begun is None:  # another import took this file meanwhile
                report.files_unchanged += 1
                file_id = -1
                continue
            file_id, rows_before = begun
        db.executemany(globaldb.UPSERT_USAGE, _rows(file_id, result, pricers))
        skipped += result.skipped
        oversized += result.oversized
        read += result.bytes_read
        end = result.end
    if file_id < 0 or isinstance(failed, FileNotFoundError):
        return  # taken by another import, or deleted while read: earlier rows stay
    if failed is not None:
        _log.warning("cannot read transcript %s: %s", job.path, failed)
        report.files_unreadable += 1
        return
    total_skipped = skipped + oversized
    if job.known is not None and not job.rewrite:
        total_skipped += job.known.lines_skipped
    st, head_sha = job.st, hashlib.sha256(job.head).hexdigest()
    state = KnownFile(file_id, st.st_size, st.st_mtime_ns, st.st_ino, end, len(job.head),
                      head_sha, total_skipped)  # fmt: skip
    report.entries_added += globaldb.end_file(db, state, undoable=undoable) - rows_before
    report.files_read += read > 0
    report.files_unchanged += read == 0
    report.files_rewritten += job.rewrite
    report.bytes_read += read
    report.lines_skipped += skipped
    report.oversized_lines += oversized


def _rows(file_id: int, result: SegmentResult, pricers: _Pricers) -> list[tuple[object, ...]]:
    """Database rows of a segment, priced (Claude Code's own cost when the line had one,
    as old versions wrote) and sorted for the index."""
    rows: list[tuple[object, ...]] = []
    add = rows.append
    for mid, rid, session, project, model, ts, i, o, r, w5m, w1h, reported, side in result.rows:
        if reported is None:
            cost = pricers[model](i, o, r, w5m, w1h)
            source = None if cost is None else "priced"
        else:
            cost, source = reported, "reported"
        add((file_id, mid, rid, session, project, model, ts, i, o, r, w5m, w1h, cost, source,
             side))  # fmt: skip
    rows.sort(key=lambda row: (row[1] or "", row[2] or ""))
    return rows


class _Pricers(dict[str, ResponsePricer]):
    """One response pricer per model (an unknown model is warned about once, by the Pricer)."""

    def __init__(self, pricer: Pricer) -> None:
        super().__init__()
        self.pricer = pricer

    def __missing__(self, model: str) -> ResponsePricer:
        self[model] = found = self.pricer.response_pricer(model)
        return found


def _same_start(known: KnownFile, size: int, head: bytes) -> bool:
    """Whether the file still begins with what was imported (else it was rewritten)."""
    if size < known.offset or len(head) < known.head_len:
        return False
    return hashlib.sha256(head[: known.head_len]).hexdigest() == known.head_sha
