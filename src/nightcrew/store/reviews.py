"""A person's review of an attempt's diff: comments on its lines, kept as
drafts until they are sent; sending retries the feature (the same
:meth:`Backlog.retry` as ``nightcrew backlog retry``) and the next attempt's
prompt carries the comments of the latest send. The dashboard's Review and
``nightcrew backlog review`` both act through here."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from nightcrew.core.errors import BadInput
from nightcrew.core.states import AttemptState
from nightcrew.store.backlog import Backlog
from nightcrew.store.db import utcnow
from nightcrew.store.records import Store
from nightcrew.store.rows import AttemptRow

# Only a judged attempt has a diff worth reviewing.
REVIEWABLE = frozenset({AttemptState.PASSED, AttemptState.FAILED})
MAX_TEXT = 4000  # characters: a comment, not a document


@dataclass(frozen=True)
class ReviewComment:
    id: int
    feature_id: int
    attempt_id: int
    file: str
    line: int
    text: str
    created_at: str
    sent_at: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ReviewComment:
        return cls(
            id=row["id"],
            feature_id=row["feature_id"],
            attempt_id=row["attempt_id"],
            file=row["file"],
            line=row["line"],
            text=row["text"],
            created_at=row["created_at"],
            sent_at=row["sent_at"],
        )

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def feature_attempts(store: Store, feature_id: int) -> list[AttemptRow]:
    """A feature's attempts across every build, oldest first: the Nth of
    them is its "attempt N" on the page and in ``backlog review --attempt``."""
    rows = store.db.execute(
        "SELECT a.* FROM attempts a JOIN work_items w ON w.id = a.item_id"
        " WHERE w.feature_id = ? ORDER BY a.started_at, a.id",
        (feature_id,),
    ).fetchall()
    return [AttemptRow.from_row(r) for r in rows]


class Reviews:
    """The review comments of one project store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.backlog = Backlog(store)

    def attempt(self, feature_id: int, number: int) -> AttemptRow:
        """The feature's attempt ``number`` (1 = its first); BadInput otherwise."""
        self.backlog.feature(feature_id)  # BadInput for an unknown feature
        attempts = feature_attempts(self.store, feature_id)
        if not 1 <= number <= len(attempts):
            have = f"attempts 1-{len(attempts)}" if attempts else "no attempts"
            raise BadInput(f"feature #{feature_id} has {have}: no attempt {number}")
        return attempts[number - 1]

    def add(
        self, feature_id: int, number: int, *, file: str, line: int, text: str
    ) -> ReviewComment:
        """A draft comment on ``file:line`` of the feature's attempt ``number``."""
        attempt = self.attempt(feature_id, number)
        if attempt.state not in REVIEWABLE:
            raise BadInput(
                f"attempt {number} of feature #{feature_id} is {attempt.state}:"
                " only a passed or failed attempt's diff can be reviewed"
            )
        file, text = file.strip(), text.strip()
        if not file:
            raise BadInput("a review comment needs the file it is about")
        if line < 1:
            raise BadInput(f"line {line}: lines count from 1")
        if not text:
            raise BadInput("an empty review comment: say what should change")
        if len(text) > MAX_TEXT:
            raise BadInput(f"a review comment of {len(text)} characters: at most {MAX_TEXT}")
        with self.store.transaction() as db:
            cur = db.execute(
                "INSERT INTO review_comments (feature_id, attempt_id, file, line, text,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (feature_id, attempt.id, file, line, text, utcnow()),
            )
        return self.comment(int(cur.lastrowid or 0))

    def comment(self, comment_id: int) -> ReviewComment:
        row = self.store.db.execute(
            "SELECT * FROM review_comments WHERE id = ?", (comment_id,)
        ).fetchone()
        if row is None:
            raise BadInput(f"no review comment #{comment_id}")
        return ReviewComment.from_row(row)

    def comments(self, feature_id: int) -> list[ReviewComment]:
        """Every comment on the feature, drafts and sent, in the order written."""
        rows = self.store.db.execute(
            "SELECT * FROM review_comments WHERE feature_id = ? ORDER BY id", (feature_id,)
        ).fetchall()
        return [ReviewComment.from_row(r) for r in rows]

    def drafts(self, feature_id: int) -> list[ReviewComment]:
        return [c for c in self.comments(feature_id) if c.sent_at is None]

    def latest_sent(self, feature_id: int) -> list[ReviewComment]:
        """The comments of the feature's latest send: what its next prompt carries."""
        rows = self.store.db.execute(
            "SELECT * FROM review_comments WHERE feature_id = ? AND sent_at = ("
            " SELECT max(sent_at) FROM review_comments WHERE feature_id = ?) ORDER BY id",
            (feature_id, feature_id),
        ).fetchall()
        return [ReviewComment.from_row(r) for r in rows]

    def send(self, feature_id: int, *, model: str | None = None) -> list[ReviewComment]:
        """Send the feature's drafts back: the feature goes back to pending
        (refused while it is in progress) and the drafts are stamped sent.
        BadInput when there is nothing to send."""
        drafts = self.drafts(feature_id)
        if not drafts:
            raise BadInput(f"feature #{feature_id} has no review comments to send")
        ids = json.dumps([c.id for c in drafts])
        sent = utcnow()
        # Stamped before the feature is pending again: a build that claims it
        # the moment it is finds them sent (its prompt carries them).
        with self.store.transaction() as db:
            db.execute(
                "UPDATE review_comments SET sent_at = ? WHERE id IN"
                " (SELECT value FROM json_each(?))",
                (sent, ids),
            )
        try:
            self.backlog.retry(
                [feature_id], model=model, reason=f"review: {len(drafts)} comment(s) sent back"
            )
        except BaseException:
            with self.store.transaction() as db:  # refused (in progress): drafts again
                db.execute(
                    "UPDATE review_comments SET sent_at = NULL WHERE id IN"
                    " (SELECT value FROM json_each(?))",
                    (ids,),
                )
            raise
        return [self.comment(c.id) for c in drafts]
