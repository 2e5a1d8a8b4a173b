"""What the policy answers about one tool call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Allow:
    pass


@dataclass(frozen=True)
class Deny:
    """A refusal: ``rule`` names the rule, ``what`` the part of the call it
    refused (``git push``, ``~/.ssh/id_rsa``), ``reason`` why, for a person
    and for the agent."""

    rule: str
    what: str
    reason: str

    @property
    def message(self) -> str:
        return f"denied by policy: {self.what} — {self.reason}"


Verdict = Allow | Deny
ALLOW = Allow()
