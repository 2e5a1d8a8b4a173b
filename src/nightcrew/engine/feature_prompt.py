"""The prompt of an attempt at a backlog feature.

Like a batch's: a stable prefix, byte-identical for every attempt of a build
(the project, the harness's rules, the project's gates, the backlog tools),
then a suffix with this feature: its text and steps, the acceptance commands
the harness will run, the features it builds on, a person's answer when it
asked for one, a person's review comments on an earlier attempt's diff,
recent commits and the previous attempt's failure digest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from nightcrew.engine.prompt import PreviousFailure, failure_section
from nightcrew.store.reviews import ReviewComment
from nightcrew.work.backlog import Feature


def backlog_prefix(
    *,
    project_root: Path,
    gate_lines: Sequence[str],
    commit: bool,
    tools: Callable[[str], str] | None,
    worktree: bool = False,
) -> str:
    """``tools`` names a backlog tool as the agent knows it (the backend's
    ``tool_name``); None when the agent has no backlog tools. With ``worktree``
    the agent works in a worktree of its own (the same prefix for every lane,
    so none is told another's directory or the person's checkout)."""
    gates = "\n".join(f"- {line}" for line in gate_lines) or "- (no project gates configured)"
    commit_rule = (
        "You may commit your work; anything you leave uncommitted is committed by the"
        " harness once the checks pass."
        if commit
        else "Do not commit: the person running this reviews the changes themselves."
    )
    parts = [
        "You are working unattended on one feature of an app's backlog, driven by nightcrew.",
        (
            "Project root: your current directory, a git worktree of the project on this"
            " feature's own branch. Work only there; other agents work in other worktrees."
            if worktree
            else f"Project root: {project_root}"
        ),
        "",
        "## How your work is judged",
        "When you finish, the harness (not you) decides whether the feature is done. It"
        " runs the feature's acceptance commands (listed with the feature below), then"
        " these project checks, in the project root:",
        gates,
        "Every one must pass. Run them yourself before you finish. A test that passed"
        " before must still pass. Build only this feature; other features come later.",
        commit_rule,
        "Never commit secrets (.env files, private keys, API keys): the harness refuses them.",
        "Do not touch the .nightcrew/ directory.",
    ]
    if tools is not None:
        parts += [
            "",
            "## Backlog tools",
            f"You have the backlog as tools ({tools('…')}):",
            f"- {tools('claim_passing')}: say the feature works. It is recorded, not"
            " believed: the harness verifies it by running the checks above.",
            f"- {tools('request_human_input')}: only when you cannot go on without a"
            " person (a secret, a product decision). The feature then waits for an answer"
            " and the build moves on; nobody answers during this session.",
            f"- {tools('get_feature')}, get_ready_features, get_stats,"
            " get_dependency_graph: read the backlog. Do not create, skip or re-order"
            " features unless this feature asks you to.",
        ]
    else:
        parts += [
            "Nobody can answer questions: decide, and say what you decided in your final message.",
        ]
    return "\n".join(parts)


def feature_suffix(
    *,
    feature: Feature,
    built_on: Sequence[Feature],
    recent_commits: Sequence[str],
    attempt: int,
    previous: PreviousFailure | None,
    review: Sequence[ReviewComment] = (),
) -> str:
    parts = [f"# Feature {feature.label} ({feature.category}): {feature.name}"]
    if feature.description.strip():
        parts += ["", feature.description.strip()]
    if feature.steps:
        parts += ["", "## Steps"]
        parts += [f"{n}. {step}" for n, step in enumerate(feature.steps, 1)]
    parts += [
        "",
        "## Acceptance: the harness runs these in the project root; each must exit 0",
    ]
    parts += [f"- `{command}`" for command in feature.acceptance]
    if feature.files:
        parts += ["", "## Files it will likely touch", *[f"- {f}" for f in feature.files]]
    if built_on:
        parts += ["", "## Already built (the features this one depends on; they passed)"]
        parts += [f"- {dep.label} {dep.name}" for dep in built_on]
    if feature.input_request and feature.input_answer:
        parts += [
            "",
            "## You asked a person, and they answered",
            f"Question: {feature.input_request}",
            f"Answer: {feature.input_answer}",
        ]
    parts += review_section(review)
    if recent_commits:
        parts += ["", "## Recent commits", *recent_commits]
    return "\n".join(parts + failure_section(attempt, previous))


def review_section(review: Sequence[ReviewComment]) -> list[str]:
    """A person's comments on lines of an earlier attempt's diff (the latest
    review sent back), each naming ``file:line``; nothing without one."""
    if not review:
        return []
    parts = [
        "",
        "## Review comments from a person",
        "A person read the changes of an earlier attempt and commented on these lines."
        " Address every comment; the acceptance commands above must still pass.",
    ]
    for comment in review:
        text = comment.text.strip().replace("\n", "\n  ")
        parts.append(f"- {comment.where}: {text}")
    return parts
