"""A passed feature in a worktree, landed through the merge queue.

Its work is committed on its own branch, then queued (:mod:`merge_queue`).
Landed: the attempt passes with the integration branch's new commit. The
merged result failed: the attempt fails with what failed after merging, and
the next attempt starts from that merged result (its work uncommitted on the
integration head, so only the fixed work is ever committed). A conflict: the
worktree is left mid-rebase onto the integration head with the conflicting
files, and the next attempt (one) is told to resolve them with both features'
intent; if the conflict is still there after it, the feature waits for a
person (:func:`rebase_left`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from nightcrew import gitmerge, gitops
from nightcrew.core import events as ev
from nightcrew.core.errors import GitError
from nightcrew.core.states import AttemptState
from nightcrew.engine import gates as gates_mod
from nightcrew.engine.attempt_run import (
    AttemptResult,
    Job,
    commit_work,
    finish,
    finish_passed,
)
from nightcrew.engine.context import RunContext
from nightcrew.engine.item import ItemOutcome
from nightcrew.engine.merge_queue import Landed, Landing
from nightcrew.engine.prompt import PreviousFailure
from nightcrew.work.backlog import Feature

# A failed attempt's signature when it ended on a conflict: this, then the files.
CONFLICT_SIGNATURE = "conflict:"


class _Feature(Protocol):
    @property
    def feature(self) -> Feature: ...

    @property
    def job(self) -> Job: ...

    def commit_failed(
        self, ctx: RunContext, result: AttemptResult, baseline: gates_mod.TestIds | None
    ) -> ItemOutcome: ...

    def mark_passed(
        self, ctx: RunContext, commit: str | None, baseline: gates_mod.TestIds | None
    ) -> ItemOutcome: ...


async def land(
    ctx: RunContext,
    work: _Feature,
    result: AttemptResult,
    message: str,
    trailers: Mapping[str, str],
    baseline: gates_mod.TestIds | None,
) -> ItemOutcome | AttemptResult:
    """Commit the passed work on the feature's branch and land it."""
    queue = ctx.landing
    assert queue is not None
    name = work.job.name
    committed = commit_work(ctx, result, message, trailers)
    if committed.state is not None:  # the commit failed: the work is kept as a patch
        return work.commit_failed(ctx, committed, baseline)
    tip = ctx.workspace.base()
    base = committed.attempt.base_sha
    if tip is None or base is None or tip == base:  # nothing to land
        _, baseline = finish_passed(ctx, committed, name, baseline)
        return work.mark_passed(ctx, None, baseline)
    if ctx.settings.branch_per_feature:  # left on its own branch for a person to merge
        _, baseline = finish_passed(ctx, committed, name, baseline)
        ctx.reporter.emit(
            ev.BranchKept(run_id=ctx.run.id, lane=ctx.lane, item=name, branch=_branch(ctx), sha=tip)
        )
        return work.mark_passed(ctx, tip, baseline)
    ctx.progress.set(phase="merge queue")
    ctx.reporter.emit(ctx.progress.event())
    ctx.reporter.emit(
        ev.MergeQueued(run_id=ctx.run.id, lane=ctx.lane, item=name, ahead=len(queue.waiting))
    )
    evidence = Path(committed.attempt.evidence_dir or ctx.project.run_dir(ctx.run.id)) / "merge"
    if ctx.slot is not None:  # no agent works on it while it waits: another lane's may
        ctx.slot.give()
    landed = await queue.land(
        Landing(
            feature=work.feature.id,
            item=name,
            title=work.feature.name,
            tip=tip,
            base=base,
            message=message,
            gates=(*work.job.extra_gates, *ctx.gate_specs),
            evidence_dir=evidence,
            baseline=baseline,
            env={**os.environ, **ctx.lane_env} if ctx.lane_env else None,
            checked_tree=result.checked_tree,
            own_gates=len(work.job.extra_gates),
        )
    )
    if landed.outcome == "landed":
        assert landed.head is not None
        ctx.reporter.emit(
            ev.MergeLanded(
                run_id=ctx.run.id,
                lane=ctx.lane,
                item=name,
                branch=landed.branch,
                sha=landed.head,
                merge_seconds=landed.merge_seconds,
                gate_seconds=landed.gate_seconds,
                checkout=landed.checkout,
                checks_reused=landed.checks_reused,
                checked_with=landed.checked_with,
            )
        )
        landed_result = replace(committed, commit=landed.head)
        # Checks reused: the lane's results are the merged result's (the same tree).
        merged_results = None if landed.checks_reused else landed.results
        _, baseline = finish_passed(ctx, landed_result, name, baseline, results=merged_results)
        return work.mark_passed(ctx, landed.head, baseline)
    if landed.outcome == "failed":
        return _rejected(ctx, work, committed, landed)
    return _conflicted(ctx, work, committed, landed)


def _branch(ctx: RunContext) -> str:
    return gitops.current_branch(ctx.workspace.cwd) or ""


def _rejected(
    ctx: RunContext, work: _Feature, result: AttemptResult, landed: Landed
) -> AttemptResult:
    """The merged result failed its checks: the next attempt starts from it."""
    assert landed.head is not None and landed.digest is not None
    ctx.reporter.emit(
        ev.MergeRejected(
            run_id=ctx.run.id,
            lane=ctx.lane,
            item=work.job.name,
            branch=landed.branch,
            failed=tuple(r.name for r in landed.results if not r.passed),
            merged_since=landed.merged_since,
        )
    )
    # The next attempt starts from the merged result's files, on top of the
    # integration head, with the feature's work uncommitted: the commit that
    # failed after merging must not reach the branch when the fix lands.
    ctx.workspace.reset(landed.head)
    gitmerge.uncommit(ctx.workspace.cwd, landed.onto)
    ended = finish(
        ctx,
        result,
        AttemptState.FAILED,
        "failed after merging",
        end="failed",
        digest=landed.digest,
        signature=f"merge:{landed.signature or ''}",
    )
    return replace(
        ended,
        signature=f"merge:{landed.signature or ''}",
        previous=PreviousFailure(result.number, "failed", landed.digest),
        base_after=landed.onto,
    )


def _conflicted(
    ctx: RunContext, work: _Feature, result: AttemptResult, landed: Landed
) -> AttemptResult:
    """Leave the worktree mid-rebase onto the integration head, and tell the
    next attempt what conflicts and what both sides meant."""
    root = ctx.workspace.cwd
    ctx.reporter.emit(
        ev.MergeConflicted(
            run_id=ctx.run.id,
            lane=ctx.lane,
            item=work.job.name,
            branch=landed.branch,
            files=landed.conflicts,
        )
    )
    files = _start_rebase(root, landed.onto) or landed.conflicts
    feature = work.feature
    lines = [
        f"Your work passed on its own, but it conflicts with what landed on {landed.branch}"
        f" since it began, in: {', '.join(files)}.",
        f"A rebase onto {landed.onto[:8]} is in progress in your working tree. Resolve every"
        " conflict (remove the <<<<<<< ======= >>>>>>> markers) so that both sides' intent"
        " holds, `git add` the files, then run `GIT_EDITOR=true git rebase --continue`.",
        f"This feature (yours): {feature.name}: {feature.description}".strip(),
    ]
    if landed.merged_since:
        lines.append("What landed meanwhile (theirs): " + "; ".join(landed.merged_since) + ".")
    digest = "\n".join(lines)
    signature = CONFLICT_SIGNATURE + ",".join(files)
    ended = finish(
        ctx,
        result,
        AttemptState.FAILED,
        "conflict with the integration branch",
        end="failed",
        digest=digest,
        signature=signature,
    )
    return replace(
        ended,
        signature=signature,
        previous=PreviousFailure(result.number, "failed", digest),
        base_after=landed.onto,
    )


def _start_rebase(root: Path, onto: str) -> tuple[str, ...]:
    """Start rebasing the worktree's branch onto ``onto``; the files left in
    conflict (none: it applied here after all)."""
    identity = gitops._missing_identity(root)
    done = gitops._git(
        root, *identity, "-c", "core.editor=true", "rebase", "-q", onto, ok_codes=range(256)
    )
    return gitmerge.unmerged_files(root) if done.exit_code != 0 else ()


def rebase_left(root: Path) -> str | None:
    """After the agent's attempt at a conflict: finish the rebase when every
    conflict is resolved; else abort it and say what is still in conflict (the
    feature then waits for a person). None when no rebase was in progress or
    it is finished now."""
    if gitops.operation_in_progress(root) != "rebase":
        return None
    left = gitmerge.unmerged_files(root)
    if not left:
        gitops._git(root, "add", "-A")
        identity = gitops._missing_identity(root)
        done = gitops._git(
            root,
            *identity,
            "-c",
            "core.editor=true",
            "rebase",
            "--continue",
            ok_codes=range(256),
        )
        if done.exit_code == 0 and gitops.operation_in_progress(root) is None:
            return None
        left = gitmerge.unmerged_files(root)
    with contextlib.suppress(GitError):
        gitops._git(root, "rebase", "--abort")
    named = ", ".join(left) if left else "the rebase did not finish"
    return f"the conflict with the integration branch remains in {named}"
