"""A feature's (or a plan batch's) whole story as one read model: its text,
steps and acceptance commands; every attempt with its model, state, time,
tokens and cost (unknown stays unknown); the gates with their logs; the diff
and the exact prompt from the attempt's evidence; the decisions in words;
and the review comments on its diffs. The dashboard's feature page and its
JSON twin present it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from nightcrew import gitops
from nightcrew.core.errors import BadInput, GitError
from nightcrew.core.states import AttemptState
from nightcrew.core.usage import TokenCounts
from nightcrew.engine.attempt_run import CHANGES_PATCH
from nightcrew.store.backlog import Backlog
from nightcrew.store.migrations import DECISION_KINDS
from nightcrew.store.records import Store
from nightcrew.store.reviews import REVIEWABLE, ReviewComment, Reviews, feature_attempts
from nightcrew.store.rows import AttemptRow, GateRow, ItemRow
from nightcrew.store.usage_query import responses_cost
from nightcrew.views.attempts import attempt_seconds
from nightcrew.views.diffs import DiffFile, parse_patch

PROMPT_FILE = "prompt.txt"
# The events that tell what became of the work, and why (store migration m012
# indexes them: the query names them word for word in each branch of its OR,
# so SQLite looks the feature up in both of m012's indexes).
_DECISIONS_IN = "kind IN (" + ", ".join(f"'{k}'" for k in DECISION_KINDS) + ")"


@dataclass(frozen=True)
class GateView:
    name: str
    command: str | None
    passed: bool
    seconds: float
    tests: str  # "12 passed, 1 failed", or ""
    digest: str
    log: str | None  # its full output, relative to the project's runs/ (the files route)


@dataclass
class AttemptView:
    number: int  # 1.. across the feature's builds (a batch: its own numbers)
    id: int
    run_id: str
    model: str | None
    models: list[str]
    state: str
    seconds: float | None
    tokens: TokenCounts
    cost_usd: Decimal | None  # None: unknown (never shown as $0)
    reason: str | None
    commit_sha: str | None
    base_sha: str | None
    gates: list[GateView]
    diff: list[DiffFile] | None  # None: no patch was kept for it
    prompt: str | None
    prompt_file: str | None  # relative to runs/
    reviewable: bool
    comments: list[ReviewComment] = field(default_factory=list)
    # Running: ``cost_usd`` is what its responses have been priced at so far
    # (None: none yet). A running attempt with a response of unknown price has
    # ``cost_usd`` None and this False: its cost is unknown.
    cost_so_far: bool = False

    def comments_on(self, path: str, line: int | None) -> list[ReviewComment]:
        return [c for c in self.comments if c.file == path and c.line == line]

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "id": self.id,
            "run": self.run_id,
            "model": self.model,
            "models": self.models,
            "state": self.state,
            "seconds": self.seconds,
            "tokens": {
                "input": self.tokens.input,
                "output": self.tokens.output,
                "cache_read": self.tokens.cache_read,
                "cache_write": self.tokens.cache_write,
                "total": self.tokens.total,
            },
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
            "cost_so_far": self.cost_so_far,
            "reason": self.reason,
            "commit": self.commit_sha,
            "base": self.base_sha,
            "gates": [
                {
                    "name": g.name,
                    "command": g.command,
                    "passed": g.passed,
                    "seconds": g.seconds,
                    "tests": g.tests,
                    "digest": g.digest,
                    "log": g.log,
                }
                for g in self.gates
            ],
            "diff": None
            if self.diff is None
            else [
                {
                    "path": f.path,
                    "status": f.status,
                    "added": f.added,
                    "removed": f.removed,
                    "lines": [
                        {"kind": ln.kind, "text": ln.text, "old": ln.old, "new": ln.new}
                        for ln in f.lines
                    ],
                }
                for f in self.diff
            ],
            "prompt": self.prompt,
            "prompt_file": self.prompt_file,
            "reviewable": self.reviewable,
            "comments": [_comment_json(c) for c in self.comments],
        }


@dataclass(frozen=True)
class DecisionView:
    ts: str
    run_id: str
    text: str


@dataclass
class WorkPage:
    kind: str  # feature | batch (a plan's) | item (one build's work on a feature)
    label: str  # "feature #3", "batch 2"
    title: str
    state: str
    text: str
    steps: tuple[str, ...]
    acceptance: tuple[str, ...]
    attempts: list[AttemptView]
    decisions: list[DecisionView]
    feature_id: int | None = None
    drafts: list[ReviewComment] = field(default_factory=list)

    @property
    def finished(self) -> list[AttemptView]:
        """The attempts that have a cost to add: a running one has none yet
        (it is neither $0 nor unknown)."""
        return [a for a in self.attempts if a.state != AttemptState.RUNNING]

    @property
    def cost_usd(self) -> Decimal | None:
        """The finished attempts' cost; None when any of their costs is unknown."""
        total = Decimal(0)
        for attempt in self.finished:
            if attempt.cost_usd is None:
                return None
            total += attempt.cost_usd
        return total

    @property
    def spent_usd(self) -> Decimal | None:
        """What its attempts have cost, a running one's so far; None when any
        cost is unknown. A running attempt not priced yet adds nothing."""
        total = Decimal(0)
        for attempt in self.attempts:
            if attempt.cost_usd is not None:
                total += attempt.cost_usd
            elif not attempt.cost_so_far:
                return None
        return total

    def as_json(self) -> dict[str, Any]:
        cost = self.cost_usd
        spent = self.spent_usd
        return {
            "kind": self.kind,
            "label": self.label,
            "feature": self.feature_id,
            "title": self.title,
            "state": self.state,
            "text": self.text,
            "steps": list(self.steps),
            "acceptance": list(self.acceptance),
            "cost_usd": None if cost is None else str(cost),
            "spent_usd": None if spent is None else str(spent),
            "attempts": [a.as_json() for a in self.attempts],
            "decisions": [{"ts": d.ts, "run": d.run_id, "text": d.text} for d in self.decisions],
            "drafts": [_comment_json(c) for c in self.drafts],
        }


def _comment_json(c: ReviewComment) -> dict[str, Any]:
    return {
        "id": c.id,
        "attempt_id": c.attempt_id,
        "file": c.file,
        "line": c.line,
        "text": c.text,
        "created": c.created_at,
        "sent": c.sent_at,
    }


def feature_page(store: Store, runs_dir: Path, feature_id: int) -> WorkPage:
    """The page of backlog feature ``feature_id``; BadInput when there is none."""
    feature = Backlog(store).feature(feature_id)
    reviews = Reviews(store)
    comments = reviews.comments(feature_id)
    attempts = [
        _attempt(store, runs_dir, n, a, [c for c in comments if c.attempt_id == a.id])
        for n, a in enumerate(feature_attempts(store, feature_id), 1)
    ]
    rows = store.db.execute(
        f"SELECT ts, run_id, kind, payload_json FROM events"
        f" WHERE ({_DECISIONS_IN} AND json_extract(payload_json, '$.feature') = ?)"
        f" OR ({_DECISIONS_IN} AND json_extract(payload_json, '$.item') = ?) ORDER BY id",
        (feature_id, f"feature {feature.label}"),
    ).fetchall()
    return WorkPage(
        kind="feature",
        label=f"feature {feature.label}",
        title=feature.name,
        state=str(feature.state),
        text=feature.description,
        steps=feature.steps,
        acceptance=feature.acceptance,
        attempts=attempts,
        decisions=sorted(_decisions(rows) + _reviews_sent(comments), key=lambda d: d.ts),
        feature_id=feature_id,
        drafts=[c for c in comments if c.sent_at is None],
    )


def item_label(item: ItemRow) -> str:
    """How the run's events name a work item: a build's as its feature is."""
    if item.feature_id is not None:
        return f"feature #{item.feature_id}"
    return f"batch {item.number}" if item.number is not None else item.key


def batch_page(store: Store, runs_dir: Path, run_id: str, key: str) -> WorkPage:
    """The page of work item ``key`` of run ``run_id`` (a plan's batch, or a
    build's feature item); BadInput when there is none."""
    row = store.db.execute(
        "SELECT * FROM work_items WHERE run_id = ? AND key = ?", (run_id, key)
    ).fetchone()
    if row is None:
        raise BadInput(f"run {run_id} has no item {key}")
    item = ItemRow.from_row(row)
    label = item_label(item)
    attempts = [_attempt(store, runs_dir, a.number, a, []) for a in store.attempts(item_id=item.id)]
    rows = store.db.execute(
        "SELECT ts, run_id, kind, payload_json FROM events WHERE run_id = ? AND kind IN"
        " (SELECT value FROM json_each(?)) AND json_extract(payload_json, '$.item') = ?"
        " ORDER BY id",
        (run_id, _json(DECISION_KINDS), label),
    ).fetchall()
    return WorkPage(
        kind="batch" if item.feature_id is None else "item",
        label=label,
        title=item.title,
        state=str(item.state),
        text=item.body,
        steps=(),
        acceptance=(),
        attempts=attempts,
        decisions=_decisions(rows),
        feature_id=item.feature_id,
    )


def _json(values: tuple[str, ...]) -> str:
    return json.dumps(list(values))


def _attempt(
    store: Store, runs_dir: Path, number: int, a: AttemptRow, comments: list[ReviewComment]
) -> AttemptView:
    evidence = Path(a.evidence_dir) if a.evidence_dir else None
    # A running attempt has no cost yet: its responses' so far (unknown when one is).
    running = a.state == AttemptState.RUNNING
    so_far, unknown = responses_cost(store, a.id) if running else (None, False)
    diff = prompt = prompt_file = None
    if evidence is not None:
        diff = _read(evidence / CHANGES_PATCH)
        prompt = _read(evidence / PROMPT_FILE)
        if prompt is not None:
            prompt_file = _relative(evidence / PROMPT_FILE, runs_dir)
    if diff is None and a.commit_sha:  # made before patches were kept: its commit
        try:
            diff = gitops.commits_patch(runs_dir.parent.parent, a.base_sha, a.commit_sha)
        except GitError:
            diff = None
    return AttemptView(
        number=number,
        id=a.id,
        run_id=a.run_id,
        model=a.model,
        models=a.models,
        state=str(a.state),
        seconds=attempt_seconds(a) if a.finished_at else None,
        tokens=store.attempt_tokens(a.id),
        cost_usd=so_far if running and not unknown else a.cost_usd,
        reason=a.exit_reason,
        commit_sha=a.commit_sha,
        base_sha=a.base_sha,
        gates=[_gate(g, runs_dir) for g in store.gates(a.id)],
        diff=None if diff is None else parse_patch(diff),
        prompt=prompt,
        prompt_file=prompt_file,
        reviewable=a.state in REVIEWABLE and diff is not None,
        comments=comments,
        cost_so_far=running and not unknown,
    )


def _gate(g: GateRow, runs_dir: Path) -> GateView:
    tests = ""
    if g.tests_passed is not None or g.tests_failed is not None:
        tests = f"{g.tests_passed or 0} passed, {g.tests_failed or 0} failed"
    log = _relative(Path(g.output_path), runs_dir) if g.output_path else None
    return GateView(g.name, g.command, g.passed, g.duration_s, tests, g.digest, log)


def _relative(path: Path, runs_dir: Path) -> str | None:
    """``path`` under the runs directory (what the files route serves), or None."""
    full = path if path.is_absolute() else runs_dir.parent.parent / path
    try:
        return full.resolve().relative_to(runs_dir.resolve()).as_posix()
    except ValueError:
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _decisions(rows: list[Any]) -> list[DecisionView]:
    return [
        DecisionView(r["ts"], r["run_id"], decision_words(r["kind"], json.loads(r["payload_json"])))
        for r in rows
    ]


def _reviews_sent(comments: list[ReviewComment]) -> list[DecisionView]:
    """Each send of a review, as the person's decision it is."""
    sends: dict[str, int] = {}
    for c in comments:
        if c.sent_at is not None:
            sends[c.sent_at] = sends.get(c.sent_at, 0) + 1
    return [
        DecisionView(ts, "", f"a person sent {n} review comment(s) back: retried with them")
        for ts, n in sends.items()
    ]


def decision_words(kind: str, payload: dict[str, Any]) -> str:
    """What the harness decided, in plain words, from the stored event:
    ``retried on sonnet: stuck (…): escalating to sonnet``."""
    reason = str(payload.get("reason") or "")
    if kind == "decision":
        action = payload.get("action")
        model = payload.get("model")
        verb = {
            "retry": "retried" + (f" on {model}" if model else ""),
            "escalate": f"escalated to {model}" if model else "escalated",
            "give_up": "given up",
            "skip": "skipped",
            "stop": "stopped the run",
            "stuck": "stuck",
            "needs_input": "waits for a person",
        }.get(str(action), str(action))
        return f"{verb}: {reason}" if reason else verb
    if kind == "item_passed":
        commit = payload.get("commit")
        said = f"passed ({str(commit)[:10]})" if commit else "passed (no commit)"
        return said + (" — the agent's claim confirmed" if payload.get("claim_confirmed") else "")
    if kind == "item_skipped":
        who = "skipped by a person" if payload.get("by_person") else "skipped"
        return f"{who}: {reason}{payload.get('kept') or ''}"
    if kind == "question_asked":
        return f"asked a person: {payload.get('question')}"
    return f"failed: {reason}" if reason else "failed"
