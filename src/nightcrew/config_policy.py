"""The ``[policy]`` table of the config: which tool calls of the agent the
harness refuses (see :mod:`nightcrew.toolpolicy`).

Checked here with our own wording, each error naming the file and the line of
the bad key, before the settings model sees the table.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from nightcrew.core.errors import LocatedError
from nightcrew.toolpolicy import PolicySpec

PROFILES = ("standard", "strict", "off")
_LISTS = ("bash_allow", "bash_deny")


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Literal["standard", "strict", "off"] = "standard"
    bash_allow: tuple[str, ...] = ()
    bash_deny: tuple[str, ...] = ()
    write_outside_project: bool = False

    def spec(self) -> PolicySpec:
        return PolicySpec(
            profile=self.profile,
            bash_allow=self.bash_allow,
            bash_deny=self.bash_deny,
            write_outside_project=self.write_outside_project,
        )


def _line(text: str, pattern: str, start: int = 0) -> int | None:
    match = re.compile(pattern, re.MULTILINE).search(text, start)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _problem(key: str, value: object) -> str | None:
    if key == "profile":
        if value not in PROFILES:
            return f"policy.profile: must be one of {', '.join(PROFILES)}, not {value!r}"
    elif key in _LISTS:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            return f"policy.{key}: must be a list of command names or patterns, none empty"
    elif key == "write_outside_project":
        if not isinstance(value, bool):
            return "policy.write_outside_project: must be true or false"
    else:
        return f"unknown setting 'policy.{key}'"
    return None


def check_policy_table(table: dict[str, Any], path: str, text: str, tool: bool) -> None:
    """Raise :class:`LocatedError` for the first bad value under ``policy``
    (``tool``: the table lives in pyproject's ``[tool.nightcrew]``)."""
    if "policy" not in table:
        return
    value = table["policy"]
    header = r"^[ \t]*\[tool\.nightcrew\.policy\]" if tool else r"^[ \t]*\[policy\]"
    table_line = _line(text, header)
    if not isinstance(value, dict):
        raise LocatedError(path, _line(text, r"^[ \t]*policy[ \t]*="), "policy must be a table")
    for key, item in value.items():
        problem = _problem(key, item)
        if problem is not None:
            start = 0
            if table_line is not None:
                start = len("".join(text.splitlines(keepends=True)[:table_line]))
            line = _line(text, rf"^[ \t]*{re.escape(key)}[ \t]*=", start) or table_line
            raise LocatedError(path, line, problem)
