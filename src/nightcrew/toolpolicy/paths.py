"""Where a path points, as the policy sees it: inside the project, in the
harness's own files, among a person's secrets, in another user's home."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

from nightcrew.toolpolicy.shell import DYNAMIC

# Credentials under the home directory an agent never needs.
SECRET_DIRS = (
    ".ssh",
    ".aws",
    ".config/gh",
    ".gnupg",
    ".netrc",
    ".git-credentials",
    ".docker/config.json",
    ".kube",
    ".config/gcloud",
    ".azure",
    ".pypirc",
    ".npmrc",
)
# Writing these is never a program's output: the null device and friends.
DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/")
# The harness's own files inside the project.
HARNESS_DIRS = (".git", ".nightcrew")
_GLOB = set("*?[")
# Where the homes of a machine's users live.
HOMES = ("/home", "/Users", "/var/home")


def under(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


@dataclass(frozen=True)
class Places:
    root: str  # the project, symlinks resolved
    home: str
    # Scratch space anyone may write: the system's temp directories.
    temp: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, root: str, home: str | None = None, temp: tuple[str, ...] | None = None) -> Places:
        home = home or os.path.expanduser("~")
        if temp is None:
            temp = (tempfile.gettempdir(), "/tmp")
        scratch = tuple(sorted({os.path.realpath(t) for t in temp}))
        return cls(os.path.realpath(root), os.path.realpath(home), scratch)

    def resolve(self, word: str, cwd: str | None) -> str | None:
        """The absolute path ``word`` names when run in ``cwd``; None when it
        cannot be known (a variable, a substitution, an unknown directory).
        A glob stands for the directory it lists."""
        text = word
        for name in ("${HOME}", "$HOME"):
            if text == name or text.startswith(name + "/"):
                text = self.home + text[len(name) :]
        if text == "~" or text.startswith("~/"):
            text = self.home + text[1:]
        elif text.startswith("~"):
            text = os.path.expanduser(text)
            if text.startswith("~"):
                return None
        if "$" in text or DYNAMIC in text:
            return None
        if any(c in _GLOB for c in text):
            cut = min(text.index(c) for c in _GLOB if c in text)
            text = text[:cut].rsplit("/", 1)[0] if "/" in text[:cut] else "."
        if not os.path.isabs(text):
            if cwd is None:
                return None
            text = os.path.join(cwd, text)
        return os.path.realpath(os.path.normpath(text))

    def inside(self, path: str) -> bool:
        return under(path, self.root)

    def secret(self, path: str) -> str | None:
        """The secret directory ``path`` is in (``~/.ssh``), or None."""
        for name in SECRET_DIRS:
            if under(path, os.path.join(self.home, name)):
                return "~/" + name
        return None

    def other_home(self, path: str) -> bool:
        if under(path, self.home) or self.inside(path):
            return False
        if any(path != r and under(path, r) for r in HOMES):
            return True
        return self.home != "/root" and under(path, "/root")

    def scratch(self, path: str) -> bool:
        """Inside a temp directory (not the directory itself, not a home)."""
        if under(path, self.home):
            return False
        return any(path != t and under(path, t) for t in self.temp)

    def device(self, path: str) -> bool:
        return any(path == d or (d.endswith("/") and path.startswith(d)) for d in DEVICES)

    def harness(self, path: str) -> str | None:
        for name in HARNESS_DIRS:
            if under(path, os.path.join(self.root, name)):
                return name
        return None

    def shown(self, path: str) -> str:
        """``path`` as a person reads it: relative to the project or ``~``."""
        if self.inside(path):
            return os.path.relpath(path, self.root)
        if under(path, self.home):
            return "~" + path[len(self.home) :]
        return path
