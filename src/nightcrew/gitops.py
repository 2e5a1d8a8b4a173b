"""Git, through the git command line, with argv lists only.

Every call goes through :func:`_git`, which runs ``git -C <root> ...`` via
:func:`nightcrew.proc.run` and raises :class:`~nightcrew.core.errors.GitError`
(carrying the command and git's own message) when git fails. Repository
location variables inherited from the environment (``GIT_DIR`` and friends,
set for example inside a git hook) are dropped so that ``root`` alone decides
which repository a call works on.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from nightcrew import proc
from nightcrew.core.errors import GitError
from nightcrew.debris import is_agent_temp

# nightcrew's own state directory inside a project; never committed or cleaned.
STATE_DIR = ".nightcrew/"

# Upper bound for one git command when no tighter deadline is in force.
DEFAULT_TIMEOUT_S = 600.0

# Identity used for commits on a machine where none is configured.
FALLBACK_IDENTITY = {"user.name": "nightcrew", "user.email": "nightcrew@localhost"}

_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
)

# Pathspec that leaves nightcrew's own directory out of `git add`.

_UNMERGED = {"DD", "AU", "UD", "UA", "DU", "AA", "UU"}

_deadline: ContextVar[float | None] = ContextVar("nightcrew_git_deadline", default=None)


class GitTimedOut(GitError):
    """A git command did not finish within its time limit."""


@dataclass(frozen=True)
class StatusEntry:
    """One line of ``git status --porcelain=v1``."""

    index: str  # X: status in the index ("?" for untracked)
    worktree: str  # Y: status in the work tree
    path: str
    orig_path: str | None = None  # the source of a rename or copy

    @property
    def code(self) -> str:
        return self.index + self.worktree

    @property
    def untracked(self) -> bool:
        return self.code == "??"

    @property
    def unmerged(self) -> bool:
        return self.code in _UNMERGED

    @property
    def deleted(self) -> bool:
        return "D" in self.code and not self.unmerged


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Every git command started inside the block must finish before the
    block's deadline; past it a command raises :class:`GitTimedOut`."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _git_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


def _git(
    root: Path,
    *args: str,
    ok_codes: Sequence[int] = (0,),
    env: Mapping[str, str] | None = None,
) -> proc.Completed:
    """Run ``git -C root *args``; raise GitError unless the exit code is in
    ``ok_codes``. Output is stdout and stderr together."""
    argv = ["git", "-C", str(root), *args]
    timeout = DEFAULT_TIMEOUT_S
    deadline = _deadline.get()
    if deadline is not None:
        timeout = min(timeout, deadline - time.monotonic())
        if timeout <= 0:
            raise GitTimedOut(f"{shlex.join(argv[3:])}: time limit reached before git started")
    try:
        done = proc.run(argv, cwd=Path(root), timeout_s=timeout, env=_git_env(env))
    except OSError as exc:  # git missing, or root is not a directory
        raise GitError(f"git {shlex.join(args)} could not start: {exc}") from exc
    if done.timed_out:
        raise GitTimedOut(f"git {shlex.join(args)} timed out after {timeout:.0f}s")
    if done.exit_code not in ok_codes:
        message = done.output.strip()[-2000:] or "(no output)"
        raise GitError(f"git {shlex.join(args)} failed (exit {done.exit_code}): {message}")
    return done


def _stdout(done: proc.Completed) -> str:
    """Output with git's leading ``warning:``/``hint:`` lines dropped (stderr
    is merged into the output)."""
    out = done.output
    while out.startswith(("warning: ", "hint: ")) and "\n" in out:
        out = out.split("\n", 1)[1]
    return out


def git(
    root: Path,
    *args: str,
    ok_codes: Sequence[int] = (0,),
    env: Mapping[str, str] | None = None,
) -> proc.Completed:
    """:func:`_git` for the modules beside this one that speak git's plumbing
    themselves (``worktrees``, ``gitlocks``): same environment, timeouts and
    one-line :class:`GitError`."""
    return _git(root, *args, ok_codes=ok_codes, env=env)


def output(done: proc.Completed) -> str:
    """A finished command's output without git's leading warning/hint lines."""
    return _stdout(done)


def _z_list(out: str) -> list[str]:
    return [item for item in out.split("\0") if item]


# ---- queries ----------------------------------------------------------------


def is_repo(root: Path) -> bool:
    if not Path(root).is_dir():
        return False
    try:
        done = _git(root, "rev-parse", "--is-inside-work-tree", ok_codes=(0, 128))
    except GitError:
        return False
    return done.exit_code == 0 and _stdout(done).strip() == "true"


def repo_root(path: Path) -> Path:
    done = _git(path, "rev-parse", "--show-toplevel")
    return Path(_stdout(done).strip())


def head_sha(root: Path) -> str | None:
    """The commit HEAD points at; None on an unborn branch."""
    done = _git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}", ok_codes=(0, 1))
    if done.exit_code == 1:
        return None
    return _stdout(done).strip()


def common_dir(root: Path) -> Path:
    """The git directory every worktree of the repository shares (``.git`` of
    the main worktree), absolute and resolved: refs, config and objects."""
    done = _git(root, "rev-parse", "--path-format=absolute", "--git-common-dir")
    return Path(_stdout(done).strip()).resolve()


def is_commit(root: Path, rev: str) -> bool:
    """True when ``rev`` names a commit in the repository."""
    done = _git(root, "rev-parse", "-q", "--verify", f"{rev}^{{commit}}", ok_codes=(0, 1, 128))
    return done.exit_code == 0


def current_branch(root: Path) -> str | None:
    """The branch name (also on an unborn branch); None when HEAD is detached."""
    done = _git(root, "symbolic-ref", "--short", "-q", "HEAD", ok_codes=(0, 1))
    if done.exit_code == 1:
        return None
    return _stdout(done).strip()


def _git_paths(root: Path, *names: str) -> list[Path]:
    args: list[str] = []
    for name in names:
        args += ["--git-path", name]
    lines = _stdout(_git(root, "rev-parse", *args)).splitlines()
    if len(lines) != len(names):
        raise GitError(f"git rev-parse --git-path gave {len(lines)} paths for {len(names)} names")
    return [p if p.is_absolute() else Path(root) / p for p in map(Path, lines)]


def ensure_excluded(root: Path, pattern: str = STATE_DIR) -> None:
    """Add ``pattern`` to the repository's ``info/exclude`` once (shared by
    all worktrees of the repository)."""
    (exclude,) = _git_paths(root, "info/exclude")
    try:
        text = exclude.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    if any(line.strip() == pattern for line in text.splitlines()):
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    prefix = "" if not text or text.endswith("\n") else "\n"
    with exclude.open("a", encoding="utf-8") as fh:
        fh.write(f"{prefix}{pattern}\n")


def parse_status_z(out: str) -> list[StatusEntry]:
    """Parse ``git status --porcelain=v1 -z`` output."""
    entries: list[StatusEntry] = []
    records = out.split("\0")
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        if len(record) < 4 or record[2] != " ":
            continue
        x, y, path = record[0], record[1], record[3:]
        orig = None
        if x in "RC" or y in "RC":
            orig = records[i] if i < len(records) else None
            i += 1
        entries.append(StatusEntry(x, y, path, orig))
    return entries


def status_entries(root: Path) -> list[StatusEntry]:
    done = _git(
        root,
        "status",
        "--porcelain=v1",
        "-z",
        "-uall",
        env={"GIT_OPTIONAL_LOCKS": "0"},
    )
    return parse_status_z(_stdout(done))


def is_ancestor(root: Path, a: str, b: str) -> bool:
    """True when commit ``a`` is an ancestor of (or equal to) ``b``."""
    done = _git(root, "merge-base", "--is-ancestor", a, b, ok_codes=(0, 1))
    return done.exit_code == 0


_OPERATIONS = (
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase"),
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
    ("BISECT_LOG", "bisect"),
)


def operation_in_progress(root: Path) -> str | None:
    """ "merge", "rebase", "cherry-pick", "revert" or "bisect" when one is
    under way in this worktree, else None."""
    paths = _git_paths(root, *(name for name, _ in _OPERATIONS))
    for path, (_, operation) in zip(paths, _OPERATIONS, strict=True):
        if path.exists():
            return operation
    return None


def commits_between(root: Path, base: str | None, head: str) -> list[tuple[str, str]]:
    """(full sha, subject) of the commits reachable from ``head`` but not from
    ``base`` (None: all of ``head``'s history), oldest first. When ``base`` is
    gone only ``head`` itself; when ``head`` is gone (history rewritten since), none."""
    fmt = "--format=%H%x1f%s"
    log = ["log", "--reverse", "--no-decorate", "--no-color", fmt]
    done = _git(root, *log, f"{base}..{head}" if base else head, "--", ok_codes=(0, 128))
    if done.exit_code != 0 and base:
        done = _git(root, "log", "-n1", "--no-color", fmt, head, "--", ok_codes=(0, 128))
    if done.exit_code != 0:
        return []
    pairs = (line.split("\x1f", 1) for line in _stdout(done).splitlines() if "\x1f" in line)
    return [(sha, subject) for sha, subject in pairs]


def remotes(root: Path) -> list[str]:
    """The names of the repository's remotes (``git remote``)."""
    return [line.strip() for line in _stdout(_git(root, "remote")).splitlines() if line.strip()]


def recent_commits(root: Path, n: int = 5) -> list[str]:
    """The last ``n`` commits as ``git log --oneline`` lines, newest first."""
    if head_sha(root) is None:
        return []
    done = _git(root, "log", "--oneline", "--no-decorate", "--no-color", f"-n{n}")
    return [line for line in _stdout(done).splitlines() if line.strip()]


# ---- changes ----------------------------------------------------------------


def _empty_tree(root: Path) -> str:
    return _stdout(_git(root, "hash-object", "-t", "tree", os.devnull)).strip()


def _missing_identity(root: Path) -> list[str]:
    # Both keys in one git run (--get-regexp prints "key value" per setting).
    done = _git(root, "config", "--get-regexp", r"^user\.(name|email)$", ok_codes=(0, 1))
    found: dict[str, str] = {}
    for line in _stdout(done).splitlines():
        key, _, value = line.partition(" ")
        found[key.lower()] = value  # the last one wins, as with --get
    return [
        arg
        for key, fallback in FALLBACK_IDENTITY.items()
        if not found.get(key, "").strip()
        for arg in ("-c", f"{key}={fallback}")
    ]


def untracked_files(root: Path) -> list[str]:
    """Untracked files that are not ignored, repo-relative, sorted."""
    others = _git(root, "ls-files", "-z", "--others", "--exclude-standard")
    return sorted(n for n in _z_list(_stdout(others)) if not (n + "/").startswith(STATE_DIR))


def dirty_entries(root: Path) -> list[StatusEntry]:
    """``git status`` without nightcrew's own directory: tracked changes
    (staged or not) and untracked files that are not ignored."""
    return [e for e in status_entries(root) if not (e.path + "/").startswith(STATE_DIR)]


def _pathspec_file(directory: str, paths: Sequence[str]) -> str:
    name = os.path.join(directory, "paths")
    with open(name, "w", encoding="utf-8") as fh:
        fh.write("\0".join(paths))
    return name


def commit_all(
    root: Path,
    message: str,
    trailers: Mapping[str, str] | None = None,
    *,
    leave: Collection[str] = (),
) -> str | None:
    """Stage every change (except nightcrew's own files, the paths in
    ``leave`` and a killed agent's temp files) and commit exactly that.

    Changes the user staged in ``leave`` stay staged and out of the commit.
    Returns the new commit's sha, or None when there was nothing to commit.
    Hooks are skipped: the harness has already run its own gates, and an
    unattended run cannot answer a hook. A missing user.name/user.email is
    filled in with nightcrew's own so a fresh machine can commit.
    """
    # nightcrew's own files are kept out by info/exclude, not by a pathspec:
    # `git add` refuses an exclude pathspec that names an ignored path.
    ensure_excluded(root)
    left = set(leave)
    paths: set[str] = set()
    for entry in dirty_entries(root):
        paths.update(p for p in (entry.path, entry.orig_path) if p is not None)
    paths = {p for p in paths if p not in left and not is_agent_temp(p)}
    if not paths:
        return None
    literal = {"GIT_LITERAL_PATHSPECS": "1"}
    base = head_sha(root) or _empty_tree(root)
    import tempfile  # noqa: PLC0415 - only when committing (start-up time)

    with tempfile.TemporaryDirectory(prefix="nightcrew-commit-") as tmp:
        spec = ["--pathspec-file-nul", f"--pathspec-from-file={_pathspec_file(tmp, sorted(paths))}"]
        _git(root, "add", "-A", *spec, env=literal)
        diff = ["diff", "--cached", "--name-only", "-z", "--no-renames", base, "--"]
        staged = sorted(set(_z_list(_stdout(_git(root, *diff)))) & paths)
        if not staged:
            return None
        only = ["--pathspec-file-nul", f"--pathspec-from-file={_pathspec_file(tmp, staged)}"]
        args = [*_missing_identity(root), "commit", "-q", "--no-verify", "--only", *only]
        args += ["-m", message]
        if trailers:
            args += ["-m", "\n".join(f"{key}: {value}" for key, value in trailers.items())]
        _git(root, *args, env=literal)
    sha = head_sha(root)
    if sha is None:
        raise GitError("git commit succeeded but HEAD is still unborn")
    return sha


def diff_patch(
    root: Path, base_sha: str | None, *, binary: bool = False, leave: Collection[str] = ()
) -> str:
    """:func:`diff_and_tree`'s patch alone."""
    return diff_and_tree(root, base_sha, binary=binary, leave=leave)[0]


def diff_and_tree(
    root: Path,
    base_sha: str | None,
    *,
    binary: bool = False,
    leave: Collection[str] = (),
    tree: bool = False,
) -> tuple[str, str | None]:
    """Patch from ``base_sha`` (None: the empty tree) to the work tree,
    including untracked files that are not ignored, without the paths in
    ``leave`` (the user's own uncommitted files).

    Works on a throwaway index (``GIT_INDEX_FILE``) so neither the real index
    nor the work tree is touched. The throwaway index is read from ``base``,
    not copied from the real one: a copy carries stat data whose racy-clean
    protection is tied to the real index's own mtime, and once saw a same-size
    edit as unchanged; entries without stat data are hashed, so nothing is
    missed.

    With ``tree``, also the git tree of the work tree as that index holds it
    (what committing everything would record), else None: the merge queue
    compares it with the merged result's to know the checks saw that tree.
    """
    base = base_sha or _empty_tree(root)
    ensure_excluded(root)
    import tempfile  # noqa: PLC0415 - only when diffing (start-up time)

    with tempfile.TemporaryDirectory(prefix="nightcrew-diff-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(root, "read-tree", base, env=env)
        _git(root, "add", "-A", env=env)
        if leave:
            spec = f"--pathspec-from-file={_pathspec_file(tmp, sorted(leave))}"
            literal = {**env, "GIT_LITERAL_PATHSPECS": "1"}
            _git(root, "reset", "-q", "--pathspec-file-nul", spec, base, env=literal)
        out = Path(tmp) / "patch"
        args = ["diff", "--cached", "--no-color", "--no-ext-diff", f"--output={out}"]
        if binary:
            args.append("--binary")
        _git(root, *args, base, "--", env=env)
        written = _stdout(_git(root, "write-tree", env=env)).strip() if tree else None
        return out.read_text(encoding="utf-8", errors="replace"), written


def reset_hard(root: Path, sha: str, *, keep: Sequence[str] = (STATE_DIR,)) -> None:
    """Reset the index and work tree to ``sha`` and delete untracked files
    that are not ignored (``git clean -fd``: ignored files stay, and so does
    everything matching ``keep``)."""
    _git(root, "reset", "-q", "--hard", sha)
    excludes: list[str] = []
    for pattern in keep:
        excludes += ["-e", pattern]
    _git(root, "clean", "-f", "-d", "-q", *excludes)


def reset_leaving(root: Path, sha: str, leave: Collection[str]) -> None:
    """Like :func:`reset_hard`, but the paths in ``leave`` (the user's own
    uncommitted files) keep their content: HEAD and the index go back to
    ``sha``, every other changed path is restored from ``sha`` or deleted."""
    if not leave:
        reset_hard(root, sha)
        return
    changed = [p for p in changed_files(root, sha) if p not in set(leave)]
    _git(root, "reset", "-q", "--mixed", sha)
    if not changed:
        return
    literal = {"GIT_LITERAL_PATHSPECS": "1"}
    listed = _git(root, "ls-tree", "-r", "-z", "--name-only", sha, "--", *changed, env=literal)
    in_base = set(_z_list(_stdout(listed)))
    if in_base:
        _git(root, "checkout", "-q", sha, "--", *sorted(in_base), env=literal)
    for rel in changed:
        path = Path(root) / rel
        if rel not in in_base and (path.is_file() or path.is_symlink()):
            path.unlink()


def changed_files(root: Path, base_sha: str | None) -> list[str]:
    """Paths changed since ``base_sha`` (None: every tracked file): committed
    since the base, changed in the index or work tree, and untracked files
    that are not ignored. Deleted paths are included; sorted, repo-relative."""
    base = base_sha or _empty_tree(root)
    names: set[str] = set()
    diff = ["diff", "--name-only", "-z", "--no-renames", "--no-ext-diff"]
    head = head_sha(root)
    if head is None:  # no commit yet: the index and the work tree against the base
        names.update(_z_list(_stdout(_git(root, *diff, base, "--"))))
        names.update(_z_list(_stdout(_git(root, *diff, "--cached", base, "--"))))
        others = _git(root, "ls-files", "-z", "--others", "--exclude-standard")
        names.update(_z_list(_stdout(others)))
    else:
        # What HEAD changed since the base, plus what `git status` sees (the index
        # against HEAD, the work tree against the index, untracked files): the
        # same paths as the index and the work tree against the base, in one or
        # two git runs instead of four (a path the base and HEAD agree on
        # differs from the base exactly where it differs from HEAD).
        if head != base:
            names.update(_z_list(_stdout(_git(root, *diff, base, "HEAD", "--"))))
        for entry in status_entries(root):
            names.add(entry.path)
            if entry.orig_path is not None and "R" in entry.code:
                names.add(entry.orig_path)  # a rename changes its source too
    return sorted(n for n in names if not (n + "/").startswith(STATE_DIR))


def commits_patch(root: Path, base: str | None, head: str) -> str | None:
    """The patch from ``base`` (None: ``head``'s first parent) to commit
    ``head``, or None when either is gone (history rewritten since)."""
    done = _git(
        root, "diff", "--no-color", "--no-ext-diff", base or f"{head}^", head, ok_codes=(0, 128)
    )
    return _stdout(done) if done.exit_code == 0 else None


def commit_files(root: Path, sha: str) -> list[str]:
    """The paths one commit changed (against its first parent), or none when
    the commit is gone (history rewritten since)."""
    done = _git(
        root, "diff-tree", "--no-commit-id", "--name-only", "-r", "-z", sha, ok_codes=(0, 128)
    )
    return _z_list(_stdout(done)) if done.exit_code == 0 else []
