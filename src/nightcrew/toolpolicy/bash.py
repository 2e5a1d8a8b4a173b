"""The rules for one shell command line. Every simple command of the line is
judged (see :mod:`shell`), with the directory it runs in followed through
``cd``; the first refusal wins."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass

from nightcrew.toolpolicy.git import judge_git
from nightcrew.toolpolicy.paths import Places, under
from nightcrew.toolpolicy.shell import (
    DYNAMIC,
    Group,
    Pipeline,
    Redirect,
    Simple,
    Unparsable,
    parse,
)
from nightcrew.toolpolicy.verdict import Deny

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "ash"})
INTERPRETERS = SHELLS | {"python", "python3", "perl", "ruby", "node", "php", "source", "."}
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "http", "https", "aria2c"})
AS_OTHER_USER = frozenset({"sudo", "doas", "su", "pkexec", "runuser"})
MACHINE = frozenset(
    {"shutdown", "reboot", "halt", "poweroff", "mkfs", "fdisk", "parted", "mount", "umount"}
    | {"crontab", "systemctl", "launchctl", "chroot", "useradd", "usermod", "passwd"}
)
# Commands whose path arguments they change (all operands, or only the last).
WRITES_ALL = frozenset({"rm", "rmdir", "unlink", "shred", "mv", "touch", "mkdir", "tee"})
WRITES_AFTER_FIRST = frozenset({"chmod", "chown", "chgrp"})
WRITES_LAST = frozenset({"cp", "ln", "install", "rsync", "scp"})
# Run the command that follows them, after their own options.
WRAPPERS = frozenset({"command", "builtin", "exec", "nohup", "nice", "time", "stdbuf"})
WRAPPER_ARG_OPTIONS = {"nice": {"-n"}, "stdbuf": {"-i", "-o", "-e"}, "timeout": {"-s", "-k"}}
XARGS_ARG_OPTIONS = {"-I", "-i", "-n", "-P", "-d", "-L", "-l", "-s", "-E", "-e", "-a"}

STRICT_ALLOWED = frozenset(
    # looking at files and text
    {"ls", "cat", "head", "tail", "wc", "grep", "egrep", "fgrep", "rg", "find", "fd", "tree"}
    | {"file", "stat", "du", "df", "diff", "cmp", "sort", "uniq", "cut", "tr", "sed", "awk"}
    | {"echo", "printf", "pwd", "which", "type", "true", "false", "test", "[", "basename"}
    | {"dirname", "realpath", "readlink", "date", "sleep", "jq", "xxd", "od", "nl", "column"}
    # files and directories inside the project
    | {"cd", "pushd", "popd", "cp", "mv", "mkdir", "touch", "rm", "rmdir", "ln", "chmod", "tee"}
    | {"export", "set", "unset", "source", ".", "xargs", "env", "timeout"}
    # shell builtins that run nothing of their own
    | {"[[", "read", "exit", "return", "shift", "wait", ":", "local", "declare"}
    | WRAPPERS
    # Python, Node, Go, Rust, Ruby, JVM and make: package managers, test runners, linters
    | {"python", "python3", "pip", "pip3", "uv", "uvx", "poetry", "pdm", "hatch", "tox", "nox"}
    | {"pytest", "ruff", "mypy", "pyright", "black", "isort", "flake8", "pylint", "coverage"}
    | {"node", "npm", "npx", "pnpm", "yarn", "bun", "deno", "tsc", "jest", "vitest", "eslint"}
    | {"prettier", "go", "gofmt", "cargo", "rustc", "rustfmt", "ruby", "bundle", "rake"}
    | {"rspec", "mvn", "gradle", "make", "cmake", "ctest"}
    # processes
    | {"ps", "lsof", "pgrep"}
    | {"git"}
)


@dataclass(frozen=True)
class Rules:
    places: Places
    profile: str  # "standard" | "strict" | "off"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    write_outside_project: bool = False


def _matches(entry: str, words: Sequence[str]) -> bool:
    """A rule entry: a bare command name, or a glob over the command's words
    (``git push*``, ``npm publish *``)."""
    name = os.path.basename(words[0])
    if not any(c in entry for c in " *?["):
        return entry == name or entry == words[0]
    text = " ".join([name, *words[1:]])
    return fnmatch.fnmatchcase(text, entry) or fnmatch.fnmatchcase(" ".join(words), entry)


def _shown(words: Sequence[str]) -> str:
    text = " ".join(w.replace(DYNAMIC, "$(…)") for w in words)
    return text if len(text) <= 80 else text[:77] + "…"


class _Judge:
    def __init__(self, rules: Rules) -> None:
        self.r = rules
        self.p = rules.places

    # ---- walking the line ------------------------------------------------

    def line(self, text: str, cwd: str | None, depth: int = 0) -> Deny | None:
        try:
            pipelines = parse(text, depth)
        except Unparsable as exc:
            if self.r.profile == "off":
                return None
            return Deny(
                "unparsable",
                _shown(text.split()) or "the command",
                f"cannot read this command line with confidence ({exc});"
                " split it into plain commands",
            )
        return self.pipelines(pipelines, cwd, depth)[0]

    def pipelines(
        self, pipelines: list[Pipeline], cwd: str | None, depth: int
    ) -> tuple[Deny | None, str | None]:
        for pipeline in pipelines:
            deny = self.pipe_to_shell(pipeline)
            if deny:
                return deny, cwd
            for stage in pipeline.stages:
                if isinstance(stage, Group):
                    deny, inner = self.pipelines(stage.body, cwd, depth)
                    deny = deny or self.redirects(stage.redirects, cwd)
                    if not stage.subshell and len(pipeline.stages) == 1:
                        cwd = inner
                else:
                    deny, cwd = self.simple(stage, cwd, depth)
                if deny:
                    return deny, cwd
        return None, cwd

    def pipe_to_shell(self, pipeline: Pipeline) -> Deny | None:
        if self.r.profile == "off":
            return None
        names = [_name(s) for s in pipeline.stages]
        for i, name in enumerate(names):
            if name in DOWNLOADERS and any(n in INTERPRETERS for n in names[i + 1 :]):
                shell = next(n for n in names[i + 1 :] if n in INTERPRETERS)
                return Deny(
                    "download-and-run",
                    f"{name} … | {shell}",
                    "runs code straight from the network",
                )
        return None

    # ---- one simple command ------------------------------------------------

    def simple(self, cmd: Simple, cwd: str | None, depth: int) -> tuple[Deny | None, str | None]:
        for inner in cmd.nested:
            deny, _ = self.pipelines([inner], cwd, depth + 1)
            if deny:
                return deny, cwd
        words = _strip(cmd.words)
        deny = self.redirects(cmd.redirects, cwd)
        if deny or not words:
            return deny, cwd
        for entry in self.r.deny:
            if _matches(entry, words):
                reason = f"matches your bash_deny rule '{entry}'"
                return Deny("bash_deny", _shown(words), reason), cwd
        if self.r.profile == "off":
            return None, _cd(self.p, words, cwd)
        allowed = any(_matches(entry, words) for entry in self.r.allow)
        deny = self.paths(words, cwd)
        if deny is None and not allowed:
            deny = self.command(words, cwd, depth, cmd)
        return deny, _cd(self.p, words, cwd)

    def _made_in(self, word: str, cwd: str | None) -> str | None:
        """Where a redirection whose file name ends in a variable writes: its
        known directory stands for it (the name cannot leave that directory)."""
        directory = _literal_dir(word)
        where = None if directory is None else self.p.resolve(directory, cwd)
        return None if where is None else os.path.join(where, "file")  # a file in it

    def command(self, words: list[str], cwd: str | None, depth: int, cmd: Simple) -> Deny | None:
        name = os.path.basename(words[0])
        shown = _shown(words)
        if DYNAMIC in words[0] or "$" in words[0]:
            return Deny("dynamic-command", shown, "the command's name is only known when it runs")
        if name in AS_OTHER_USER:
            return Deny("sudo", shown, "runs as another user; the agent works as you")
        if name in MACHINE or name.startswith("mkfs"):
            return Deny("machine", shown, "changes the machine, not the project")
        strict = self.r.profile == "strict"
        if strict and name not in STRICT_ALLOWED and not (name in SHELLS and "-c" in words):
            return Deny(
                "strict-allowlist",
                name,
                "not in the strict profile's allowlist (bash_allow adds commands)",
            )
        if name in ("env", "timeout", "xargs", *WRAPPERS):
            rest = _unwrap(name, words)
            if rest is None:
                return Deny("unparsable", shown, f"cannot tell what {name} runs")
            if not rest:
                return None
            if name == "xargs" and os.path.basename(rest[0]) == "rm":
                return Deny("xargs-rm", shown, "deletes paths only known when it runs")
            return self.simple(Simple(words=rest), cwd, depth)[0]
        if name in SHELLS or name == "eval":
            return self.shell(name, words, cwd, depth)
        if name in ("source", ".") and any(DYNAMIC in w for w in words[1:]):
            return Deny("dynamic-code", shown, "runs code only known when it runs")
        if name == "git":
            return judge_git(self.p, self.r.profile == "strict", words, cwd, shown)
        if name == "find":
            return self.find(words, cwd, depth)
        if name in DOWNLOADERS:
            for flag in ("-o", "-O", "--output", "--output-document"):
                if flag in words[:-1]:
                    return self.write(words[words.index(flag) + 1], cwd, shown)
        if name == "dd":
            for word in words[1:]:
                if word.startswith("of="):
                    return self.write(word[3:], cwd, shown)
        return self.writes(name, words, cwd)

    def shell(self, name: str, words: list[str], cwd: str | None, depth: int) -> Deny | None:
        if name == "eval":
            code = " ".join(words[1:])
        elif "-c" in words:
            at = words.index("-c")
            if at + 1 >= len(words):
                return Deny("unparsable", _shown(words), f"{name} -c without a command")
            code = words[at + 1]
        else:
            operands = _operands(words)
            if not operands or operands[0] == "-" or any(DYNAMIC in w for w in operands):
                # the code comes from a pipe or a substitution, unseen
                return Deny("dynamic-code", _shown(words), "runs code only known when it runs")
            return None  # a script file of the project
        if DYNAMIC in code:
            return Deny("dynamic-code", _shown(words), "runs code only known when it runs")
        return self.line(code, cwd, depth + 1)

    def find(self, words: list[str], cwd: str | None, depth: int) -> Deny | None:
        starts = [w for w in words[1:] if not w.startswith(("-", "(", "!", ")"))]
        if "-delete" in words:
            for path in starts[:1] or ["."]:
                deny = self.write(path, cwd, _shown(words), tree=True)
                if deny:
                    return deny
        for action in ("-exec", "-execdir", "-ok", "-okdir"):
            if action in words:
                at = words.index(action)
                inner = []
                for w in words[at + 1 :]:
                    if w in (";", "+"):
                        break
                    inner.append(w)
                if inner:
                    if os.path.basename(inner[0]) in ("rm", "shred", "unlink") and starts:
                        deny = self.write(starts[0], cwd, _shown(words), tree=True)
                        if deny:
                            return deny
                    deny = self.simple(Simple(words=[w for w in inner if w != "{}"]), cwd, depth)[0]
                    if deny:
                        return deny
        return None

    # ---- paths ---------------------------------------------------------

    def paths(self, words: list[str], cwd: str | None) -> Deny | None:
        """No word of any command may name a secret or another user's home."""
        for word in words[1:]:
            for part in {word, word.split("=", 1)[-1]}:
                if not part or (part.startswith("-") and "=" not in word):
                    continue
                path = self.p.resolve(part, cwd)
                if path is None:
                    continue
                secret = self.p.secret(path)
                if secret:
                    return Deny("secret-path", _shown(words), f"{secret} holds credentials")
                if self.p.other_home(path):
                    return Deny("other-home", _shown(words), "another user's home")
        return None

    def redirects(self, redirects: list[Redirect], cwd: str | None) -> Deny | None:
        if self.r.profile == "off":
            return None
        for redirect in redirects:
            if redirect.op == "<<":
                continue
            path = self.p.resolve(redirect.target, cwd)
            shown = f"{redirect.op} {redirect.target}"
            if path is not None:
                secret = self.p.secret(path)
                if secret:
                    return Deny("secret-path", shown, f"{secret} holds credentials")
                if self.p.other_home(path):
                    return Deny("other-home", shown, "another user's home")
            if redirect.op not in ("<", "<<<"):
                deny = self.write(redirect.target, cwd, shown, made=True)
                if deny:
                    return deny
        return None

    def write(
        self, word: str, cwd: str | None, shown: str, tree: bool = False, made: bool = False
    ) -> Deny | None:
        """``word`` written, or deleted; ``tree``: a directory searched for
        what to delete (``find``), which may be the project itself; ``made``:
        a file a redirection creates, whose name may end in a variable
        (``> tests/test_$n.py``) as long as its directory is known."""
        path = self.p.resolve(word, cwd)
        if path is None and made:
            path = self._made_in(word, cwd)
        if path is not None and self.p.device(path):
            return None
        if path is not None:
            secret = self.p.secret(path)
            if secret:
                return Deny("secret-path", shown, f"{secret} holds credentials")
            if self.p.other_home(path):
                return Deny("other-home", shown, "another user's home")
        if self.r.write_outside_project:
            return None
        if path is None:
            return Deny("write-unknown-path", shown, "writes to a path only known when it runs")
        if not self.p.inside(path) and under(self.p.root, path):
            return Deny("project-root", shown, f"{path} holds the project")
        if self.p.scratch(path):
            return None
        if not self.p.inside(path):
            where = self.p.shown(path)
            reason = f"{where} is outside the project" if shown != word else "outside the project"
            return Deny("write-outside-project", shown, reason)
        if tree:
            return None
        if path == self.p.root:
            return Deny("project-root", shown, "would change the project directory itself")
        harness = self.p.harness(path)
        if harness:
            return Deny("harness-files", shown, f"{harness}/ belongs to the harness")
        return None

    def writes(self, name: str, words: list[str], cwd: str | None) -> Deny | None:
        operands = _operands(words)
        if name in WRITES_ALL:
            targets = operands
        elif name in WRITES_AFTER_FIRST:
            targets = operands[1:]
        elif name in WRITES_LAST:
            if "-t" in words[:-1]:
                targets = [words[words.index("-t") + 1]]
            else:
                targets = operands[-1:] if len(operands) > 1 else []
        else:
            return None
        for target in targets:
            deny = self.write(target, cwd, _shown(words))
            if deny:
                return deny
        return None


def _name(stage: Simple | Group) -> str:
    words = _strip(stage.words) if isinstance(stage, Simple) else []
    return os.path.basename(words[0]) if words else ""


def _strip(words: list[str]) -> list[str]:
    """Without leading ``NAME=value`` assignments."""
    i = 0
    while i < len(words) and _assignment(words[i]):
        i += 1
    return words[i:]


def _assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.replace("_", "a").isalnum() and not name[0].isdigit()


def _operands(words: list[str]) -> list[str]:
    out: list[str] = []
    options = True
    for word in words[1:]:
        if options and word == "--":
            options = False
        elif options and word.startswith("-") and word != "-":
            continue
        else:
            out.append(word)
    return out


def _unwrap(name: str, words: list[str]) -> list[str] | None:
    """The command a wrapper runs ([] for none, None when unclear)."""
    i = 1
    if name == "command" and any(w in ("-v", "-V") for w in words[1:2]):
        return []
    takes_arg = WRAPPER_ARG_OPTIONS.get(name, set())
    if name == "xargs":
        takes_arg = XARGS_ARG_OPTIONS
    while i < len(words):
        word = words[i]
        if name == "env" and (_assignment(word) or word in ("-i", "-")):
            i += 1
        elif name == "env" and word in ("-u", "-C", "--chdir", "--unset"):
            if word in ("-C", "--chdir"):
                return None
            i += 2
        elif word.startswith("-") and word != "-":
            i += 2 if word in takes_arg else 1
        else:
            break
    if name == "timeout" and i < len(words):
        i += 1  # the duration
    if name == "xargs" and i >= len(words):
        return ["echo"]
    return words[i:]


def _cd(places: Places, words: list[str], cwd: str | None) -> str | None:
    name = os.path.basename(words[0])
    if name not in ("cd", "pushd", "popd"):
        return cwd
    if name == "popd":
        return None
    args = [w for w in words[1:] if not w.startswith("-")]
    if not args:
        return places.home
    return places.resolve(args[0], cwd)


def judge_bash(rules: Rules, command: str) -> Deny | None:
    return _Judge(rules).line(command, rules.places.root)


def judge_write(rules: Rules, path: str) -> Deny | None:
    return _Judge(rules).write(path, rules.places.root, path)


def _literal_dir(word: str) -> str | None:
    """The directory a redirection target names before its first variable
    (``tests/test_$n.py`` → ``tests``), when that part is plain text; None when
    the variable could reach further (``$X/y``, ``a$X/b``, ``../$X``)."""
    cut = len(word)
    for mark in ("$", DYNAMIC):
        if mark in word:
            cut = min(cut, word.index(mark))
    prefix, rest = word[:cut], word[cut:]
    if "/" in rest or ".." in prefix.split("/"):
        return None  # the variable names a directory, or climbs
    return prefix.rsplit("/", 1)[0] if "/" in prefix else "."
