"""Several features at once, each in a git worktree of its own.

A build with ``--parallel N`` (or ``--worktree``) works in worktrees under
``.nightcrew/worktrees/``: each claimed feature gets ``<id>-<slug>`` on the
branch ``nightcrew/<id>-<slug>``, made from the integration branch's head. The
agent, its acceptance commands and the gates run there; what passes lands
through the build's merge queue (:mod:`merge_queue`). The user's own checkout
is never worked in, so a dirty one does not stop such a build.

Each lane's context is the run's with the lane's workspace, its line of the
live display, its environment (``NIGHTCREW_LANE``, ports) and a reporter that
stamps the lane on every event.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path

from nightcrew import gitmerge, gitops, worktrees
from nightcrew.core import events as ev
from nightcrew.core.errors import BadInput
from nightcrew.engine.context import RunContext
from nightcrew.engine.lane_env import run_setup, setup_event, worktree_env
from nightcrew.engine.merge_queue import MergeQueue
from nightcrew.engine.report import Progress, Reporter
from nightcrew.engine.workspace import InWorktree
from nightcrew.work.backlog import Feature

WORKTREES = "worktrees"  # under the project's state dir


class LaneReporter:
    """The run's reporter, saying which lane each event comes from."""

    def __init__(self, reporter: Reporter, lane: int) -> None:
        self._reporter = reporter
        self._lane = lane

    def emit(self, event: ev.Event) -> None:
        if event.lane == 0:
            event = replace(event, lane=self._lane)
        self._reporter.emit(event)

    def close(self) -> None:
        pass


def integration_branch(root: Path, wanted: str | None) -> str:
    """The branch features land on: ``wanted`` (made from HEAD when it does
    not exist yet), else the branch checked out in the user's tree."""
    if wanted:
        done = gitops._git(root, "check-ref-format", "--branch", wanted, ok_codes=range(256))
        if done.exit_code != 0:
            raise BadInput(f"--branch {wanted}: not a valid branch name")
        if gitmerge.rev_parse(root, f"refs/heads/{wanted}") is None:
            head = gitops.head_sha(root)
            if head is None:
                raise BadInput("--branch: the repository has no commit to branch from yet")
            gitops._git(root, "branch", wanted, head)
        return wanted
    branch = gitops.current_branch(root)
    if branch is None:
        raise BadInput(
            "HEAD is detached: check out the branch features should land on, or pass --branch NAME"
        )
    if gitops.head_sha(root) is None:
        raise BadInput(f"{branch} has no commit yet: commit something to build on first")
    return branch


@dataclass
class Lanes:
    """The worktrees and the merge queue of one build."""

    root: Path  # the user's checkout (the repository)
    state_dir: Path  # the project's .nightcrew
    queue: MergeQueue
    count: int
    # The repository's main worktree, found once: every lane's path is under it
    # and the scheduler asks for the paths at each claim.
    _main: Path | None = field(default=None, init=False, repr=False)

    @property
    def dir(self) -> Path:
        return self.state_dir / WORKTREES

    def branch_for(self, feature: Feature) -> str:
        return worktrees.branch_name(feature.id, feature.name)

    def path_for(self, feature: Feature) -> Path:
        if self._main is None:
            self._main = worktrees.main_root(self.root)
        return worktrees.worktree_path(self.root, self.branch_for(feature), main=self._main)

    async def context(self, ctx: RunContext, feature: Feature, lane: int) -> RunContext | str:
        """The lane's context for ``feature``, its worktree made (or kept) and
        set up (``worktree_setup``); a one-line reason when the setup failed."""
        path, branch = self.path_for(feature), self.branch_for(feature)
        base = self.queue.head()
        reused = await asyncio.to_thread(self._worktree, path, branch, base)
        reporter = LaneReporter(ctx.reporter, lane)
        item = f"feature {feature.label}"
        reporter.emit(
            ev.WorktreeReady(
                run_id=ctx.run.id,
                item=item,
                path=str(path),
                branch=branch,
                base=base,
                reused=reused,
            )
        )
        env = worktree_env(lane, ctx.settings, project_root=self.root, worktree=path)
        commands = ctx.settings.worktree_setup
        if commands and not reused:
            evidence = ctx.project.run_dir(ctx.run.id) / f"feature-{feature.id}" / "setup"
            setup = await asyncio.to_thread(
                run_setup, commands, path, env, evidence, ctx.settings.gate_timeout
            )
            reporter.emit(setup_event(setup, item=item, run_id=ctx.run.id, lane=lane))
            if setup.reason is not None:
                return setup.reason
        return replace(
            ctx,
            workspace=InWorktree(
                path,
                branch=branch,
                patch_dest=ctx.project.run_dir(ctx.run.id) / f"feature-{feature.id}-commit.patch",
            ),
            reporter=reporter,
            progress=Progress(run_id=ctx.run.id, unit="feature", lane=lane),
            agent_env={**ctx.agent_env, **env},
            lane_env=env,
            left_alone=frozenset(),
            landing=self.queue,
            lane=lane,
        )

    def _worktree(self, path: Path, branch: str, base: str) -> bool:
        """Make the feature's worktree; True when a stopped build's is kept.
        (Serialised and safe against git's lock files: :mod:`nightcrew.worktrees`.)"""
        return worktrees.add_worktree(self.root, path, branch, base).reused

    def remove(self, feature: Feature, *, branch: bool) -> None:
        """Remove the feature's worktree (its work has landed or is kept as a patch)."""
        worktrees.remove_worktree(
            self.root,
            self.path_for(feature),
            delete_branch=branch,
            branch=self.branch_for(feature),
        )
