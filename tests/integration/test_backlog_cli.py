"""``nightcrew backlog …`` as a person uses it: import the three formats, look,
change, and get one clear line (exit 2, nothing changed) for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.support import git, make_project, plan_text
from tests.integration.test_cli import assert_clean_error, nightcrew

PRD = [
    {"id": 1, "title": "Database schema", "description": "users and posts tables",
     "acceptance_criteria": ["test -f schema.sql"], "passes": False, "blocked_by": []},
    {"id": 2, "title": "Signup endpoint", "description": "POST /signup",
     "acceptance_criteria": ["grep -q signup app.py"], "passes": False, "blocked_by": [1]},
    {"id": 3, "title": "Login endpoint", "description": "POST /login",
     "acceptance_criteria": ["grep -q login app.py"], "passes": True, "blocked_by": [1, 2]},
]  # fmt: skip
QUICKSTART = [
    {"category": "functional", "description": "User can open the home page. It shows a feed.",
     "steps": ["Navigate to /", "See the feed"], "passes": False},
    {"category": "style", "description": "Buttons use the brand colour",
     "steps": ["Open any page", "Check button colour"], "passes": True},
]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "p", plan_text(["unused"]))


def listed(project: Path) -> list[dict[str, object]]:
    result = nightcrew(project, "backlog", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_import_prd_then_manage_it(project: Path) -> None:
    (project / "prd.json").write_text(json.dumps(PRD, indent=2))
    result = nightcrew(project, "backlog", "import", "prd.json")
    assert result.returncode == 0, result.stderr
    assert "imported 3 feature(s)" in result.stdout and "prd format" in result.stdout
    features = listed(project)
    assert [(f["id"], f["name"], f["depends_on"]) for f in features] == [
        (1, "Database schema", []),
        (2, "Signup endpoint", [1]),
        (3, "Login endpoint", [1, 2]),
    ]
    # the file said #3 passes: recorded as a claim, not believed
    assert features[2]["state"] == "pending"
    show = json.loads(nightcrew(project, "backlog", "show", "#3", "--json").stdout)
    assert [c["source"] for c in show["claims"]] == ["import prd.json"]

    added = nightcrew(project, "backlog", "add", "Post feed", "--accept", "grep -q feed app.py",
                      "--after", "1", "--file", "app.py", "--category", "feed")  # fmt: skip
    assert added.returncode == 0 and "added #4" in added.stdout
    assert nightcrew(project, "backlog", "depend", "4", "--on", "3").returncode == 0
    assert listed(project)[3]["depends_on"] == [1, 3]

    # skipping #2 blocks what depends on it; retry with a model brings it back
    assert nightcrew(project, "backlog", "skip", "2").returncode == 0
    states = {f["id"]: f["state"] for f in listed(project)}
    assert states == {1: "pending", 2: "skipped", 3: "blocked", 4: "blocked"}
    blocked = nightcrew(project, "backlog", "list", "--state", "blocked", "--json")
    assert [f["id"] for f in json.loads(blocked.stdout)] == [3, 4]
    retry = nightcrew(project, "backlog", "retry", "2", "--model", "claude-opus-4-5")
    assert retry.returncode == 0 and "next attempt with claude-opus-4-5" in retry.stdout
    assert {f["id"]: f["state"] for f in listed(project)}[3] == "pending"

    assert [f["id"] for f in listed(project)] == [1, 3, 4, 2]  # skip moved #2 to the end
    assert nightcrew(project, "backlog", "reorder", "2", "--before", "3").returncode == 0
    assert [f["id"] for f in listed(project)] == [1, 2, 3, 4]
    last = nightcrew(project, "backlog", "reorder", "1", "--after", "4")  # to the end
    assert last.stdout == "#1 now comes after #4\n"
    assert [f["id"] for f in listed(project)] == [2, 3, 4, 1]
    assert nightcrew(project, "backlog", "reorder", "1", "--before", "2").returncode == 0

    edit = nightcrew(project, "backlog", "edit", "1", "--accept", "test -f schema.sql.lock")
    assert edit.returncode == 0
    assert listed(project)[0]["acceptance"] == ["test -f schema.sql", "test -f schema.sql.lock"]

    stats = json.loads(nightcrew(project, "backlog", "stats", "--json").stdout)
    assert (stats["total"], stats["passed"], stats["cost_usd"]) == (4, 0, 0.0)
    assert stats["forecast"] is None  # nothing passed yet to estimate from

    analysis = json.loads(nightcrew(project, "backlog", "analyze", "--json").stdout)
    assert analysis  # shape is tested in test_backlog_graph
    text = nightcrew(project, "backlog", "analyze").stdout
    assert "#3 Login endpoint" in text and "depends on" in text


def test_export_json_imports_back_into_another_project(project: Path, tmp_path: Path) -> None:
    (project / "prd.json").write_text(json.dumps(PRD))
    nightcrew(project, "backlog", "import", "prd.json")
    nightcrew(project, "backlog", "skip", "2")
    nightcrew(project, "backlog", "retry", "2", "--model", "opus")
    exported = nightcrew(project, "backlog", "export", "--json", "-o", "backlog.json")
    assert exported.returncode == 0, exported.stderr
    other = make_project(tmp_path / "other", plan_text(["unused"]))
    (other / "backlog.json").write_text((project / "backlog.json").read_text())
    result = nightcrew(other, "backlog", "import", "backlog.json")
    assert result.returncode == 0 and "nightcrew format" in result.stdout

    def graph(root: Path) -> set[tuple[str, tuple[str, ...], str | None]]:
        # ids are given afresh in the other project (in backlog order): compare names
        features = listed(root)
        names = {f["id"]: f["name"] for f in features}
        return {
            (f["name"], tuple(sorted(names[d] for d in f["depends_on"])), f["model"])
            for f in features
        }

    assert graph(other) == graph(project)
    assert ("Signup endpoint", ("Database schema",), "opus") in graph(other)
    markdown = nightcrew(project, "backlog", "export").stdout
    assert "# Backlog" in markdown and "Login endpoint" in markdown


def test_quickstart_features_come_in_manual_unless_given_a_command(project: Path) -> None:
    (project / "feature_list.json").write_text(json.dumps(QUICKSTART, indent=2))
    result = nightcrew(project, "backlog", "import", "feature_list.json")
    assert result.returncode == 0
    assert "came in as manual" in result.stderr
    features = listed(project)
    assert [f["manual"] for f in features] == [True, True]
    # the same file again, as other features, with a command for build to run
    second = nightcrew(
        project, "backlog", "import", "feature_list.json", "--accept", "npm test", "--prefix", "ci"
    )
    assert second.returncode == 0, second.stderr
    assert "came in as manual" not in second.stderr
    added = listed(project)[2:]
    assert [(f["manual"], f["acceptance"]) for f in added] == [(False, ["npm test"])] * 2


def test_a_claimed_manual_feature_waits_for_a_person(project: Path) -> None:
    (project / "feature_list.json").write_text(json.dumps(QUICKSTART, indent=2))
    assert nightcrew(project, "backlog", "import", "feature_list.json").returncode == 0
    # the file says #2 passes, but nobody checked: it is a claim, counted as unverified
    assert [f["state"] for f in listed(project)] == ["pending", "pending"]
    stats = nightcrew(project, "backlog", "stats")
    assert "1 claimed to pass but unverified" in stats.stdout
    assert json.loads(nightcrew(project, "backlog", "stats", "--json").stdout)["unverified"] == 1
    assert "pending (manual)" in nightcrew(project, "backlog", "list").stdout

    assert_clean_error(nightcrew(project, "backlog", "pass", "2"), 2, "--note")
    passed = nightcrew(project, "backlog", "pass", "2", "--note", "clicked every button")
    assert passed.returncode == 0, passed.stderr
    assert [f["state"] for f in listed(project)] == ["pending", "passed"]
    assert "0 claimed" not in nightcrew(project, "backlog", "stats").stdout
    show = json.loads(nightcrew(project, "backlog", "show", "2", "--json").stdout)
    assert [c["verdict"] for c in show["claims"]] == ["confirmed"]


def test_acceptance_makes_a_manual_feature_automatic(project: Path) -> None:
    (project / "feature_list.json").write_text(json.dumps(QUICKSTART[:1]))
    assert nightcrew(project, "backlog", "import", "feature_list.json").returncode == 0
    edit = nightcrew(project, "backlog", "edit", "1", "--accept", "test -f index.html")
    assert edit.returncode == 0, edit.stderr
    assert "#1 is now automatic" in edit.stdout
    [feature] = listed(project)
    assert (feature["manual"], feature["acceptance"]) == (False, ["test -f index.html"])
    assert "(manual)" not in nightcrew(project, "backlog", "list").stdout
    # a person checks only manual features
    refused = nightcrew(project, "backlog", "pass", "1", "--note", "looks fine")
    assert_clean_error(refused, 2, "#1 has acceptance commands")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("backlog", "show", "12"), ("no feature #12",)),
        (("backlog", "skip", "1", "x7"), ("'x7' is not a feature id",)),
        (("backlog", "list", "--state", "done"), ("--state 'done'", "needs_input")),
        (("backlog", "depend", "1", "--on", "3"), ("cycle", "#1 → #3")),
        (("backlog", "depend", "2", "--on", "2"), ("cannot depend on itself",)),
        (("backlog", "answer", "2", "yes"), ("asked nothing",)),
        (("backlog", "reorder", "2", "--before", "2"), ("before itself",)),
        (("backlog", "edit", "2"), ("nothing to change",)),
        (("backlog", "add", "No way to check it"), ("no acceptance command",)),
        (("backlog", "import", "missing.json"), ("missing.json", "cannot read")),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    project: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    (project / "prd.json").write_text(json.dumps(PRD))
    nightcrew(project, "backlog", "import", "prd.json")
    before = listed(project)
    assert_clean_error(nightcrew(project, *args), 2, *needles)
    assert listed(project) == before


def test_a_file_goes_in_whole_or_not_at_all(project: Path) -> None:
    (project / "prd.json").write_text(json.dumps(PRD))
    assert nightcrew(project, "backlog", "import", "prd.json").returncode == 0
    before = listed(project)
    # a second PRD whose tasks 4 and 5 block each other: the file is refused where
    # the cycle is written, and none of its features is added (not even the good ones)
    cyclic = [
        *PRD,
        {"id": 4, "title": "Feed", "acceptance_criteria": ["true"], "blocked_by": [5]},
        {"id": 5, "title": "Search", "acceptance_criteria": ["true"], "blocked_by": [4]},
    ]
    (project / "prd2.json").write_text(json.dumps(cyclic))
    again = nightcrew(project, "backlog", "import", "prd2.json", "--prefix", "two")
    assert_clean_error(again, 2, "prd2.json:", "dependency cycle: #4 → #5 → #4")
    assert listed(project) == before


def test_a_malformed_file_names_its_line_and_imports_nothing(project: Path) -> None:
    bad = json.dumps(PRD, indent=2).replace('"blocked_by": [\n      1\n    ]', '"blocked_by": [9]')
    (project / "prd.json").write_text(bad)
    result = nightcrew(project, "backlog", "import", "prd.json")
    assert_clean_error(result, 2, "prd.json:", "id 9")
    assert not (project / ".nightcrew" / "nightcrew.db").exists() or listed(project) == []


def test_no_backlog_yet_says_how_to_make_one(project: Path) -> None:
    assert_clean_error(nightcrew(project, "backlog", "list"), 2, "no backlog here yet")


@pytest.mark.parametrize(
    "first",
    [("backlog", "import", "prd.json"), ("backlog", "add", "Schema", "--accept", "true")],
)
def test_the_first_command_in_a_repo_keeps_nightcrew_out_of_git(
    project: Path, first: tuple[str, ...]
) -> None:
    (project / "prd.json").write_text(json.dumps(PRD))
    git(project, "add", "prd.json")
    git(project, "commit", "-q", "-m", "the backlog file")
    result = nightcrew(project, *first)
    assert result.returncode == 0, result.stderr
    assert (project / ".nightcrew" / "nightcrew.db").exists()
    assert git(project, "status", "--porcelain") == ""


def test_list_shows_names_as_written_in_aligned_columns(project: Path) -> None:
    for name in ("Fix [bold] titles", "登录页面", "Plain"):
        assert nightcrew(project, "backlog", "add", name, "--accept", "true").returncode == 0
    assert nightcrew(project, "backlog", "skip", "3").returncode == 0
    result = nightcrew(project, "backlog", "list")
    assert result.returncode == 0, result.stderr
    header, *rows, footer = result.stdout.splitlines()
    assert header.split() == ["id", "state", "category", "name", "after", "tries"]
    assert [row.split("  ")[0] for row in rows] == ["#1", "#2", "#3"]
    assert "Fix [bold] titles" in rows[0] and "登录页面" in rows[1]
    assert "skipped" in rows[2]
    assert footer == "3 shown; 0 of 3 passed"


def test_a_dependency_cycle_in_a_file_is_named_where_it_is_written(project: Path) -> None:
    tasks = [dict(task, blocked_by=[]) for task in PRD]
    tasks[0]["blocked_by"], tasks[1]["blocked_by"], tasks[2]["blocked_by"] = [3], [1], [2]
    (project / "prd.json").write_text(json.dumps(tasks, indent=2))
    result = nightcrew(project, "backlog", "import", "prd.json")
    line = json.dumps(tasks, indent=2).splitlines().index("      3") + 1  # #1's "blocked_by"
    assert_clean_error(result, 2, f"prd.json:{line}: dependency cycle: #1 → #3 → #2 → #1")
    assert not (project / ".nightcrew").exists()


def test_analyze_bases_conflicts_on_files_named_or_touched(project: Path) -> None:
    from nightcrew.project import Project
    from nightcrew.store.records import Store

    for args in (
        ("Login form", "--file", "app.py"),
        ("Signup form", "--description", "Adds signup.\nFiles: views.py"),
        ("Password form",),  # its given-up attempt changed views.py
        ("Profile form",),  # shares only words with the others
    ):
        added = nightcrew(project, "backlog", "add", *args, "--accept", "true")
        assert added.returncode == 0, added.stderr
    store = Store.open(Project(project).store_path)
    run = store.create_run(
        kind="backlog", source_path="", source_sha256="", config={}, prefix_sha256="", pid=1
    )
    item = store.add_item(
        run.id, key="feature-3", number=3, title="", body="", sha="", feature_id=3
    )
    store.start_attempt(
        run_id=run.id, item_id=item.id, backend="claude", model=None, prefix_sha256="",
        prompt_sha256="", base_sha=None, evidence_dir=None,
    )  # fmt: skip
    store.close()
    patch = (
        "diff --git a/views.py b/views.py\n--- a/views.py\n+++ b/views.py\n@@ -1 +1 @@\n-a\n+b\n"
    )
    (Project(project).run_dir(run.id) / "feature-3.patch").parent.mkdir(parents=True)
    (Project(project).run_dir(run.id) / "feature-3.patch").write_text(patch)

    analysis = json.loads(nightcrew(project, "backlog", "analyze", "--json").stdout)
    assert analysis["conflicts"] == [{"features": [2, 3], "files": ["views.py"]}]
    assert analysis["independent"] == [1, 2, 3, 4]
    text = nightcrew(project, "backlog", "analyze").stdout
    assert "#2 Signup form and #3 Password form: both touch views.py" in text


def test_importing_the_same_file_again_adds_nothing(project: Path) -> None:
    (project / "prd.json").write_text(json.dumps(PRD))
    assert nightcrew(project, "backlog", "import", "prd.json").returncode == 0
    again = nightcrew(project, "backlog", "import", "prd.json")
    assert again.returncode == 0, again.stderr
    assert "imported 0 feature(s), 3 unchanged" in again.stdout
    # a second PRD whose ids restart at 1 goes in beside the first with --prefix
    second = nightcrew(project, "backlog", "import", "prd.json", "--prefix", "two")
    assert second.returncode == 0, second.stderr
    features = listed(project)
    assert [f["source_key"] for f in features] == ["1", "2", "3", "two:1", "two:2", "two:3"]
    assert features[4]["depends_on"] == [4]


def test_export_import_export_is_byte_for_byte(project: Path, tmp_path: Path) -> None:
    (project / "feature_list.json").write_text(json.dumps(QUICKSTART[:1]))
    nightcrew(project, "backlog", "import", "feature_list.json")
    nightcrew(project, "backlog", "add", "API", "--accept", "true", "--after", "1")
    nightcrew(project, "backlog", "add", "Docs", "--accept", "true", "--after", "2")
    nightcrew(project, "backlog", "add", "Logo", "--manual")
    # a skipped middle feature moves to the end: the export is no longer in id order
    assert nightcrew(project, "backlog", "skip", "2").returncode == 0
    assert nightcrew(project, "backlog", "pass", "1", "--note", "looked").returncode == 0
    first = nightcrew(project, "backlog", "export", "--json").stdout
    assert [f["id"] for f in json.loads(first)["features"]] == [1, 3, 4, 2]
    assert '"state": "skipped"' in first and '"state": "passed"' in first
    other = make_project(tmp_path / "other", plan_text(["unused"]))
    (other / "backlog.json").write_text(first)
    assert nightcrew(other, "backlog", "import", "backlog.json").returncode == 0
    assert nightcrew(other, "backlog", "export", "--json").stdout == first
    states = [(f["id"], f["state"], f["source_key"]) for f in listed(other)]
    assert states == [(f["id"], f["state"], f["source_key"]) for f in listed(project)]
    # our own verdict "passed" comes back as passed, not as a claim to check again
    assert states[0][1] == "passed"
    assert "unverified" not in nightcrew(other, "backlog", "stats").stdout


def test_update_takes_a_changed_file_for_features_not_yet_started(project: Path) -> None:
    (project / "prd.json").write_text(json.dumps(PRD))
    assert nightcrew(project, "backlog", "import", "prd.json").returncode == 0
    changed = [dict(PRD[0], description="users, posts and likes"), *PRD[1:]]
    (project / "prd.json").write_text(json.dumps(changed))
    plain = nightcrew(project, "backlog", "import", "prd.json")
    assert plain.returncode == 0, plain.stderr
    assert "1 feature(s) differ" in plain.stderr and "--update" in plain.stderr
    assert listed(project)[0]["description"] == "users and posts tables"
    updated = nightcrew(project, "backlog", "import", "prd.json", "--update")
    assert updated.returncode == 0, updated.stderr
    assert "imported 0 feature(s), 1 updated, 2 unchanged" in updated.stdout
    assert listed(project)[0]["description"] == "users, posts and likes"


def test_rm_removes_unstarted_features_and_names_what_depends_on_them(project: Path) -> None:
    (project / "prd.json").write_text(json.dumps(PRD))
    assert nightcrew(project, "backlog", "import", "prd.json").returncode == 0
    assert_clean_error(nightcrew(project, "backlog", "rm", "2"), 2, "#2 is needed by #3")
    assert len(listed(project)) == 3
    removed = nightcrew(project, "backlog", "rm", "2", "--cascade")
    assert removed.returncode == 0, removed.stderr
    assert "#2 Signup endpoint: removed" in removed.stdout
    assert [f["id"] for f in listed(project)] == [1]
    # the removed ids are not given again: their history stays theirs
    nightcrew(project, "backlog", "add", "Logout", "--accept", "true")
    assert [f["id"] for f in listed(project)] == [1, 4]
