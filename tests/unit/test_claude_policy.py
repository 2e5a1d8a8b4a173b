"""Which Claude Code tool calls the policy judges, and as what."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightcrew.agents.claude.policy import judge
from nightcrew.toolpolicy import ALLOW, Deny, PolicySpec, ToolPolicy

HOME = "/home/dev"


@pytest.mark.parametrize(
    ("tool", "given", "expected"),
    [
        ("Bash", {"command": "git push"}, "git-push"),
        ("Bash", {"command": "pytest -q"}, None),
        ("Write", {"file_path": "/etc/x", "content": ""}, "write-outside-project"),
        (
            "Edit",
            {"file_path": "/etc/x", "old_string": "a", "new_string": "b"},
            "write-outside-project",
        ),
        ("MultiEdit", {"file_path": "/etc/x", "edits": []}, "write-outside-project"),
        ("NotebookEdit", {"notebook_path": "/etc/x.ipynb"}, "write-outside-project"),
        ("Write", {"file_path": "src/ok.py", "content": ""}, None),
        ("Read", {"file_path": f"{HOME}/.ssh/id_rsa"}, "secret-path"),
        ("Read", {"file_path": "/usr/lib/os.py"}, None),
        ("Grep", {"pattern": "key", "path": f"{HOME}/.aws"}, "secret-path"),
        ("Grep", {"pattern": "~/.ssh"}, None),
        ("Glob", {"pattern": f"{HOME}/.config/gh/*"}, "secret-path"),
        ("mcp__nightcrew__backlog_list", {}, None),
        ("TodoWrite", {"todos": []}, None),
    ],
)
def test_each_tool_is_judged_by_what_it_does(
    tmp_path: Path, tool: str, given: dict[str, object], expected: str | None
) -> None:
    policy = ToolPolicy(PolicySpec(), tmp_path, home=HOME)
    verdict, summary = judge(policy, tool, given)
    assert (verdict.rule if isinstance(verdict, Deny) else None) == expected
    assert summary.startswith(tool)
    if expected is None:
        assert verdict == ALLOW
