"""What can be known about ``worktree_setup`` before any agent runs, for
``--dry-run`` and pre-flight: a broken setup command would otherwise fail in
every lane, after the build has started.

Problems (the setup cannot work: an empty command, one the shell cannot
parse) are told apart from warnings (a first word not found on ``PATH`` may
still be made by an earlier command, or exist only in the worktree).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

from nightcrew import proc
from nightcrew.config import Settings

# Words the shell itself runs: never looked for on PATH.
_SHELL_WORDS = frozenset({
    ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "eval", "exec",
    "exit", "export", "false", "fg", "for", "getopts", "hash", "if", "jobs", "kill", "local",
    "printf", "pwd", "read", "readonly", "return", "set", "shift", "source", "test", "times",
    "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "wait", "while", "until",
    "echo", "{", "(", "!",
})  # fmt: skip
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PARSE_TIMEOUT_S = 10.0
_SHELL_PREFIX = re.compile(r"^/bin/sh: (-c: )?(line )?\d+: ")


def setup_problems(settings: Settings, root: Path | None = None) -> list[str]:
    """Why the config's setup commands cannot work, one line each (empty: none
    found). ``root`` is where the shell is asked to parse them."""
    problems: list[str] = []
    for index, command in enumerate(settings.worktree_setup, start=1):
        if not command.strip():
            problems.append(f"worktree_setup item {index}: the command is empty")
            continue
        unreadable = _shell_cannot_read(command, root or Path.cwd())
        if unreadable is not None:
            problems.append(f"worktree_setup item {index}: the shell cannot read it: {unreadable}")
    return problems


def setup_warnings(
    settings: Settings, root: Path | None = None, *, path: str | None = None
) -> list[str]:
    """Setup commands whose first word is not found (on ``path``, default our
    ``PATH``; a word with a ``/`` relative to ``root``). A warning, not a
    problem: an earlier command may install it."""
    warnings: list[str] = []
    for index, command in enumerate(settings.worktree_setup, start=1):
        word = first_word(command)
        if word is None or _found(word, root, path):
            continue
        where = "does not exist" if "/" in word else "is not on PATH"
        warnings.append(
            f"worktree_setup item {index}: `{word}` {where}; the command may fail in the worktree"
        )
    return warnings


def first_word(command: str) -> str | None:
    """The program a shell command starts with, or None when it cannot be
    known before it runs (a variable, a shell keyword, unreadable quoting)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        for word in lexer:
            if _ASSIGNMENT.match(word):
                continue  # FOO=1 npm ci
            if word in _SHELL_WORDS or any(c in word for c in "$`();&|<>"):
                return None
            return word
    except ValueError:
        return None  # the shell's own parse says what is wrong
    return None


def _found(word: str, root: Path | None, path: str | None) -> bool:
    if "/" in word:
        target = Path(word).expanduser()
        if not target.is_absolute():
            target = (root or Path.cwd()) / target
        return target.exists()
    return shutil.which(word, path=path if path is not None else os.environ.get("PATH")) is not None


def _shell_cannot_read(command: str, cwd: Path) -> str | None:
    """The shell's own words when it cannot parse ``command`` (``sh -n``:
    read, never run)."""
    try:
        done = proc.run(proc.shell_parse_argv(command), cwd=cwd, timeout_s=_PARSE_TIMEOUT_S)
    except OSError:
        return None  # no shell to ask: the setup itself will say so
    if done.exit_code in (0, None):
        return None
    lines = [line.strip() for line in done.output.splitlines() if line.strip()]
    return _SHELL_PREFIX.sub("", lines[-1]) if lines else f"sh -n exited {done.exit_code}"
