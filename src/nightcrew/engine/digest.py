"""Short failure digests for the retry prompt, and stable failure signatures.

A gate's full output stays on disk; the agent gets what it needs to act on:
which tests fail (regressions first), the first error lines, the runner's
summary line and where the full log is. Everything here is deterministic so
the same failure always reads, and hashes, the same.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Protocol


class GateResult(Protocol):
    """What a digest reads of one gate's result (``gates.GateResult`` is one):
    the digest knows no more of gates, so gates may use it."""

    @property
    def name(self) -> str: ...

    @property
    def command(self) -> str | None: ...

    @property
    def passed(self) -> bool: ...

    @property
    def digest(self) -> str: ...

    @property
    def signature(self) -> str | None: ...


MAX_DIGEST_CHARS = 2000
TRUNCATED = "…(truncated)"
MAX_ERROR_LINES = 12
MAX_LINE_CHARS = 200
MAX_IDS_LISTED = 15
TAIL_LINES = 8

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SEPARATOR = re.compile(r"^\s*[=_*-]{3,}.*[=_*-]{3,}\s*$|^\s*[=_*-]{3,}\s*$")
_ERROR_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"^E\s{2,}\S",  # pytest assertion detail
        r"^(FAILED|ERROR)\s",  # pytest short summary
        r"^[^\s:]+:\d+: \w*(Error|Exception)\b",  # pytest "file:line: AssertionError"
        r"\b\w*Error:",
        r"\berror(\[\w+\])?:",
        r"Exception",
        r"\bFAIL",
        r"\bpanic:",
        r"^make(\[\d+\])?: \*\*\*",
        r"^npm (ERR!|error)",
    )
)
_FRAME = re.compile(r'^\s+File "[^"]*", line \d+')
_SUMMARY_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"\b\d+ (passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b.*\bin \d+(\.\d+)?s\b",
        r"\bno tests ran in \d+(\.\d+)?s\b",
        r"^Tests:\s+.*\btotal\b",  # jest
        r"^\s*\d+ (passing|failing)\b",  # mocha
        r"^(ok|FAIL)\s+\S+\s+(\(cached\)|[\d.]+s)",  # go, per package
        r"^Found \d+ errors?\b",  # mypy, ruff
        r"^Success: no issues found",
    )
)
_COUNT = re.compile(r"\b(\d+) (passed|failed|errors?)\b")

_TMP_PREFIXES = sorted(
    {tempfile.gettempdir(), "/tmp", "/var/tmp", "/private/var/folders", "/var/folders"},
    key=len,
    reverse=True,
)
_TMP_PATH = re.compile("(" + "|".join(re.escape(p) for p in _TMP_PREFIXES) + r")/[^\s'\":,)]*")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b")
_DURATION = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|sec|secs|seconds|m|min)\b")
_NUMBER = re.compile(r"\d+")


def clean(text: str) -> str:
    """Output without terminal colour codes or carriage-return redraws."""
    text = _ANSI.sub("", text)
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.splitlines())


def _shorten(line: str) -> str:
    line = line.rstrip()
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[: MAX_LINE_CHARS - 1] + "…"


def _dedupe(lines: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for line in lines:
        if line and line not in seen:
            seen.add(line)
            out.append(line)
    return out


def error_lines(output: str, limit: int = MAX_ERROR_LINES) -> list[str]:
    """The first distinct error lines of ``output``, in order: pytest ``E``
    lines, ``FAILED``/``ERROR`` lines, error/exception/FAIL/panic lines, and
    the last frame of each Python traceback (before its exception line)."""
    found: list[str] = []
    last_frame: str | None = None
    for raw in clean(output).splitlines():
        if raw.startswith("Traceback (most recent call last)"):
            last_frame = ""
            continue
        if last_frame is not None:
            if _FRAME.match(raw):
                last_frame = raw.strip()
                continue
            if raw[:1].isspace() or not raw.strip():
                continue
            if last_frame:
                found.append(last_frame)
            last_frame = None
        if _SEPARATOR.match(raw) or any(p.search(raw) for p in _SUMMARY_PATTERNS):
            continue
        if any(p.search(raw) for p in _ERROR_PATTERNS):
            found.append(raw.strip() if not raw.startswith("E ") else raw)
    return [_shorten(line) for line in _dedupe(found)][:limit]


def summary_line(output: str) -> str | None:
    """The runner's last summary line (pytest, jest, mocha, go, mypy/ruff)."""
    for raw in reversed(clean(output).splitlines()):
        if any(p.search(raw) for p in _SUMMARY_PATTERNS):
            return _shorten(raw.strip().strip("=").strip())
    return None


def summary_counts(output: str) -> tuple[int | None, int | None]:
    """(passed, failed) read from the summary line; failed includes errors."""
    line = summary_line(output)
    if line is None:
        return None, None
    passed: int | None = None
    failed: int | None = None
    for number, word in _COUNT.findall(line):
        if word == "passed":
            passed = (passed or 0) + int(number)
        else:
            failed = (failed or 0) + int(number)
    if passed is None and failed is None:
        return None, None
    return passed or 0, failed or 0


def tail_lines(output: str, n: int = TAIL_LINES) -> list[str]:
    lines = [line for line in clean(output).splitlines() if line.strip()]
    return [_shorten(line) for line in lines[-n:]]


def _id_list(ids: Sequence[str], note: dict[str, str] | None = None) -> list[str]:
    shown = [f"  - {i}{' (' + note[i] + ')' if note and i in note else ''}" for i in ids]
    if len(shown) > MAX_IDS_LISTED:
        shown = [*shown[:MAX_IDS_LISTED], f"  … and {len(shown) - MAX_IDS_LISTED} more"]
    return shown


def describe_failure(
    *,
    problems: Sequence[str] = (),
    regressions: Sequence[str] = (),
    regression_notes: dict[str, str] | None = None,
    new_failures: Collection[str] = (),
    pre_existing: Collection[str] = (),
    output: str = "",
    counts: str | None = None,
    output_path: Path | None = None,
    with_errors: bool = True,
) -> str:
    """One gate's digest body (without its name)."""
    lines = list(problems)
    if output_path is not None:
        lines.append(f"full output: {output_path}")
    if regressions:
        lines.append("REGRESSIONS (passed before this batch, not passing now):")
        lines += _id_list(sorted(regressions), regression_notes)
    fresh = sorted(set(new_failures) - set(regressions))
    if fresh:
        lines.append("failing tests:")
        lines += _id_list(fresh)
    if with_errors:
        errors = error_lines(output) or tail_lines(output)
        if errors:
            lines.append("errors:")
            lines += [f"  {line}" for line in errors]
    summary = summary_line(output)
    if summary:
        lines.append(f"summary: {summary}")
    elif counts:
        lines.append(f"summary: {counts}")
    if pre_existing:
        shown = sorted(pre_existing)
        more = f" … and {len(shown) - MAX_IDS_LISTED} more" if len(shown) > MAX_IDS_LISTED else ""
        lines.append(
            "already failing before this batch (not caused by it): "
            + ", ".join(shown[:MAX_IDS_LISTED])
            + more
        )
    return "\n".join(_dedupe(lines))


# ---- signatures -------------------------------------------------------------


def normalise(line: str) -> str:
    """``line`` with what differs between two runs of the same failure
    (temporary paths, addresses, durations, numbers) replaced."""
    line = clean(line).strip()
    line = _TMP_PATH.sub("<tmp>", line)
    line = _HEX.sub("<hex>", line)
    line = _DURATION.sub("<t>", line)
    line = _NUMBER.sub("N", line)
    return " ".join(line.split())


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def gate_signature(
    name: str,
    *,
    failing_ids: Collection[str] = (),
    timed_out: bool = False,
    problems: Sequence[str] = (),
    output: str = "",
    exit_code: int | None = None,
) -> str:
    """A stable signature for one failed gate: sorted failing ids when there
    are any, else the first error line (normalised)."""
    if failing_ids:
        basis = "ids\n" + "\n".join(sorted(failing_ids))
    elif timed_out:
        basis = "timed out"
    elif problems:
        basis = "problems\n" + "\n".join(normalise(p) for p in problems)
    else:
        first = (error_lines(output, limit=1) or tail_lines(output, 1) or [""])[0]
        basis = f"line\n{normalise(first)}" if first else f"exit {exit_code}"
    return _hash(f"{name}\n{basis}")


def failure_signature(results: Sequence[GateResult]) -> str | None:
    """One signature for a whole set of gate results; None when all passed.
    Two attempts that fail the same way get the same signature."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return None
    parts = sorted(
        f"{r.name}={r.signature or _hash(normalise(r.digest.partition(chr(10))[0]))}"
        for r in failed
    )
    return _hash("\n".join(parts))


# ---- the digest -------------------------------------------------------------


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, on a line boundary when one is
    near, with the cut marked."""
    if len(text) <= limit:
        return text
    if limit <= len(TRUNCATED):
        return TRUNCATED[:limit]
    keep = text[: limit - len(TRUNCATED) - 1]
    newline = keep.rfind("\n")
    if newline >= len(keep) // 2:
        keep = keep[:newline]
    return f"{keep}\n{TRUNCATED}"


def _block(result: GateResult) -> str:
    head = f"[{result.name}] FAILED"
    if result.command:
        head += f": {result.command}"
    return f"{_shorten(head)}\n{result.digest}".rstrip()


def make_digest(results: Sequence[GateResult], limit: int = MAX_DIGEST_CHARS) -> str:
    """The failed gates' digests, at most ``limit`` characters; each failed
    gate gets a fair share of the space. Empty when every gate passed."""
    blocks = [_block(r) for r in results if not r.passed]
    if not blocks:
        return ""
    separator = "\n\n"
    room = limit - len(separator) * (len(blocks) - 1)
    shares: dict[int, int] = {}
    remaining = room
    order = sorted(range(len(blocks)), key=lambda i: len(blocks[i]))
    for position, i in enumerate(order):
        share = remaining // (len(order) - position)
        shares[i] = min(len(blocks[i]), share)
        remaining -= shares[i]
    text = separator.join(truncate(b, shares[i]) for i, b in enumerate(blocks))
    return truncate(text, limit)
