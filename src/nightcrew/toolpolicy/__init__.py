"""The harness's tool policy: what an agent may run and where it may write.

Backend-neutral: a backend asks :class:`ToolPolicy` about a shell command, a
file write or a file read (paths as the agent gave them, resolved against the
project root) and enforces the :data:`Verdict` through its own permission hook.

Profiles: ``standard`` refuses destructive and escaping commands and writes
outside the project; ``strict`` also allows only an allowlist of development
commands (plus ``bash_allow``); ``off`` enforces only ``bash_deny``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nightcrew.toolpolicy.bash import STRICT_ALLOWED, Rules, judge_bash, judge_write
from nightcrew.toolpolicy.paths import Places
from nightcrew.toolpolicy.verdict import ALLOW, Allow, Deny, Verdict

__all__ = ["ALLOW", "STRICT_ALLOWED", "Allow", "Deny", "PolicySpec", "ToolPolicy", "Verdict"]

Profile = Literal["standard", "strict", "off"]


@dataclass(frozen=True)
class PolicySpec:
    """The ``[policy]`` settings."""

    profile: Profile = "standard"
    bash_allow: tuple[str, ...] = ()
    bash_deny: tuple[str, ...] = ()
    write_outside_project: bool = False


class ToolPolicy:
    """Decides each tool call of an agent working in ``root``."""

    def __init__(
        self,
        spec: PolicySpec,
        root: Path,
        home: str | None = None,
        temp: tuple[str, ...] | None = None,
    ) -> None:
        self.spec = spec
        self.places = Places.of(str(root), home, temp)
        self.rules = Rules(
            places=self.places,
            profile=spec.profile,
            allow=spec.bash_allow,
            deny=spec.bash_deny,
            write_outside_project=spec.write_outside_project,
        )

    @property
    def active(self) -> bool:
        """Whether any call could be refused."""
        return self.spec.profile != "off" or bool(self.spec.bash_deny)

    def bash(self, command: str) -> Verdict:
        return judge_bash(self.rules, command) or ALLOW

    def write(self, path: str) -> Verdict:
        """A file tool writing ``path`` (Write, Edit)."""
        if self.spec.profile == "off":
            return ALLOW
        return judge_write(self.rules, path) or ALLOW

    def read(self, path: str) -> Verdict:
        """A file tool reading ``path`` (Read, Grep, Glob)."""
        if self.spec.profile == "off":
            return ALLOW
        resolved = self.places.resolve(path, self.places.root)
        if resolved is None:
            return ALLOW
        secret = self.places.secret(resolved)
        if secret:
            return Deny("secret-path", path, f"{secret} holds credentials")
        if self.places.other_home(resolved):
            return Deny("other-home", path, "another user's home")
        return ALLOW
