"""Each attempt's diff is kept in its evidence (``changes.patch``) before its
gates run: a failed attempt's work is never committed, and the feature page
and Review show it from there."""

from __future__ import annotations

from pathlib import Path

from nightcrew.core.errors import ExitCode
from nightcrew.store.records import Store
from nightcrew.testing import FakeBackend, Script
from nightcrew.views.work_page import batch_page
from tests.unit.test_item_loop import WRITES, project, run_plan


def test_a_failed_and_a_passed_attempt_each_keep_their_diff(tmp_path: Path) -> None:
    proj = project(tmp_path, "# Plan\n\n## Batch 1: One\n\nDo one.\n")
    wrong = Script(writes={"wrong.txt": "not what the gate wants\n"})

    code, _ = run_plan(proj, FakeBackend([wrong, WRITES]))

    assert code == ExitCode.OK
    store = Store.open(proj.store_path)
    try:
        run = store.latest_run()
        assert run is not None
        page = batch_page(store, proj.dir / "runs", run.id, store.items(run.id)[0].key)
    finally:
        store.close()
    failed, passed = page.attempts
    assert failed.state == "failed" and failed.diff is not None
    assert [(f.path, f.status, f.added) for f in failed.diff] == [("wrong.txt", "added", 1)]
    assert passed.state == "passed" and passed.diff is not None
    # the second attempt goes on from the first one's tree: its diff has both
    assert sorted(f.path for f in passed.diff) == ["done.txt", "wrong.txt"]
    assert failed.prompt is not None and "Do one." in failed.prompt
    assert not failed.gates[0].passed and failed.gates[0].log is not None  # its full log
    assert [d.text for d in page.decisions][:1] == ["retried: retry 1 of 2"]


def test_a_passed_attempt_without_a_kept_patch_shows_its_commits_diff(tmp_path: Path) -> None:
    """Attempts made before patches were kept: the diff comes from git."""
    proj = project(tmp_path, "# Plan\n\n## Batch 1: One\n\nDo one.\n")
    code, _ = run_plan(proj, FakeBackend([WRITES]))
    assert code == ExitCode.OK
    store = Store.open(proj.store_path)
    try:
        run = store.latest_run()
        assert run is not None
        [attempt] = store.attempts(run_id=run.id)
        assert attempt.evidence_dir is not None
        (Path(attempt.evidence_dir) / "changes.patch").unlink()
        page = batch_page(store, proj.dir / "runs", run.id, store.items(run.id)[0].key)
    finally:
        store.close()
    [passed] = page.attempts
    assert passed.diff is not None and [f.path for f in passed.diff] == ["done.txt"]
