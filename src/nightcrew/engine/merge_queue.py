"""The merge queue: a feature that passed in its own worktree reaches the
integration branch only after the gates and its acceptance commands pass on
the merged result.

Landings are taken in the order they came. Each is built in a scratch
worktree: the feature's commits rebased onto the integration head (or merged,
or squashed: ``merge = …``), then the checks run there. Only when they pass
does the branch move, by a fast-forward (:mod:`nightcrew.gitmerge`); a branch
someone moved meanwhile is merged onto again. A result that fails goes back to
its lane with what failed and what landed since its base; a conflict goes back
with the conflicting files. Git runs in a thread, so the other lanes' agents
stream on while a landing is checked.

Landings that wait together are checked together (``merge_batch``, as the
merge queues of GitHub and bors group pull requests): the queue puts up to
that many, one after the other, on the integration head and runs the checks
once on the result, every feature's acceptance commands and the project's
gates. When they pass, the branch moves over all of them at once, still one
commit (or merge) per feature. When they fail, the group is split in halves
and each half is checked on its own, down to a single feature, which then
goes back to its lane exactly as above: a broken result never lands, and a
failure is always pinned on one feature. Only a landing whose lane checked
the tree it would land (nothing landed since its base) lands on its own
first, without checks (:mod:`merge_group` holds what a group shares).

The user's checkout: when the integration branch is checked out there, it is
fast-forwarded as the branch moves (git updates only the files the landing
changes and refuses if one has uncommitted edits). If git refuses, the
checkout is left exactly as it is, and this build lands from then on on a
branch of its own, ``nightcrew/build-<run>``, made at the last head the
checkout has; the run's end says how to take it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nightcrew import gitmerge
from nightcrew.core.errors import GitError
from nightcrew.engine import gates as gates_mod
from nightcrew.engine import merge_group
from nightcrew.engine.digest import failure_signature, make_digest

_TRIES = 3  # times a landing is merged again when the branch moved under it


@dataclass(frozen=True)
class Landing:
    """A feature's passed work, asking to land."""

    feature: int
    item: str  # "feature #5"
    title: str
    tip: str  # the feature branch's head
    base: str  # the integration head its work started from
    message: str  # the commit message of a merge or squash
    gates: tuple[gates_mod.GateSpec, ...]  # its acceptance commands, then the project's gates
    evidence_dir: Path
    baseline: gates_mod.TestIds | None
    # The whole environment the checks run with: the lane's (its ports are free
    # while its feature waits here); None: nightcrew's own.
    env: Mapping[str, str] | None = None
    # The git tree the lane's gates passed on (``gates`` with ``baseline``), or None.
    checked_tree: str | None = None
    # How many of ``gates`` (the first ones) are this feature's own, its
    # acceptance commands; the rest are the project's gates.
    own_gates: int = 0


@dataclass(frozen=True)
class Landed:
    """What the queue made of a landing."""

    outcome: Literal["landed", "failed", "conflict"]
    onto: str  # the integration head the result was built on
    head: str | None = None  # landed: the branch's new head; failed: the merged result
    branch: str = ""
    results: tuple[gates_mod.GateResult, ...] = ()
    digest: str | None = None
    signature: str | None = None
    conflicts: tuple[str, ...] = ()
    merged_since: tuple[str, ...] = ()  # subjects of what landed since the feature's base
    merge_seconds: float = 0.0  # the queue's own git time
    gate_seconds: float = 0.0
    checkout: str = ""
    # Landed without running the checks again: the merged result's tree is the
    # one they passed on in the lane (``Landing.checked_tree``).
    checks_reused: bool = False
    # The other features whose landings were checked in one run with this one.
    checked_with: tuple[str, ...] = ()


@dataclass(eq=False)
class _Waiter:
    """A landing waiting for its turn, and what became of it."""

    landing: Landing
    done: asyncio.Event = field(default_factory=asyncio.Event)
    landed: Landed | None = None
    error: BaseException | None = None


class MergeQueue:
    """One per build: lands features on ``branch`` of the repository at ``root``."""

    def __init__(
        self,
        root: Path,
        branch: str,
        *,
        method: gitmerge.MergeMethod,
        scratch: Path,
        gate_timeout: float,
        run_id: str,
        batch: int = 1,
        on_take: Callable[[tuple[str, ...]], None] | None = None,
    ) -> None:
        self.root = root
        self.branch = branch
        self.method = method
        self.scratch = scratch
        self.gate_timeout = gate_timeout
        self.run_id = run_id
        self.batch = max(1, batch)  # landings checked together at most
        self.waiting: list[str] = []  # items in the queue, first is landing
        self.side_branch: str | None = None  # set when the user's checkout refused
        self._lock = asyncio.Lock()
        self._pending: list[_Waiter] = []  # not yet taken, oldest first
        # Told the items of each group the queue takes, as it takes them (on
        # the event loop's thread): the builder emits MergeChecking.
        self._on_take = on_take

    def head(self) -> str:
        sha = gitmerge.rev_parse(self.root, f"refs/heads/{self.branch}")
        if sha is None:
            raise GitError(f"the integration branch {self.branch} is gone")
        return sha

    async def land(self, landing: Landing) -> Landed:
        """Land ``landing`` when its turn comes; the merged result's checks decide.

        Whoever holds the queue takes every landing waiting then (up to
        ``batch``) and lands them as a group; the others find theirs done.
        The git work runs in a thread whose results reach every waiter even
        when the one that started it is cancelled."""
        waiter = _Waiter(landing)
        self._pending.append(waiter)
        self.waiting.append(landing.item)
        try:
            async with self._lock:
                while not waiter.done.is_set():
                    group = self._pending[: self.batch]
                    del self._pending[: len(group)]
                    if self._on_take is not None:
                        self._on_take(tuple(w.landing.item for w in group))
                    work = asyncio.ensure_future(
                        asyncio.to_thread(self._land_group, [w.landing for w in group])
                    )
                    work.add_done_callback(functools.partial(_settle, group))
                    with contextlib.suppress(Exception):  # each waiter gets its own error
                        await asyncio.shield(work)
            if waiter.error is not None:
                raise waiter.error
            assert waiter.landed is not None
            return waiter.landed
        finally:
            self.waiting.remove(landing.item)
            if waiter in self._pending:  # cancelled before its turn: it never lands
                self._pending.remove(waiter)

    def _land_group(self, landings: Sequence[Landing]) -> list[Landed]:
        """Land ``landings`` (in order), checked together where they can be."""
        out: dict[int, Landed] = {}
        self._settle_group(list(enumerate(landings)), out)
        return [out[n] for n in range(len(landings))]

    def _settle_group(self, group: list[tuple[int, Landing]], out: dict[int, Landed]) -> None:
        """Land what of ``group`` passes into ``out``; a group whose checks fail
        is split in halves, and a single landing goes the way it always did."""
        while len(group) > 1 and self._reusable(group[0][1]):
            n, first = group.pop(0)
            out[n] = self._land(first)
        if len(group) == 1:
            n, only = group[0]
            out[n] = self._land(only)
            return
        if not group:
            return
        tried = self._land_together(group)
        if tried is None:  # the group's checks failed: find the feature that fails them
            half = len(group) // 2
            self._settle_group(group[:half], out)
            self._settle_group(group[half:], out)
            return
        landed, alone = tried
        out.update(landed)
        for n, landing in alone:
            out[n] = self._land(landing)

    def _reusable(self, landing: Landing) -> bool:
        """Whether the landing's lane may have checked what it would land
        (nothing landed since its base): then it lands on its own, first."""
        return landing.checked_tree is not None and landing.base == self.head()

    def _land_together(
        self, group: Sequence[tuple[int, Landing]]
    ) -> tuple[dict[int, Landed], list[tuple[int, Landing]]] | None:
        """Put the group's landings on the integration head one after the
        other, check the result once, and move the branch over all of them.
        Returns what landed and the landings that must go on their own (they
        conflict with the ones before them); None when the checks failed."""
        first = group[0][1]
        path = self.scratch / f"merge-{first.feature}"
        for _ in range(_TRIES):
            onto = self.head()
            started = time.monotonic()
            gitmerge.add_detached(self.root, path, first.tip)
            try:
                members: list[tuple[int, Landing, str]] = []
                alone: list[tuple[int, Landing]] = []
                merged = onto
                for n, landing in group:
                    if self.method == "rebase" and members:
                        gitmerge.checkout_detached(path, landing.tip)
                    try:
                        merged = gitmerge.combine(
                            path, self.method, merged, landing.tip, landing.message
                        )
                    except gitmerge.Conflict:
                        alone.append((n, landing))  # it goes on its own, after the others
                        continue
                    members.append((n, landing, merged))
                if len(members) < 2:  # nothing to check together
                    return {}, [(n, landing) for n, landing in group]
                if alone:  # a given-up rebase leaves the worktree at that feature's tip
                    gitmerge.checkout_detached(path, merged)
                merge_seconds = time.monotonic() - started
                landings = [landing for _, landing, _ in members]
                items = [landing.item for landing in landings]
                shas = [sha for _, _, sha in members]
                checked = time.monotonic()
                scratch_evidence = self.scratch / f"checks-{first.feature}"
                results = gates_mod.run_gates(
                    merge_group.group_gates([(x.item, x.gates, x.own_gates) for x in landings]),
                    root=path,
                    evidence_dir=scratch_evidence,
                    baseline=merge_group.group_baseline([x.baseline for x in landings]),
                    base_sha=onto,
                    timeout_s=self.gate_timeout,
                    env=landings[0].env,
                )
                gate_seconds = time.monotonic() - checked
                passed = gates_mod.gates_passed(results)
                where = "" if passed else f"failed-in-a-group-of-{len(members)}"
                merge_group.share_evidence(
                    scratch_evidence,
                    [x.evidence_dir / where for x in landings],
                    merge_group.describe(items, shas, onto, self.branch, passed),
                )
                if not passed:
                    return None
                moving = time.monotonic()
                try:
                    checkout = self._advance(onto, merged)
                except gitmerge.Moved:
                    continue  # someone committed meanwhile: put them on the new head
                git_seconds = (merge_seconds + time.monotonic() - moving) / len(members)
                landed = {
                    n: Landed(
                        "landed",
                        onto,
                        head=sha,
                        branch=self.branch,
                        results=merge_group.kept_in(results, landing.evidence_dir),
                        merged_since=tuple(gitmerge.subjects(self.root, landing.base, onto)),
                        merge_seconds=git_seconds,
                        gate_seconds=gate_seconds,
                        checkout=checkout if sha == merged else "",
                        checked_with=tuple(i for i in items if i != landing.item),
                    )
                    for n, landing, sha in members
                }
                return landed, alone
            finally:
                gitmerge.remove_worktree(self.root, path)
        raise GitError(
            f"{self.branch} kept moving while {', '.join(x.item for _, x in group)}"
            f" were merged ({_TRIES} tries)"
        )

    def _land(self, landing: Landing) -> Landed:
        path = self.scratch / f"merge-{landing.feature}"
        for _ in range(_TRIES):
            onto = self.head()
            started = time.monotonic()
            if self._already_on(landing, onto):
                # Rebasing the tip onto its own base changes nothing: the tip is
                # the merged result, and its tree the one the lane checked.
                try:
                    return self._land_checked(landing, onto, landing.tip, started)
                except gitmerge.Moved:
                    continue
            gitmerge.add_detached(self.root, path, landing.tip)
            try:
                try:
                    merged = gitmerge.combine(path, self.method, onto, landing.tip, landing.message)
                except gitmerge.Conflict as conflict:
                    return Landed(
                        "conflict",
                        onto,
                        branch=self.branch,
                        conflicts=conflict.files,
                        merged_since=tuple(gitmerge.subjects(self.root, landing.base, onto)),
                        merge_seconds=time.monotonic() - started,
                    )
                merge_seconds = time.monotonic() - started
                if landing.checked_tree is not None and (
                    gitmerge.tree_of(path, merged) == landing.checked_tree
                ):
                    try:
                        return self._land_checked(landing, onto, merged, started)
                    except gitmerge.Moved:
                        continue
                checked = time.monotonic()
                results = gates_mod.run_gates(
                    landing.gates,
                    root=path,
                    evidence_dir=landing.evidence_dir,
                    baseline=landing.baseline,
                    base_sha=onto,
                    timeout_s=self.gate_timeout,
                    env=landing.env,
                )
                gate_seconds = time.monotonic() - checked
                since = tuple(gitmerge.subjects(self.root, landing.base, onto))
                if not gates_mod.gates_passed(results):
                    return Landed(
                        "failed",
                        onto,
                        head=merged,
                        branch=self.branch,
                        results=tuple(results),
                        digest=_digest(self.branch, onto, results, since),
                        signature=failure_signature(results),
                        merged_since=since,
                        merge_seconds=merge_seconds,
                        gate_seconds=gate_seconds,
                    )
                moving = time.monotonic()
                try:
                    checkout = self._advance(onto, merged)
                except gitmerge.Moved:
                    continue  # someone committed meanwhile: merge onto the new head
                return Landed(
                    "landed",
                    onto,
                    head=merged,
                    branch=self.branch,
                    results=tuple(results),
                    merged_since=since,
                    merge_seconds=merge_seconds + time.monotonic() - moving,
                    gate_seconds=gate_seconds,
                    checkout=checkout,
                )
            finally:
                gitmerge.remove_worktree(self.root, path)
        raise GitError(
            f"{self.branch} kept moving while {landing.item} was merged ({_TRIES} tries)"
        )

    def _already_on(self, landing: Landing, onto: str) -> bool:
        """Whether the feature's tip already sits on the integration head as it
        is now (nothing landed since its base) with the tree its checks passed
        on: with ``merge = "rebase"`` it then lands as it is."""
        return (
            self.method == "rebase"
            and landing.checked_tree is not None
            and onto == landing.base
            and gitmerge.tree_of(self.root, landing.tip) == landing.checked_tree
        )

    def _land_checked(self, landing: Landing, onto: str, merged: str, started: float) -> Landed:
        """Land ``merged``, whose tree the lane's gates (the same checks, the same
        baseline) passed on: running them again would check the same files.
        The evidence says so. Raises :class:`gitmerge.Moved` like :meth:`_advance`."""
        checkout = self._advance(onto, merged)
        landing.evidence_dir.mkdir(parents=True, exist_ok=True)
        (landing.evidence_dir / "checks-reused.txt").write_text(
            f"The merged result {merged} (on {onto}) has the tree {landing.checked_tree},\n"
            "the tree this feature's checks passed on in its lane (see the attempt's gate\n"
            "logs beside this directory), so the merge queue did not run them again.\n",
            encoding="utf-8",
        )
        return Landed(
            "landed",
            onto,
            head=merged,
            branch=self.branch,
            merge_seconds=time.monotonic() - started,
            checkout=checkout,
            checks_reused=True,
        )

    def _advance(self, old: str, new: str) -> str:
        try:
            return gitmerge.advance(self.root, self.branch, old, new)
        except gitmerge.Refused as refused:
            # The person's uncommitted edits are in the way: leave their
            # checkout alone and go on on a branch of this build's own.
            side = f"nightcrew/build-{self.run_id}"
            gitmerge.advance(self.root, side, "0" * 40, old)
            gitmerge.advance(self.root, side, old, new)
            kept = self.branch
            self.branch, self.side_branch = side, side
            return (
                f"your checkout of {kept} at {refused.where} has uncommitted edits in the"
                f" way, so it was left as it is; this build lands on {side} from now on"
                f" (take it with `git merge {side}`)"
            )


def _settle(group: Sequence[_Waiter], work: asyncio.Future[list[Landed]]) -> None:
    """Hand each waiter of ``group`` its result (or the group's error)."""
    error: BaseException | None
    if work.cancelled():
        error, results = asyncio.CancelledError(), None
    else:
        error = work.exception()
        results = None if error is not None else work.result()
    for n, waiter in enumerate(group):
        if results is not None:
            waiter.landed = results[n]
        else:
            waiter.error = error
        waiter.done.set()


def _digest(
    branch: str,
    onto: str,
    results: Sequence[gates_mod.GateResult],
    since: Sequence[str],
) -> str:
    """What the next attempt is told after its merged result failed."""
    lines = [
        f"Your work passed on its own, but after it was put on top of {branch}"
        f" (at {onto[:8]}) the checks failed; the next attempt starts from that merged"
        " result. Make it pass there.",
    ]
    if since:
        lines.append("Landed on the branch since your work began: " + "; ".join(since) + ".")
    lines.append(make_digest(results))
    return "\n".join(lines)
