"""``nightcrew notify test``, and the notification targets that ``plan check``
and ``--dry-run`` list, secrets masked, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.support import git, make_project, plan_text
from tests.integration.test_bad_input import nightcrew
from tests.notify_listener import Listener, closed_port

SECRET = "hunter22secret"


def test_notify_test_says_per_target_whether_it_was_sent(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", plan_text(["A"]))
    dead = f"json://bob:{SECRET}@127.0.0.1:{closed_port()}/"
    with Listener() as listener:
        (project / "nightcrew.toml").write_text(f'notify = ["{listener.url("/ok")}", "{dead}"]\n')
        result = nightcrew(project, "notify", "test")
        posts = listener.at("/ok")

    assert result.returncode == 1, result.stderr
    assert result.stdout == f"sent: {listener.url('/ok')}\n"
    assert result.stderr.splitlines() == [
        f"failed: json://bob:****@127.0.0.1:{dead.rsplit(':', 1)[1]}"
        ": A Connection error occurred sending JSON notification to 127.0.0.1",
        "nightcrew: 1 of 2 target(s) failed",
    ]
    assert [p["title"] for p in posts] == ["nightcrew: test notification"]
    assert "Notifications from nightcrew reach you here" in posts[0]["message"]


def test_notify_test_with_a_url_tries_that_one_only_and_answers_json(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", plan_text(["A"]))
    (project / "nightcrew.toml").write_text(f'notify = ["json://127.0.0.1:{closed_port()}/"]\n')
    with Listener() as listener:
        result = nightcrew(project, "notify", "test", "--url", listener.url("/x"), "--json")
        assert len(listener.at("/x")) == 1

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"target": listener.url("/x"), "scheme": "json", "sent": True, "error": None}
    ]


def test_plan_check_and_dry_runs_list_the_targets_with_secrets_masked(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", plan_text(["A"]))
    (project / "nightcrew.toml").write_text(
        f'notify = [\n  "json://bob:{SECRET}@127.0.0.1:9/",\n'
        '  "tgram://123456789:AAbbCCddEEff/12315544/",\n]\n'
    )
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "notify")
    masked = ["json://bob:****@127.0.0.1:9/", "tgram://1...f/12315544/"]

    checked = nightcrew(project, "plan", "check", "PLAN.md")
    assert checked.returncode == 0, checked.stderr
    assert f"notifications: {', '.join(masked)}\n" in checked.stdout
    as_json = nightcrew(project, "plan", "check", "PLAN.md", "--json")
    assert json.loads(as_json.stdout)["notify"] == masked

    with Listener() as listener:  # a dry run sends nothing
        extra = listener.url("/extra")
        run = nightcrew(project, "run", "PLAN.md", "--dry-run", "--notify", extra)
        added = nightcrew(project, "backlog", "add", "Login", "--accept", "true")
        assert added.returncode == 0, added.stderr
        build = nightcrew(project, "build", "--dry-run")
        assert listener.at("/extra") == []
    assert run.returncode == 0, run.stderr
    assert "notifications:\n" + "".join(f"  {m}\n" for m in [*masked, extra]) in run.stdout
    assert build.returncode == 0, build.stderr
    assert "notifications:\n" + "".join(f"  {m}\n" for m in masked) in build.stdout
    for result in (checked, as_json, run, build):
        assert SECRET not in result.stdout + result.stderr
        assert "AAbbCCddEEff" not in result.stdout + result.stderr
