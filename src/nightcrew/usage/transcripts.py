"""Import Claude Code transcripts (``projects/**/*.jsonl``) into the global usage database.

Transcripts grow to hundreds of MB, and tools that read them whole crash or take
minutes (formats.md §2.3), while a report wants them re-imported on every run. So:

* **Incremental.** Each file's size, mtime, inode, the offset consumed so far
  and a hash of its first bytes are kept. An unchanged file costs one ``stat``;
  a grown one is read from its offset; a truncated or rewritten one is re-read.
* **Bounded memory.** Files are streamed in segments (see ``transcript_lines``);
  rows are written a segment at a time.
* **Fast.** Segments of a big import are read by worker processes, one per CPU,
  while this process writes. Workers price the responses of every model whose rate
  card this process has resolved by the time their task is sent (see ``_Cards``);
  this process prices the rest. A small import reads and prices in-process.

Bad lines are skipped and counted, never fatal. A file's rows and its new offset
are committed in one transaction, so a crash never leaves one without the other.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from nightcrew.usage import globaldb
from nightcrew.usage.globaldb import KnownFile
from nightcrew.usage.pricing import Pricer, RateCard, ResponsePricer
from nightcrew.usage.transcript_files import default_roots, find_transcripts
from nightcrew.usage.transcript_lines import (
    Segment,
    SegmentResult,
    line_start_after,
    read_segment,
    read_segments,
    worker_started,
)

# Read at call time, so tests can shrink them.
HEAD_LEN = 4096  # bytes hashed to notice a rewritten file
SEGMENT_BYTES = 32 << 20  # a file is read in segments of about this size
PARALLEL_BYTES = 64 << 20  # below this much to read, worker processes cost more than they save
MAX_WORKERS = 4
# Small files share a transaction for at most this long: another writer waits at most this
# (busy_timeout is 10 s), and each commit rewrites the pages it changed to the log.
COMMIT_SECONDS = 1.0

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
    head_len: int
    head_sha: str  # "" for a new file: the worker reading its first segment hashes it
    rewrite: bool
    segments: list[Segment] = field(default_factory=list)


_P = TypeVar("_P", Path, str)


def import_transcripts(db: sqlite3.Connection, files: Sequence[_P], pricer: Pricer, *,
                       on_file: Callable[[_P], None] | None = None) -> ImportReport:  # fmt: skip
    """Import what is new in ``files`` (see the module docstring). ``on_file`` is
    called with each file before it is looked at (for progress)."""
    with _collector_paused():
        return _import(db, files, pricer, on_file)


def _import(db: sqlite3.Connection, files: Sequence[_P], pricer: Pricer,
            on_file: Callable[[_P], None] | None) -> ImportReport:  # fmt: skip
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
    pricers = _Pricers(pricer)
    results = _read_all(jobs, pricers.cards)
    if isinstance(results, _WorkerResults):
        # The workers are reading: load the price tables meanwhile, not when the first
        # result is in.
        pricer.preload()
    began = 0.0
    try:
        for job in jobs:
            began = began if db.in_transaction else time.perf_counter()
            if job.known is None and len(job.segments) == 1:
                _write_new_file(db, job, next(results), pricers, report)
            else:
                _write_file(db, job, results, pricers, report)
            if db.in_transaction and time.perf_counter() - began >= COMMIT_SECONDS:
                db.execute("COMMIT")
        if db.in_transaction:
            db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        results.close()
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection meanwhile: an import makes no cycles, but its rows
    (hundreds of thousands of tuples) would make the collector run often, and long."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plan(where: str, known: dict[str, KnownFile], report: ImportReport) -> _FileJob | None:
    """What to read of one file: nothing when unchanged, its new bytes when it grew,
    everything when it was truncated or rewritten. A new file costs one ``stat`` here
    (unless it is big enough to cut in segments): the worker reading it hashes its head."""
    try:
        st = os.stat(where)
        prev = known.get(where)
        if prev is not None and (prev.size, prev.mtime_ns, prev.inode) == (
            st.st_size, st.st_mtime_ns, st.st_ino,
        ):  # fmt: skip
            report.files_unchanged += 1
            return None
        if prev is None and st.st_size <= SEGMENT_BYTES:
            head_len = min(HEAD_LEN, st.st_size)
            job = _FileJob(where, None, st, head_len, "", rewrite=False)
            job.segments.append(Segment(where, 0, st.st_size, head_len))
            return job
        with open(where, "rb", buffering=0) as file:
            fd = file.fileno()
            st = os.fstat(fd)
            if prev is None:
                job = _FileJob(where, None, st, min(HEAD_LEN, st.st_size), "", rewrite=False)
                start = 0
            else:
                head = os.pread(fd, min(HEAD_LEN, st.st_size), 0)
                rewrite = not _same_start(prev, st.st_size, head)
                head_sha = hashlib.sha256(head).hexdigest()
                job = _FileJob(where, prev, st, len(head), head_sha, rewrite)
                start = 0 if rewrite else prev.offset
            # Segments of about SEGMENT_BYTES, cut at line starts, so one big file
            # is read by several workers.
            while True:
                cut = st.st_size
                if st.st_size - start > SEGMENT_BYTES:
                    cut = line_start_after(fd, start + SEGMENT_BYTES, st.st_size)
                head_len = job.head_len if start == 0 and not job.head_sha else -1
                job.segments.append(Segment(where, start, cut, head_len))
                if cut >= st.st_size:
                    return job
                start = cut
    except FileNotFoundError:
        return None  # gone since it was found; its imported rows stay
    except OSError as exc:
        _log.warning("cannot read transcript %s: %s", where, exc)
        report.files_unreadable += 1
        return None


def _read_all(jobs: list[_FileJob],
              cards: _Cards) -> _WorkerResults | Generator[SegmentResult, None, None]:  # fmt: skip
    """Every segment's result, in order: in worker processes (already started when this
    returns) when there is a lot to read and more than one CPU, else here."""
    segments = [s for job in jobs for s in job.segments]
    total = sum(s.stop - s.start for s in segments)
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if total < PARALLEL_BYTES or workers < 2:
        return (read_segment(s) for s in segments)
    return _WorkerResults(segments, workers, cards)


class _WorkerResults(Iterator[SegmentResult]):
    """Segments read by a pool of worker processes, every task submitted at once;
    their results in order. ``close`` cancels what has not started."""

    def __init__(self, segments: list[Segment], workers: int, cards: _Cards) -> None:
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
        self._pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=worker_started
        )
        self._futures = deque(self._pool.submit(read_segments, task, cards) for task in tasks)
        self._ready: deque[SegmentResult] = deque()

    def __next__(self) -> SegmentResult:
        while not self._ready:
            if not self._futures:
                raise StopIteration
            self._ready.extend(self._futures.popleft().result())
        return self._ready.popleft()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _write_new_file(db: sqlite3.Connection, job: _FileJob, result: SegmentResult,
                    pricers: _Pricers, report: ImportReport) -> None:  # fmt: skip
    """A new file read in one segment: its state and its rows in two statements, in
    the open transaction (the common case of a cold import)."""
    if result.error is not None:
        if not isinstance(result.error, FileNotFoundError):  # deleted while read
            _log.warning("cannot read transcript %s: %s", job.path, result.error)
            report.files_unreadable += 1
        return
    st = job.st
    skipped = result.skipped + result.oversized
    state = KnownFile(0, st.st_size, st.st_mtime_ns, st.st_ino, result.end, job.head_len,
                      result.head_sha, skipped)  # fmt: skip
    file_id = globaldb.add_file(db, job.path, state)
    if file_id is None:  # another import took this file meanwhile
        report.files_unchanged += 1
        return
    rows = _rows(file_id, result, pricers)
    db.executemany(globaldb.UPSERT_USAGE, rows)
    report.entries_added += len(rows)  # a new file, its rows distinct: all inserted
    _count(report, job, result.bytes_read, result.skipped, result.oversized)


def _write_file(db: sqlite3.Connection, job: _FileJob, results: Iterator[SegmentResult],
                pricers: _Pricers, report: ImportReport) -> None:  # fmt: skip
    """One file's rows, a segment at a time, and its new state, in the open transaction
    (and a savepoint of it when the file has several segments). Every one of its
    segments' results is consumed."""
    file_id = rows_before = skipped = oversized = read = end = 0
    head_sha = job.head_sha
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
            head_sha = head_sha or result.head_sha
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
    st = job.st
    state = KnownFile(file_id, st.st_size, st.st_mtime_ns, st.st_ino, end, job.head_len,
                      head_sha, total_skipped)  # fmt: skip
    report.entries_added += globaldb.end_file(db, state, undoable=undoable) - rows_before
    _count(report, job, read, skipped, oversized)


def _count(report: ImportReport, job: _FileJob, read: int, skipped: int, oversized: int) -> None:
    report.files_read += read > 0
    report.files_unchanged += read == 0
    report.files_rewritten += job.rewrite
    report.bytes_read += read
    report.lines_skipped += skipped
    report.oversized_lines += oversized


def _rows(file_id: int, result: SegmentResult, pricers: _Pricers) -> list[tuple[object, ...]]:
    """Database rows of a segment: the worker's, and those it could not price, priced
    here (cost NULL when the model's price is unknown)."""
    rows: list[tuple[object, ...]] = [(file_id, *row) for row in result.rows]
    add = rows.append
    for mid, rid, session, project, model, ts, i, o, r, w5m, w1h, _, _, side in result.unpriced:
        cost = pricers[model](i, o, r, w5m, w1h)
        add((file_id, mid, rid, session, project, model, ts, i, o, r, w5m, w1h, cost,
             None if cost is None else "priced", side))  # fmt: skip
    return rows


class _Cards(Mapping[str, RateCard]):
    """The rate cards resolved so far, handed to every worker task. A task's arguments
    are pickled when the pool sends the task to a worker (a few tasks ahead of the
    workers), not when it is submitted: so tasks submitted before the first model was
    resolved still carry the cards resolved by the time they are sent. It pickles as a
    plain dict of them. The dict is replaced, never changed, as the pool's feeder thread
    may pickle it at any time. Rows of a model without a card come back unpriced:
    correct, only slower."""

    def __init__(self) -> None:
        self.current: dict[str, RateCard] = {}

    def add(self, model: str, card: RateCard) -> None:
        self.current = {**self.current, model: card}

    def __getitem__(self, model: str) -> RateCard:
        return self.current[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self.current)

    def __len__(self) -> int:
        return len(self.current)

    def __reduce__(self) -> tuple[type[dict[str, RateCard]], tuple[dict[str, RateCard]]]:
        return dict, (self.current,)


class _Pricers(dict[str, ResponsePricer]):
    """One response pricer per model (an unknown model is warned about once, by the
    Pricer); the models with a rate card also go to the workers' cards."""

    def __init__(self, pricer: Pricer) -> None:
        super().__init__()
        self.pricer = pricer
        self.cards = _Cards()

    def __missing__(self, model: str) -> ResponsePricer:
        self[model] = found = self.pricer.response_pricer(model)
        card = self.pricer.rate_card(model)
        if card is not None:
            self.cards.add(model, card)
        return found


def _same_start(known: KnownFile, size: int, head: bytes) -> bool:
    """Whether the file still begins with what was imported (else it was rewritten)."""
    if size < known.offset or len(head) < known.head_len:
        return False
    return hashlib.sha256(head[: known.head_len]).hexdigest() == known.head_sha
