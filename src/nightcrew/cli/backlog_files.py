"""The files each feature's attempts changed, for ``backlog analyze``: a feature
given up on keeps its changes as ``runs/<run>/feature-<id>.patch``, and a
feature that passed (and was sent back) has its commit in git."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path

from nightcrew import gitops
from nightcrew.core.errors import GitError
from nightcrew.project import Project
from nightcrew.store.records import Store

# "--- a/path" and "+++ b/path" of a git patch; /dev/null (added, deleted) is not a path.
_PATCH_PATH = re.compile(r"^(?:---|\+\+\+) [ab]/(.+?)\t?$", re.MULTILINE)


def patch_files(text: str) -> list[str]:
    """The paths a git patch changes, in the order first met."""
    return list(dict.fromkeys(_PATCH_PATH.findall(text)))


def touched_files(
    store: Store, project: Project, feature_ids: Iterable[int]
) -> dict[int, list[str]]:
    """For each of ``feature_ids``, the paths its attempts changed, from the
    patches kept and the commits made; a feature that changed nothing is left out."""
    wanted = set(feature_ids)
    touched: dict[int, dict[str, None]] = {}
    rows = store.db.execute(
        "SELECT DISTINCT w.feature_id, a.run_id, a.commit_sha FROM attempts a"
        " JOIN work_items w ON w.id = a.item_id WHERE w.feature_id IS NOT NULL"
    ).fetchall()
    for feature_id, run_id, commit_sha in rows:
        if feature_id not in wanted:
            continue
        found = touched.setdefault(feature_id, {})
        patch = project.run_dir(run_id) / f"feature-{feature_id}.patch"
        found.update(dict.fromkeys(patch_files(_read(patch))))
        if commit_sha:
            with contextlib.suppress(GitError):  # git broken: the patches still count
                found.update(dict.fromkeys(gitops.commit_files(project.root, commit_sha)))
    return {fid: list(paths) for fid, paths in touched.items() if paths}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # no patch: the attempt passed, or kept nothing
        return ""
