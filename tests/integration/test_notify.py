"""Notifications from a real build: the engine's loop with the scripted agent
backend, the notifier subscribed as ``nightcrew build`` subscribes it, and
Apprise posting ``json://`` to a real HTTP listener on this machine."""

from __future__ import annotations

import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from nightcrew.agents.base import AgentRequest
from nightcrew.cli.notifying import attach_notifier, crash_told
from nightcrew.config import Settings
from nightcrew.core.errors import ExitCode
from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.engine.builder import Builder, BuildOptions
from nightcrew.engine.report import NullReporter
from nightcrew.project import Project
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.testing import FakeBackend, Script, success
from nightcrew.work.backlog import FeatureSpec
from tests.notify_listener import Listener, closed_port
from tests.unit.test_item_loop import backlog, project

SONNET = "claude-sonnet-4-5"
MARKUP = "*_<b>&[link](x)`"  # what users and agents write in titles and questions
AS_MARKDOWN = r"\*\_<b\>&\[link\]\(x\)\`"
AS_HTML = "*_&lt;b&gt;&amp;[link](x)`"


def build(proj: Project, backend: FakeBackend, **settings: object) -> ExitCode:
    chosen = Settings(**{"gates": ("true",), **settings})  # type: ignore[arg-type]
    builder = Builder(proj, chosen, backend, NullReporter(), BuildOptions(register=False))
    notifier = attach_notifier(builder.bus, chosen, proj, "build")
    with crash_told(notifier):
        return builder.execute().exit_code


def asks(proj: Project, feature: int, question: str) -> None:
    """What the agent's request_human_input tool does."""
    store = Store.open(proj.store_path)
    try:
        Backlog(store).request_input(feature, question)
    finally:
        store.close()


def stored_events(proj: Project, kind: str) -> list[dict[str, object]]:
    store = Store.open(proj.store_path)
    try:
        rows = store.db.execute(
            "SELECT payload_json FROM events WHERE kind = ?", (kind,)
        ).fetchall()
    finally:
        store.close()
    return [json.loads(row[0]) for row in rows]


def everything_stored(proj: Project) -> str:
    store = Store.open(proj.store_path)
    try:
        return "\n".join(str(row) for row in store.db.iterdump())
    finally:
        store.close()


def test_a_build_tells_its_finish_a_given_up_feature_a_question_and_a_budget_stop_once_each(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path)
    backlog(
        proj,
        FeatureSpec(name=f"Alpha {MARKUP}", acceptance=("true",)),
        FeatureSpec(name=f"Bravo {MARKUP}", acceptance=("test -f never.txt",)),
        FeatureSpec(name=f"Charlie {MARKUP}", acceptance=("true",)),
        FeatureSpec(name=f"Delta {MARKUP}", acceptance=("true",)),
    )

    def script(request: AgentRequest) -> Script:
        if "Alpha" in request.prompt:
            asks(proj, 1, f"which provider: {MARKUP}?")
            return Script(writes={"alpha.txt": "a"})
        if "Bravo" in request.prompt:  # fails the same way every time: stuck, given up
            return Script(writes={"bravo.txt": "b"})
        if "Charlie" in request.prompt:  # spends the whole budget
            spent = ModelUsage("claude-sonnet-4-5", TokenCounts(input=10), Decimal("5"))
            return Script(
                writes={"charlie.txt": "c"}, finished=success(Decimal("5"), model_usage=(spent,))
            )
        return Script(writes={"delta.txt": "d"})

    with Listener() as listener:
        targets = (
            listener.url("/text"),
            listener.url("/markdown", format="markdown"),
            listener.url("/html", format="html"),
        )
        code = build(proj, FakeBackend(script), stuck_after=2, max_budget_usd=1.0, notify=targets)

        assert code == ExitCode.BUDGET_EXCEEDED
        text, markdown, html = listener.at("/text"), listener.at("/markdown"), listener.at("/html")

    assert [post["title"] for post in text] == [
        "nightcrew: a question for you",
        "nightcrew: feature given up",
        "nightcrew: budget spent, the build stops",
        "nightcrew: build stopped: budget spent",
    ]
    assert len(markdown) == len(html) == len(text)
    assert all(MARKUP not in post["title"] for post in text + markdown + html)

    question = next(p["message"] for p in text if "question" in p["title"])
    assert question.startswith(f"feature #1 'Alpha {MARKUP}' waits for a person:\n")
    assert f"which provider: {MARKUP}?\n" in question
    assert "nightcrew backlog answer 1 TEXT" in question
    given_up = next(p["message"] for p in text if "given up" in p["title"])
    assert given_up.startswith(f"feature #2 'Bravo {MARKUP}' was given up: stuck")
    finished = text[-1]
    assert finished["type"] == "warning"
    assert (
        "Features: 1 waiting for a person, 1 skipped, 1 passed, 1 not done."
        in (finished["message"])
    )
    assert f"- feature #2 'Bravo {MARKUP}': skipped" in finished["message"]
    assert finished["message"].startswith("The build ")
    assert (
        " stopped: budget exceeded: the run budget (--max-budget-usd $1) is spent"
        in (finished["message"])
    )
    # the scripted agent reports no cost for its other sessions: unknown, never $0
    assert "Cost: at least $5.0000 (some costs unknown). Time: " in finished["message"]

    # The same messages, escaped for services that read Markdown or HTML.
    for plain, md, as_html in zip(text, markdown, html, strict=True):
        assert plain["title"] == md["title"] == as_html["title"]
        if MARKUP in plain["message"]:
            assert AS_MARKDOWN in md["message"] and MARKUP not in md["message"]
            assert AS_HTML in as_html["message"] and "<b>" not in as_html["message"]
    assert stored_events(proj, "notify_failed") == []


def test_a_target_that_cannot_be_reached_is_an_event_and_the_build_goes_on(
    tmp_path: Path,
) -> None:
    proj = project(tmp_path)
    backlog(
        proj,
        FeatureSpec(name="Ask", acceptance=("true",)),
        FeatureSpec(name="Ship", acceptance=("true",)),
    )

    def script(request: AgentRequest) -> Script:
        if "Ask" in request.prompt:
            asks(proj, 1, "which one?")
        return Script(writes={"f.txt": request.prompt[-40:]})

    dead = f"json://bob:hunter22secret@127.0.0.1:{closed_port()}/"
    with Listener() as listener:
        code = build(proj, FakeBackend(script), notify=(dead, listener.url("/alive")))
        alive = [post["title"] for post in listener.at("/alive")]

    assert code == ExitCode.OK
    assert alive == ["nightcrew: a question for you", "nightcrew: build finished"]
    failed = stored_events(proj, "notify_failed")
    assert {(f["scheme"], f["notification"]) for f in failed} == {
        ("json", "question"),
        ("json", "finished"),
    }
    assert all("Connection error" in str(f["error"]) for f in failed)
    assert "hunter22secret" not in everything_stored(proj)


def test_a_notification_left_unanswered_never_holds_the_build(tmp_path: Path) -> None:
    proj = project(tmp_path)
    backlog(
        proj,
        FeatureSpec(name="Ask", acceptance=("true",)),
        FeatureSpec(name="Ship", acceptance=("true",)),
    )
    shipped_while_unanswered: list[bool] = []

    with Listener(hold=True) as listener:  # answers nothing until released

        def script(request: AgentRequest) -> Script:
            if "Ask" in request.prompt:
                asks(proj, 1, "which one?")
            else:  # the next feature's agent works while the question's post hangs
                listener.wait_for(1)
                shipped_while_unanswered.append(listener.answered == 0)
                listener.released.set()
            return Script(writes={"f.txt": request.prompt[-40:]})

        code = build(proj, FakeBackend(script), notify=(listener.url("/slow"),))
        titles = [post["title"] for post in listener.at("/slow")]

    assert code == ExitCode.OK
    assert shipped_while_unanswered == [True]
    assert titles == ["nightcrew: a question for you", "nightcrew: build finished"]


def test_a_crash_is_told_before_its_error_reaches_the_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nightcrew import cli

    proj = project(tmp_path)
    monkeypatch.chdir(proj.root)

    def broken(self: Builder) -> None:
        raise RuntimeError(f"the disk is {MARKUP}")

    monkeypatch.setattr(Builder, "execute", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its crash report, not in /tmp
    with Listener() as listener:
        monkeypatch.setattr(sys, "argv", ["nightcrew", "build", "--notify", listener.url("/c")])
        with pytest.raises(SystemExit) as exited:
            cli.main()
        posts = listener.at("/c")

    assert exited.value.code == ExitCode.WORK_FAILED
    assert [p["title"] for p in posts] == ["nightcrew: build crashed"]
    assert posts[0]["type"] == "failure"
    assert f"The build crashed: RuntimeError: the disk is {MARKUP}" in posts[0]["message"]
    assert "nightcrew: internal error: RuntimeError" in capsys.readouterr().err
    [report] = tmp_path.glob("nightcrew-crash-*.txt")  # the traceback, for a bug report
    assert "RuntimeError: the disk is" in report.read_text()


def test_backlog_init_tells_its_finish_and_its_budget_stop_as_a_build_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``nightcrew backlog init`` run in-process, its agent the scripted backend
    calling the backlog tools it is given: finished with the features created,
    the cost and the time; then, with --append and a budget its session spends,
    the budget stop and a stopped finish."""
    from nightcrew import cli
    from nightcrew.agents.base import Usage
    from nightcrew.cli import agent_choice

    proj = project(tmp_path)
    (proj.root / "SPEC.md").write_text(f"# A shop {MARKUP}\nA cart and a checkout.\n")
    monkeypatch.chdir(proj.root)
    sessions: list[str] = ["creates two features", "spends the budget"]

    def script(request: AgentRequest) -> Script:
        if sessions.pop(0) == "spends the budget":  # 400k tokens of sonnet: $1.20 of $1
            return Script(events=(Usage("m1", None, SONNET, TokenCounts(input=400_000)),))
        [create] = [t for t in request.harness_tools if t.name == "create_feature"]

        async def creates() -> None:
            for name in ("Cart", "Checkout"):
                reply = await create.call({"name": name, "acceptance": ["true"]})
                assert not reply.is_error, reply.text

        spent = ModelUsage(SONNET, TokenCounts(input=10), Decimal("0.05"))
        return Script(after=creates, finished=success(Decimal("0.05"), model_usage=(spent,)))

    backend = FakeBackend(script)
    monkeypatch.setattr(agent_choice, "agent_backend", lambda settings, root: backend)

    def init(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["nightcrew", "backlog", "init", "SPEC.md", *args])
        with pytest.raises(SystemExit) as exited:
            cli.main()
        return int(exited.value.code or 0)

    with Listener() as listener:
        assert init("--notify", listener.url("/n")) == ExitCode.OK
        assert init("--append", "--max-budget-usd", "1", "--notify", listener.url("/n")) == (
            ExitCode.BUDGET_EXCEEDED
        )
        posts = listener.at("/n")

    assert [p["title"] for p in posts] == [
        "nightcrew: backlog init finished",
        "nightcrew: budget spent, the backlog init stops",
        "nightcrew: backlog init stopped: budget spent",
    ]
    finished = posts[0]["message"]
    assert finished.startswith("The backlog init ")
    assert " finished: created 2 feature(s); see `nightcrew backlog list`" in finished
    assert "Cost: $0.0500. Time: " in finished and "Specs:" not in finished
    assert "(project proj)" in finished
    assert "the run budget (--max-budget-usd $1) is spent" in posts[2]["message"]
    assert posts[1]["type"] == "failure" and posts[2]["type"] == "warning"


def test_a_backlog_init_crash_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nightcrew import cli
    from nightcrew.engine.initializer import Initializer

    proj = project(tmp_path)
    (proj.root / "SPEC.md").write_text("# A shop\n")
    monkeypatch.chdir(proj.root)

    def broken(self: Initializer) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(Initializer, "execute", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its crash report, not in /tmp
    with Listener() as listener:
        argv = ["nightcrew", "backlog", "init", "SPEC.md", "--notify", listener.url("/c")]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            cli.main()
        posts = listener.at("/c")

    assert exited.value.code == ExitCode.WORK_FAILED
    assert [p["title"] for p in posts] == ["nightcrew: backlog init crashed"]
    assert "The backlog init crashed: RuntimeError: the disk is full" in posts[0]["message"]
    assert "nightcrew: internal error: RuntimeError" in capsys.readouterr().err
