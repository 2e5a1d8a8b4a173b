"""The agent's prompt: a stable prefix, then a variable suffix.

The prefix is byte-identical for every attempt of a run (project, plan
preamble, the harness's rules, the gates), so it is cacheable and its sha256,
stored per attempt, proves it did not drift. The suffix carries this batch:
its full text, the files it references, recent commits, and the previous
attempt's gate digest. Nothing is injected by editing tracked files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CONTEXT_FILE_MAX_LINES = 200
CONTEXT_FILE_MAX_CHARS = 16_000


@lru_cache(maxsize=4)
def prefix_sha256(prefix: str) -> str:
    """The sha256 of a run's stable prefix, stored with the run and each of its
    attempts: hashed once, however many attempts ask."""
    return hashlib.sha256(prefix.encode()).hexdigest()


@dataclass(frozen=True)
class Prompt:
    prefix: str
    suffix: str

    @property
    def text(self) -> str:
        return f"{self.prefix}\n\n{self.suffix}"

    @property
    def prefix_sha256(self) -> str:
        return prefix_sha256(self.prefix)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class PreviousFailure:
    attempt: int
    outcome: str  # failed | timed_out | crashed
    digest: str


def stable_prefix(
    *,
    project_root: Path,
    plan_path: str,
    plan_preamble: str,
    gate_lines: Sequence[str],
    commit: bool,
) -> str:
    gates = "\n".join(f"- {line}" for line in gate_lines) or "- (no gates configured)"
    commit_rule = (
        "You may commit your work; anything you leave uncommitted is committed by the"
        " harness once the gates pass."
        if commit
        else "Do not commit: the person running this reviews the changes themselves."
    )
    preamble = plan_preamble.strip()
    parts = [
        "You are working unattended on one batch of a plan, driven by nightcrew.",
        f"Project root: {project_root}",
        f"Plan: {plan_path}",
    ]
    if preamble:
        parts += ["", "## About this plan", preamble]
    parts += [
        "",
        "## How your work is judged",
        "When you finish, the harness (not you) decides whether this batch is done by"
        " running these checks in the project root:",
        gates,
        "Run them yourself before you finish. A test that passed before this batch must"
        " still pass. Do only what this batch asks; later batches come later.",
        commit_rule,
        "Never commit secrets (.env files, private keys, API keys): the harness refuses them.",
        "Do not touch the .nightcrew/ directory. Nobody can answer questions: decide, and"
        " say what you decided in your final message.",
    ]
    return "\n".join(parts)


def _context_file(root: Path, ref: str) -> str:
    path = root / ref
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"### {ref}\n(could not read: {exc.strerror})"
    lines = text.splitlines()
    clipped = "\n".join(lines[:CONTEXT_FILE_MAX_LINES])[:CONTEXT_FILE_MAX_CHARS]
    more = "\n… (truncated)" if len(clipped) < len(text.rstrip("\n")) else ""
    return f"### {ref}\n```\n{clipped}{more}\n```"


def variable_suffix(
    *,
    project_root: Path,
    batch_number: int,
    batch_count: int,
    title: str,
    body: str,
    context_refs: Sequence[str],
    recent_commits: Sequence[str],
    attempt: int,
    previous: PreviousFailure | None,
) -> str:
    parts = [f"# Batch {batch_number} of {batch_count}: {title}", "", body.strip()]
    if context_refs:
        parts += ["", "## Files this batch references"]
        parts += [_context_file(project_root, ref) for ref in context_refs]
    if recent_commits:
        parts += ["", "## Recent commits", *recent_commits]
    return "\n".join(parts + failure_section(attempt, previous))


def failure_section(attempt: int, previous: PreviousFailure | None) -> list[str]:
    """What the previous attempt left and why it failed, for the next one."""
    if previous is None:
        return []
    what = {
        "failed": "failed the harness's checks",
        "timed_out": "ran out of time",
        "crashed": "ended with an error",
    }.get(previous.outcome, previous.outcome)
    return [
        "",
        f"## This is attempt {attempt}. The previous attempt {what}.",
        "The working tree still holds its changes: fix what failed rather than"
        " starting over. What the checks reported:",
        "```",
        previous.digest.strip(),
        "```",
    ]
