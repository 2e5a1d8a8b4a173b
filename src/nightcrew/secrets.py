"""Spot files that must not be committed: secrets by file name or content.

Reasons never quote the secret itself, so they are safe to log and to show
an agent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Only the start of a file is read for content checks.
MAX_SCAN_BYTES = 1024 * 1024
# A NUL byte in this many leading bytes marks a file as binary (as git does).
BINARY_PROBE_BYTES = 8000

_ENV_TEMPLATES = {".env.example", ".env.sample", ".env.template"}
_KEY_FILE_PREFIXES = ("id_rsa", "id_ed25519", "id_ecdsa", "id_dsa")
_KEY_FILE_SUFFIXES = (".pem", ".key")

_BOUNDARY = r"(?<![A-Za-z0-9_-])"
_CONTENT_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"),
        "contains a private key block",
    ),
    # An "sk-" key needs a digit somewhere, so long kebab-case words such as
    # "task-scheduler-configuration" do not count.
    (
        re.compile(_BOUNDARY + r"sk-(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{20,}"),
        "contains what looks like an API key (sk-…)",
    ),
    (
        re.compile(r"(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])"),
        "contains what looks like an AWS access key id",
    ),
    (
        re.compile(_BOUNDARY + r"gh[pousr]_[A-Za-z0-9]{36,}"),
        "contains what looks like a GitHub token",
    ),
)


@dataclass(frozen=True)
class SecretFinding:
    path: str  # as given (repo-relative)
    reason: str


def secret_file_reason(name: str) -> str | None:
    """Why a file called ``name`` (a base name) looks like a secret, if it does."""
    lower = name.lower()
    if lower == ".env" or (lower.startswith(".env.") and lower not in _ENV_TEMPLATES):
        return "looks like a secrets file"
    if lower.endswith(".pub"):
        return None
    if lower.endswith(_KEY_FILE_SUFFIXES) or lower.startswith(_KEY_FILE_PREFIXES):
        return "looks like a secrets file"
    return None


def secret_content_reason(text: str) -> str | None:
    """Why ``text`` looks like it holds a secret, with the line it is on."""
    first: tuple[int, str] | None = None
    for pattern, reason in _CONTENT_RULES:
        match = pattern.search(text)
        if match and (first is None or match.start() < first[0]):
            first = (match.start(), reason)
    if first is None:
        return None
    offset, reason = first
    return f"{reason} (line {text.count(chr(10), 0, offset) + 1})"


def _read_text(path: Path) -> str | None:
    """The first MAX_SCAN_BYTES of a regular text file; None for binary files
    and anything that is not a readable regular file."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SCAN_BYTES)
    except OSError:
        return None
    if b"\0" in data[:BINARY_PROBE_BYTES]:
        return None
    return data.decode("utf-8", errors="replace")


def find_secrets(root: Path, paths: Iterable[str]) -> list[SecretFinding]:
    """Findings for ``paths`` (relative to ``root``), at most one per path, in
    path order. Deleted paths are skipped; binary files get the name check
    only."""
    findings: list[SecretFinding] = []
    for rel in sorted(set(paths)):
        full = Path(root) / rel
        if not full.exists() and not full.is_symlink():
            continue
        if full.is_dir():
            continue
        reason = secret_file_reason(full.name)
        if reason is None:
            text = _read_text(full)
            reason = secret_content_reason(text) if text is not None else None
        if reason is not None:
            findings.append(SecretFinding(rel, reason))
    return findings
