"""The rules for git commands."""

from __future__ import annotations

from nightcrew.toolpolicy.paths import Places
from nightcrew.toolpolicy.verdict import Deny

GIT_ARG_OPTIONS = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"}
GIT_STRICT = frozenset(
    {"status", "log", "diff", "show", "add", "commit", "rev-parse", "ls-files", "ls-tree"}
    | {"blame", "grep", "describe", "shortlog", "show-ref", "cat-file", "mv", "rm", "version"}
    | {"branch", "help"}
)


def judge_git(
    places: Places, strict: bool, words: list[str], cwd: str | None, shown: str
) -> Deny | None:
    """A git command: its repository must be the project; pushing, throwing
    work away and changing git for every project are refused."""
    where = cwd
    i = 1
    while i < len(words) and words[i].startswith("-"):
        option = words[i].split("=", 1)[0]
        value = words[i].split("=", 1)[1] if "=" in words[i] else None
        if option in GIT_ARG_OPTIONS and value is None:
            i += 1
            value = words[i] if i < len(words) else None
        if option == "-C" and value is not None:
            where = places.resolve(value, where)
        elif option in ("--git-dir", "--work-tree") and value is not None:
            target = places.resolve(value, where)
            if target is None or not places.inside(target):
                return Deny("git-outside-project", shown, "works on a repository elsewhere")
        i += 1
    if where is None or not places.inside(where):
        return Deny("git-outside-project", shown, "works on a repository elsewhere")
    sub = words[i] if i < len(words) else ""
    args = words[i + 1 :]
    if sub == "push":
        return Deny("git-push", "git push", "the harness commits and never pushes")
    if sub == "reset" and any(a in ("--hard", "--merge", "--keep") for a in args):
        return Deny(
            "git-reset-hard", "git reset --hard", "throws work away; the harness resets itself"
        )
    if sub == "clean" and any(
        a == "--force" or (a.startswith("-") and not a.startswith("--") and "f" in a) for a in args
    ):
        return Deny("git-clean", "git clean -f", "deletes untracked files for good")
    if sub in ("checkout", "restore", "switch") and (
        "--" in args
        or "." in args
        or any(a in ("-f", "--force", "--discard-changes", "--worktree", "-W") for a in args)
        or (sub == "restore" and "--staged" not in args and "-S" not in args)
    ):
        return Deny(f"git-{sub}-discard", shown, "throws uncommitted work away")
    if sub == "config" and any(a in ("--global", "--system") for a in args):
        return Deny("git-config-global", shown, "changes git for every project")
    if strict and sub not in GIT_STRICT:
        return Deny(
            "strict-allowlist",
            f"git {sub}",
            "the strict profile allows git's read-only commands, add and commit",
        )
    listing = ("-a", "-v", "-vv", "--list", "-l", "-r", "--show-current")
    if sub == "branch" and strict and any(a.startswith("-") and a not in listing for a in args):
        return Deny("strict-allowlist", shown, "the strict profile only lists branches")
    return None
