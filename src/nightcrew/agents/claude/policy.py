"""The harness's tool policy for Claude Code: a ``PreToolUse`` hook.

The hook sees every tool call, including those ``allowed_tools`` and
``permission_mode="acceptEdits"`` approve without asking (``can_use_tool``
would not). A refusal goes back as ``permissionDecision: "deny"``: the CLI
answers the agent's call with a tool error carrying the reason, and the
session goes on. A hook that fails blocks the call (``on_failure="block"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from claude_agent_sdk import HookMatcher

from nightcrew.agents.base import ToolDenied
from nightcrew.toolpolicy import ALLOW, Deny, ToolPolicy, Verdict

if TYPE_CHECKING:
    from claude_agent_sdk.types import HookEvent

WRITE_TOOLS = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path"}
WRITE_TOOLS["NotebookEdit"] = "notebook_path"
READ_TOOLS = {"Read": ("file_path",), "Grep": ("path",), "Glob": ("path", "pattern")}
READ_TOOLS["LS"] = ("path",)
READ_TOOLS["NotebookRead"] = ("notebook_path",)


def judge(policy: ToolPolicy, tool: str, given: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The policy's verdict on one Claude Code tool call, and the call in a few words."""
    if tool == "Bash":
        command = str(given.get("command", ""))
        first = command.strip().splitlines()[0] if command.strip() else ""
        return policy.bash(command), f"Bash: {first[:120]}"
    if tool in WRITE_TOOLS:
        path = str(given.get(WRITE_TOOLS[tool], ""))
        return policy.write(path), f"{tool}: {path}"
    if tool in READ_TOOLS:
        for key in READ_TOOLS[tool]:
            value = given.get(key)
            if isinstance(value, str) and value:
                verdict = policy.read(value)
                if isinstance(verdict, Deny):
                    return verdict, f"{tool}: {value}"
        return ALLOW, tool
    return ALLOW, tool


def pre_tool_use_hooks(
    policy: ToolPolicy, emit: Callable[[ToolDenied], None]
) -> dict[HookEvent, list[HookMatcher]]:
    """``ClaudeAgentOptions.hooks`` that enforce ``policy`` and ``emit`` each refusal."""

    async def hook(data: Any, tool_use_id: str | None, _context: Any) -> Any:
        tool = str(data.get("tool_name", ""))
        verdict, summary = judge(policy, tool, data.get("tool_input") or {})
        if not isinstance(verdict, Deny):
            return {}
        emit(
            ToolDenied(
                tool_use_id or data.get("tool_use_id"),
                tool,
                summary,
                verdict.rule,
                verdict.reason,
                verdict.message,
            )
        )
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": verdict.message,
            }
        }

    return {"PreToolUse": [HookMatcher(matcher=None, hooks=[hook], on_failure="block")]}
