"""`nightcrew pr`: the description of a night's work, from a real store and a
real git repository: a finished plan run and a finished build."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from nightcrew import gitops, proc
from nightcrew.cli import main
from nightcrew.core.states import AttemptState, ItemState, RunState
from nightcrew.core.usage import TokenCounts
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import ItemRow, RunRow, Store
from nightcrew.views.pull_request import pull_request
from nightcrew.views.pull_request_md import code_span, fenced, markdown

PLAN = """\
# Parse the config

Goals and conventions.

## Batch 1: Read TOML into a dataclass

Load `config.toml`.

## Batch 2: Render <b>names</b> with `code`

## Batch 3: Migrate the store

## Batch 4: Write the docs
"""

# What a person may write in a batch: markdown, a fence of its own, HTML.
TRICKY = """\
Show <details><summary>this</summary> as it is.

````python
print("four backticks above")
````

<script>alert(1)</script> and a `span` and *stars*
"""


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path))


def git(root: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(root), *args], cwd=root, timeout_s=60)
    assert done.exit_code == 0, done.output
    return done.output.strip()


def commit(root: Path, message: str, files: dict[str, str]) -> str:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@dataclass
class Night:
    root: Path
    store: Store
    plan: RunRow
    build: RunRow
    commits: dict[str, str]  # subject → sha


def _attempt(
    store: Store,
    run: RunRow,
    item: ItemRow,
    state: AttemptState,
    *,
    base: str,
    cost: str | None,
    commit_sha: str | None = None,
    digest: str | None = None,
    signature: str | None = None,
    model: str = "sonnet",
) -> int:
    attempt = store.start_attempt(
        run_id=run.id,
        item_id=item.id,
        backend="claude",
        model=model,
        prefix_sha256="b" * 64,
        prompt_sha256="d" * 64,
        base_sha=base,
        evidence_dir=None,
    )
    store.record_usage(
        attempt.id,
        kind="final",
        message_id=None,
        request_id=None,
        model=model,
        tokens=TokenCounts(1000, 200, 5000, 300, 0),
        cost_usd=Decimal(cost) if cost is not None else None,
        cost_source="reported" if cost is not None else None,
    )
    store.finish_attempt(
        attempt.id,
        state,
        reason="gates passed" if state == AttemptState.PASSED else "gates failed",
        cost_usd=Decimal(cost) if cost is not None else None,
        agent_seconds=60.0,
        gate_seconds=5.0,
        commit_sha=commit_sha,
        digest=digest,
        signature=signature,
        models_json=f'["{model}"]',
    )
    return attempt.id


def _gate(store: Store, attempt_id: int, name: str, digest: str, passed: int | None) -> None:
    store.record_gate(
        attempt_id,
        name=name,
        command=None,
        passed=True,
        duration_s=1.5,
        exit_code=0,
        timed_out=False,
        tests_passed=passed,
        tests_failed=0 if passed is not None else None,
        failed_ids=[],
        regressions=[],
        output_path=None,
        digest=digest,
    )


FAILING = (
    "[tests] FAILED: pytest\nfull output: .nightcrew/runs/x/tests.log\n"
    "failing tests:\n  - tests/test_config.py::test_load\nsummary: 1 failed, 11 passed"
)


def _plan_run(root: Path, store: Store, commits: dict[str, str]) -> RunRow:
    (root / "PLAN.md").write_text(PLAN, encoding="utf-8")
    start = commit(root, "Start", {"README.md": "hello\n"})
    run = store.create_run(
        kind="plan",
        source_path="PLAN.md",
        source_sha256="a" * 64,
        config={},
        prefix_sha256="b" * 64,
        pid=1,
    )
    store.set_run_state(run.id, RunState.RUNNING)
    titles = [
        "Read TOML into a dataclass",
        "Render <b>names</b> with `code`",
        "Migrate the store",
        "Write the docs",
    ]
    items = [
        store.add_item(
            run.id,
            key=str(n),
            number=n,
            title=t,
            body=TRICKY if n == 2 else "Load `config.toml`.",
            sha="c" * 64,
        )
        for n, t in enumerate(titles, 1)
    ]
    one, two, three, _four = items
    # Batch 1: a failed attempt, then one that passed; the agent committed once
    # itself and nightcrew committed the rest.
    store.set_item_state(one.id, ItemState.IN_PROGRESS)
    _attempt(store, run, one, AttemptState.FAILED, base=start, cost="0.10", digest=FAILING)
    commits["Add the loader"] = commit(root, "Add the loader", {"src/loader.py": "x = 1\n"})
    last = commit(
        root,
        "Batch 1: Read TOML into a dataclass",
        {"src/config.py": "y = 2\n", "tests/test_config.py": "def test_load(): pass\n"},
    )
    commits["Batch 1: Read TOML into a dataclass"] = last
    passed = _attempt(
        store, run, one, AttemptState.PASSED, base=start, cost="0.25", commit_sha=last
    )
    _gate(store, passed, "tests", "full output: x.log\nsummary: 12 passed in 0.52s", 12)
    _gate(store, passed, "clean", "", None)
    store.set_item_state(one.id, ItemState.PASSED, commit_sha=last)
    # Batch 2: one attempt of unknown cost, touching many files.
    store.set_item_state(two.id, ItemState.IN_PROGRESS)
    many = {f"src/names/n{i:02d}.py": f"n = {i}\n" for i in range(25)}
    subject = "Batch 2: Render <b>names</b> with `code`"
    commits[subject] = sha = commit(root, subject, many)
    _attempt(store, run, two, AttemptState.PASSED, base=last, cost=None, commit_sha=sha)
    store.set_item_state(two.id, ItemState.PASSED, commit_sha=sha)
    # Batch 3: the same failure twice; the run stops there.
    store.set_item_state(three.id, ItemState.IN_PROGRESS)
    for _ in range(2):
        _attempt(
            store, run, three, AttemptState.FAILED, base=sha, cost="0.05", digest=FAILING,
            signature="sig-1",
        )  # fmt: skip
    store.set_item_state(
        three.id, ItemState.FAILED, message="stuck: the same failure twice in a row"
    )
    store.set_run_state(run.id, RunState.FAILED, message="batch 3 failed")
    # The plan run is the earlier of the two.
    store.db.execute(
        "UPDATE runs SET started_at = '2000-01-01T00:00:00.000+00:00' WHERE id = ?", (run.id,)
    )
    return store.run(run.id)


def _build(root: Path, store: Store, commits: dict[str, str]) -> RunRow:
    backlog = Backlog(store)
    from nightcrew.work.backlog import FeatureSpec

    backlog.create(
        [
            FeatureSpec(
                name="Login form",
                description="A form with <input> fields and a `submit` button.",
                acceptance=("pytest tests/test_login.py",),
            ),
            FeatureSpec(name="Export CSV", acceptance=("pytest tests/test_export.py",)),
            FeatureSpec(
                name="Import CSV", acceptance=("pytest -k import",), depends_on_indices=(1,)
            ),
            FeatureSpec(name="Email alerts", acceptance=("pytest -k email",)),
            FeatureSpec(name="Dark mode", acceptance=("pytest -k dark",)),
        ],
        source="test",
    )
    run = store.create_run(
        kind="backlog",
        source_path="backlog",
        source_sha256="a" * 64,
        config={},
        prefix_sha256="b" * 64,
        pid=1,
    )
    store.set_run_state(run.id, RunState.RUNNING)

    def item(fid: int) -> ItemRow:
        feature = backlog.feature(fid)
        backlog.claim(fid, by=run.id)
        row = store.add_item(
            run.id,
            key=f"feature-{fid}",
            number=fid,
            title=feature.name,
            body=feature.description,
            sha="c" * 64,
            feature_id=fid,
        )
        store.set_item_state(row.id, ItemState.IN_PROGRESS)
        return row

    base = git(root, "rev-parse", "HEAD")
    login = item(1)
    subject = "feat(functional): Login form"
    commits[subject] = sha = commit(root, subject, {"app/login.py": "form = 1\n"})
    done = _attempt(
        store, run, login, AttemptState.PASSED, base=base, cost="0.40", commit_sha=sha,
        model="opus",
    )  # fmt: skip
    _gate(store, done, "acceptance: pytest tests/test_login.py", "summary: 3 passed", 3)
    store.set_item_state(login.id, ItemState.PASSED, commit_sha=sha)
    backlog.release(1, ItemState.PASSED, by=run.id, reason="checks passed")

    export = item(2)
    for _ in range(2):
        _attempt(
            store, run, export, AttemptState.FAILED, base=sha, cost="0.20", digest=FAILING,
            signature="sig-2",
        )  # fmt: skip
    reason = "stuck: the same failure twice in a row"
    store.set_item_state(export.id, ItemState.SKIPPED, reason=reason, message=reason)
    backlog.release(2, ItemState.SKIPPED, by=run.id, reason=reason)

    item(4)
    backlog.request_input(4, "Which SMTP server should alerts use?")
    store.set_item_state(store.items(run.id)[-1].id, ItemState.NEEDS_INPUT, reason="asked a person")
    store.set_run_state(run.id, RunState.SUCCEEDED, message="nothing left to do")
    return store.run(run.id)


@pytest.fixture
def night(tmp_path: Path) -> Night:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Alice")
    git(root, "config", "user.email", "alice@example.com")
    store = Project(root).open_store()
    commits: dict[str, str] = {}
    plan = _plan_run(root, store, commits)
    build = _build(root, store, commits)
    return Night(root, store, plan, build, commits)


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


SECTIONS = ("What was asked", "What was done", "Evidence", "Cost and time", "Left undone")


# ---- the plan run ------------------------------------------------------------------------


def test_plan_run_says_what_was_asked_done_and_proven(night: Night) -> None:
    text = markdown(pull_request(night.store, night.root, run_id=night.plan.id))
    assert text.startswith("# Parse the config: 2 items\n")
    assert [text.index(f"\n## {s}\n") for s in SECTIONS] == sorted(
        text.index(f"\n## {s}\n") for s in SECTIONS
    )
    asked = _section(text, "What was asked")
    assert "Read TOML into a dataclass" in asked and "Load `config.toml`." in asked
    assert "Migrate the store" not in asked  # it did not pass

    done = _section(text, "What was done")
    for subject in ("Add the loader", "Batch 1: Read TOML into a dataclass"):
        assert f"`{night.commits[subject][:7]}`" in done
    assert "Add the loader" in done
    for path in ("src/loader.py", "src/config.py", "tests/test_config.py", "src/names/n00.py"):
        assert f"`{path}`" in done
    assert "src/names/n24.py" not in done
    assert "- and 5 more" in done

    evidence = _section(text, "Evidence")
    assert "`tests`: 12 passed in 0.52s" in evidence
    assert "`clean`" in evidence
    assert "- Regressions: none" in evidence
    assert "- Attempts: 2" in evidence
    assert (
        "attempt 1 (sonnet): failed: tests: failing tests: tests/test\\_config.py::test\\_load"
        in evidence
    )


def test_cost_unknown_is_never_zero(night: Night) -> None:
    text = markdown(pull_request(night.store, night.root, run_id=night.plan.id))
    cost = _section(text, "Cost and time")
    rows = {line.split(" | ")[0]: line for line in cost.splitlines() if line.startswith("| ")}
    batch_one = next(v for k, v in rows.items() if "Batch 1" in k)
    batch_two = next(v for k, v in rows.items() if "Batch 2" in k)
    assert "$0.3500" in batch_one and "sonnet" in batch_one
    assert "| unknown |" in batch_two and "$0" not in batch_two
    assert "at least $0.4500 (1 attempt of unknown cost)" in rows["| **total**"]
    assert "2 min 00 s" in batch_one  # two attempts of 60 s of agent time


def test_left_undone_says_why(night: Night) -> None:
    text = markdown(pull_request(night.store, night.root, run_id=night.plan.id))
    undone = _section(text, "Left undone")
    assert "**Batch 3: Migrate the store** (failed): failed: stuck: the same failure twice" in (
        undone
    )
    assert "last failure: tests: failing tests:" in undone
    assert "**Batch 4: Write the docs** (pending): not reached: the run ended failed" in undone
    assert "Batch 1" not in undone


def test_quoted_text_stays_inside_its_fence(night: Night) -> None:
    text = markdown(pull_request(night.store, night.root, run_id=night.plan.id))
    tokens = MarkdownIt("commonmark").parse(text)
    fences = [t.content for t in tokens if t.type == "fence"]
    assert TRICKY in fences  # all of it, as written, in one block
    # Nothing quoted became HTML, and the sections after it are still headings.
    assert not [t for t in tokens if t.type == "html_block"]
    inline_html = [c for t in tokens if t.children for c in t.children if c.type == "html_inline"]
    assert not inline_html
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert [h for h in headings if h in SECTIONS] == list(SECTIONS)
    html = MarkdownIt("commonmark").render(text)
    assert "<h3>Batch 2: Render &lt;b&gt;names&lt;/b&gt; with `code`</h3>" in html


def test_fences_and_spans_outgrow_what_they_hold() -> None:
    assert fenced("a ``` b\n`````", "sh").startswith("``````sh\n")
    assert code_span("a `b` c") == "``a `b` c``"
    assert code_span("`x") == "`` `x ``"


# ---- the build ---------------------------------------------------------------------------


def test_latest_run_is_the_build(night: Night) -> None:
    text = markdown(pull_request(night.store, night.root))
    assert text.startswith("# Backlog build: 1 item\n")
    asked = _section(text, "What was asked")
    assert "Feature #1: Login form" in asked
    assert "```sh\npytest tests/test_login.py\n```" in asked
    assert "A form with <input> fields and a `submit` button." in asked
    done = _section(text, "What was done")
    assert night.commits["feat(functional): Login form"][:7] in done
    assert "`app/login.py`" in done
    assert "`acceptance: pytest tests/test_login.py`: 3 passed" in _section(text, "Evidence")
    cost = _section(text, "Cost and time")
    assert "opus" in cost and "$0.4000" in cost
    undone = _section(text, "Left undone")
    assert "**Feature #2: Export CSV** (skipped): given up: stuck:" in undone
    assert "last failure: tests: failing tests: tests/test\\_config.py::test\\_load" in undone
    assert "**Feature #3: Import CSV** (blocked): blocked by #2" in undone
    assert "**Feature #4: Email alerts** (needs input): needs input: Which SMTP server" in undone
    assert "**Feature #5: Dark mode** (pending): not started by this build" in undone


def test_one_feature_alone(night: Night) -> None:
    described = pull_request(night.store, night.root, feature_id=1)
    text = markdown(described)
    assert described.title == "Feature #1: Login form"
    assert "Export CSV" not in text and "Dark mode" not in text
    assert "Nothing: every item passed." in _section(text, "Left undone")


# ---- the command -------------------------------------------------------------------------


def nightcrew(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cwd: Path, *args: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["nightcrew", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--run", "nope"), "--run nope: no such run"),
        (("--feature", "99"), "no feature #99 in the backlog"),
        (("--feature", "5"), "--feature 5: no build has worked on it yet"),
        (("--feature", "x"), "'x' is not a feature id"),
    ],
)
def test_bad_run_or_feature_is_one_line(
    night: Night,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    said: str,
) -> None:
    code, out, err = nightcrew(monkeypatch, capsys, night.root, "pr", *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and said in err


def test_prints_or_writes_a_file(
    night: Night, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = nightcrew(monkeypatch, capsys, night.root, "pr", "--run", night.plan.id)
    assert code == 0 and out.startswith("# Parse the config: 2 items\n")
    target = night.root.parent / "PR.md"
    code, out, _ = nightcrew(monkeypatch, capsys, night.root, "pr", "--output", str(target))
    assert code == 0 and out == ""
    assert target.read_text(encoding="utf-8").startswith("# Backlog build: 1 item\n")
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".PR.md")] == []


def test_unwritable_output_is_one_line(
    night: Night, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = night.root.parent / "missing" / "PR.md"
    code, out, err = nightcrew(monkeypatch, capsys, night.root, "pr", "--output", str(target))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "cannot write" in err
    assert not target.parent.exists()


def _fake_gh(directory: Path, record: Path) -> Path:
    """A `gh` that writes down its arguments and the body file it was given."""
    directory.mkdir(exist_ok=True)
    script = directory / "gh"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{record}/argv"\n'
        "while [ $# -gt 0 ]; do\n"
        f'  if [ "$1" = "--body-file" ]; then cp "$2" "{record}/body"; fi\n'
        "  shift\n"
        "done\n"
        "echo 'Creating pull request for h-pr into main'\n"
        "echo 'https://github.com/o/r/pull/7'\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def test_open_hands_the_description_to_gh(
    night: Night,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    bin_dir = _fake_gh(tmp_path / "bin", record)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    git(night.root, "remote", "add", "origin", "https://github.com/o/r.git")
    code, out, err = nightcrew(
        monkeypatch, capsys, night.root, "pr", "--run", night.plan.id, "--open", "--base", "main"
    )
    assert code == 0, err
    assert out.strip() == "https://github.com/o/r/pull/7"
    argv = (record / "argv").read_text(encoding="utf-8").splitlines()
    assert argv[:4] == ["pr", "create", "--title", "Parse the config: 2 items"]
    assert "--body-file" in argv and argv[-2:] == ["--base", "main"]
    sent = (record / "body").read_text(encoding="utf-8")
    assert "## What was done" in sent and "Add the loader" in sent
    assert not sent.startswith("# ")  # gh has the title apart


def test_open_without_a_remote_refuses_and_writes_nothing(
    night: Night,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    bin_dir = _fake_gh(tmp_path / "bin", record)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    target = tmp_path / "PR.md"
    code, out, err = nightcrew(
        monkeypatch, capsys, night.root, "pr", "--open", "--output", str(target)
    )
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "has no remote" in err and "`gh`" not in err
    assert not target.exists() and not (record / "argv").exists()


def test_open_without_gh_says_so(
    night: Night,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    found = shutil.which("git")
    assert found is not None
    (only_git / "git").symlink_to(found)
    monkeypatch.setenv("PATH", str(only_git))
    git(night.root, "remote", "add", "origin", "https://github.com/o/r.git")
    code, _, err = nightcrew(monkeypatch, capsys, night.root, "pr", "--open")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "`gh` is not on PATH" in err


def test_commits_between_when_history_moved(night: Night) -> None:
    head = night.commits["feat(functional): Login form"]
    assert gitops.commits_between(night.root, "f" * 40, head) == [
        (head, "feat(functional): Login form")
    ]
    assert gitops.commits_between(night.root, None, "f" * 40) == []


def test_over_budget_is_the_reason(night: Night) -> None:
    store = night.store
    run = store.create_run(
        kind="plan",
        source_path="PLAN.md",
        source_sha256="a" * 64,
        config={},
        prefix_sha256="b" * 64,
        pid=1,
    )
    store.set_run_state(run.id, RunState.RUNNING)
    item = store.add_item(run.id, key="1", number=1, title="Big one", body="x", sha="c" * 64)
    store.set_item_state(item.id, ItemState.IN_PROGRESS)
    head = git(night.root, "rev-parse", "HEAD")
    _attempt(store, run, item, AttemptState.OVER_BUDGET, base=head, cost="1.00")
    store.set_item_state(item.id, ItemState.PENDING, reason="budget exceeded")
    spent = "the run's budget of $1.00 is spent"
    store.set_run_state(run.id, RunState.BUDGET_EXCEEDED, message=spent)
    text = markdown(pull_request(store, night.root, run_id=run.id))
    assert text.startswith("# Parse the config: 0 items\n")
    assert f"**Batch 1: Big one** (pending): over budget: {spent}" in text
    assert "No item passed in this run." in _section(text, "What was asked")
