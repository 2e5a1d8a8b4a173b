"""``nightcrew build``, ``run`` and ``backlog`` in-process (``cli.main``), the
agent the scripted backend of ``nightcrew.testing``: the loop's decisions as a
user sees them (console lines, exit codes, the backlog's states, the failure
records, the commits). Real git, real SQLite, real acceptance commands; the
real Claude Code CLI is in tests/integration for the seams only.

Moved here from tests/integration/test_build.py and test_routing.py: they
tested escalation, budgets, --max-features, --on-failure, imported claims and
routing rules, none of which depends on the agent being Claude Code."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from nightcrew.agents.base import AgentRequest, Capabilities, Text
from nightcrew.core.usage import ModelUsage, TokenCounts
from nightcrew.testing import FakeBackend, Script, success, usage
from tests.integration.support import GIT_ENV, HAIKU, OPUS, git, make_project
from tests.integration.support import ROUTING_PLAN as PLAN
from tests.integration.support import ROUTING_RULES as RULES

pytestmark = pytest.mark.timeout(120)

MODEL = "claude-sonnet-4-5"
COST = Decimal("0.0123")  # what each session's agent reports it cost


def check(expr: str) -> str:
    """An acceptance command: exits 0 when ``expr`` holds for calc."""
    return f"{sys.executable} -c 'import calc; assert {expr}'"


def adds(name: str, expr: str, test_expr: str, *, text: str = "Done.") -> Callable[..., Script]:
    """A session that adds ``name`` to calc.py and a test of it (as the sim's
    scripted Bash call does), reporting ``COST``."""

    def session(request: AgentRequest) -> Script:
        calc = (request.cwd / "calc.py").read_text()
        tests = (request.cwd / "tests" / "test_calc.py").read_text()
        spent = ModelUsage(request.model or MODEL, TokenCounts(input=1000), COST)
        return Script(
            events=(Text(text),),
            writes={
                "calc.py": f"{calc}\n\ndef {name}(a, b):\n    return {expr}\n",
                "tests/test_calc.py": f"{tests}\n\ndef test_{name}():\n    assert {test_expr}\n",
            },
            finished=success(COST, model_usage=(spent,), text=text),
        )

    return session


def idle(request: AgentRequest, text: str = "Done.") -> Script:
    """A session that changes nothing ("I think it works")."""
    spent = ModelUsage(request.model or MODEL, TokenCounts(input=1000), COST)
    return Script(events=(Text(text),), finished=success(COST, model_usage=(spent,), text=text))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Nightcrew:
    """``nightcrew ARGS`` in this process, in the project at ``root``, its agent
    ``backend``; each call returns the exit code and what it printed."""

    def __init__(
        self,
        root: Path,
        backend: FakeBackend,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        from nightcrew.cli import agent_choice

        self.root, self.backend = root, backend
        self.monkeypatch, self.capsys = monkeypatch, capsys
        monkeypatch.chdir(root)
        for name, value in GIT_ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("NIGHTCREW_DEBUG", raising=False)
        monkeypatch.setattr(agent_choice, "agent_backend", lambda settings, root: backend)

    def __call__(self, *args: str) -> Result:
        from nightcrew import cli

        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "argv", ["nightcrew", *args])
        code = 0
        try:
            cli.main()
        except SystemExit as exited:
            code = int(exited.code or 0)
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    def add(self, name: str, *args: str) -> int:
        result = self("backlog", "add", name, *args)
        assert result.returncode == 0, result.stderr
        return int(result.stdout.split()[1].lstrip("#"))

    def backlog(self) -> dict[int, dict[str, Any]]:
        result = self("backlog", "list", "--json")
        assert result.returncode == 0, result.stderr
        return {f["id"]: f for f in json.loads(result.stdout)}

    def events(self, kind: str) -> list[dict[str, Any]]:
        with sqlite3.connect(self.root / ".nightcrew" / "nightcrew.db") as conn:
            rows = conn.execute(
                "SELECT payload_json FROM events WHERE kind = ? ORDER BY id", (kind,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def first_models(self) -> list[str | None]:
        """The model each session was started on."""
        return [r.model for r in self.backend.requests]


def agent(script: Callable[[AgentRequest], Script]) -> FakeBackend:
    """The scripted backend, able to do what Claude Code does for a build:
    report its cost and take the backlog's tools."""
    backend = FakeBackend(script)
    backend.capabilities = Capabilities(reports_cost=True, harness_tools=True)  # type: ignore[misc]
    return backend


Starter = Callable[[Path, Callable[[AgentRequest], Script]], Nightcrew]


@pytest.fixture
def nightcrew(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Starter]:
    made: list[FakeBackend] = []

    def start(root: Path, script: Callable[[AgentRequest], Script]) -> Nightcrew:
        backend = agent(script)
        made.append(backend)
        return Nightcrew(root, backend, monkeypatch, capsys)

    yield start
    for backend in made:
        backend.reap()


def feature_number(request: AgentRequest) -> int:
    """The feature a build's session works on (its prompt's ``# Feature #N`` heading)."""
    for line in request.prompt.splitlines():
        if line.startswith("# Feature #"):
            return int(line.split()[2].lstrip("#"))
    raise AssertionError("not a feature's session")


# ---- moved from tests/integration/test_build.py ----------------------------------


def test_a_stuck_feature_climbs_the_chain_then_is_skipped_with_a_failure_record(
    tmp_path: Path, nightcrew: Starter
) -> None:
    root = make_project(tmp_path / "proj", "")
    # The agent never writes pow(): the acceptance command fails the same way each time.
    nc = nightcrew(root, idle)
    hard = nc.add("Power", "--accept", check("calc.pow(2, 3) == 8"))
    after = nc.add("Square", "--after", str(hard), "--accept", check("calc.sq(3) == 9"))

    result = nc("build", "--escalation", f"{HAIKU},{MODEL}", "--max-attempts-per-feature", "9")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "escalating to " + MODEL in result.stdout
    assert f"feature #{hard} skipped: stuck" in result.stdout
    assert "nothing is ready: 0 of 2 features passed, 1 skipped (#1), 1 blocked" in result.stdout
    # Three sessions with Haiku, then three with Sonnet.
    assert nc.first_models() == [HAIKU] * 3 + [MODEL] * 3
    features = nc.backlog()
    assert features[hard]["state"] == "skipped"
    assert features[after]["state"] == "blocked" and features[after]["blocked_by"] == [hard]
    assert features[hard]["attempts"] == 6
    failures = json.loads(nc("backlog", "failures", "--json").stdout)
    (record,) = failures
    assert record["feature_id"] == hard and "stuck" in record["reason"]
    assert [a["model"] for a in record["attempts"]] == [HAIKU] * 3 + [MODEL] * 3
    assert all("calc.pow(2, 3)" in a["digest"] for a in record["attempts"])
    assert record["last_text"] == "Done."
    assert record["cost_usd"] is not None and float(record["cost_usd"]) > 0
    # Its failed changes do not stay in the tree for the next feature.
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "log", "--format=%s").splitlines() == ["initial"]


def test_an_imported_passing_feature_is_checked_without_an_agent(
    tmp_path: Path, nightcrew: Starter
) -> None:
    root = make_project(tmp_path / "proj", "")
    prd = [
        {
            "id": 1,
            "title": "Addition",
            "description": "calc.add exists already",
            "acceptance_criteria": [check("calc.add(2, 3) == 5")],
            "passes": True,
            "blocked_by": [],
        },
        {
            "id": 2,
            "title": "Subtraction",
            "description": "claimed, but not there",
            "acceptance_criteria": [check("calc.sub(5, 3) == 2")],
            "passes": True,
            "blocked_by": [1],
        },
    ]
    (root / "prd.json").write_text(json.dumps(prd))
    git(root, "add", "prd.json")
    git(root, "commit", "-qm", "prd")
    nc = nightcrew(root, adds("sub", "a - b", "calc.sub(5, 3) == 2"))
    assert nc("backlog", "import", "prd.json").returncode == 0

    result = nc("build", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "feature #1 passes: claim confirmed, no agent run" in result.stdout
    assert "feature #2: the claim is refuted" in result.stdout
    assert [feature_number(r) for r in nc.backend.requests] == [2]  # only #2 needed an agent
    with sqlite3.connect(root / ".nightcrew" / "nightcrew.db") as conn:
        verdicts = [r[0] for r in conn.execute("SELECT verdict FROM feature_claims ORDER BY id")]
    assert verdicts == ["confirmed", "refuted"]
    assert git(root, "log", "--format=%s").splitlines() == [
        "feat(functional): Subtraction",
        "prd",
        "initial",
    ]


def by_feature(*sessions: Callable[[AgentRequest], Script]) -> Callable[[AgentRequest], Script]:
    """Feature #N's sessions are ``sessions[N - 1]``."""
    return lambda request: sessions[feature_number(request) - 1](request)


def test_a_spent_budget_stops_the_build_and_resume_finishes_it(
    tmp_path: Path, nightcrew: Starter
) -> None:
    root = make_project(tmp_path / "proj", "")
    sub = adds("sub", "a - b", "calc.sub(5, 3) == 2")
    mul = adds("mul", "a * b", "calc.mul(3, 4) == 12")
    started: list[int] = []

    def session(request: AgentRequest) -> Script:
        # Each session's first response costs $0.0105 on Sonnet (3,500 input
        # tokens), streamed before its end: the second one crosses the budget.
        started.append(feature_number(request))
        found = (sub, mul)[feature_number(request) - 1](request)
        return Script(
            events=(usage(MODEL, f"msg-{len(started)}", input=3500), *found.events),
            writes=found.writes,
            finished=found.finished,
        )

    nc = nightcrew(root, session)
    one = nc.add("Subtraction", "--accept", check("calc.sub(5, 3) == 2"))
    two = nc.add("Multiplication", "--accept", check("calc.mul(3, 4) == 12"))

    # Enough for the first feature, not for a second.
    stopped = nc("build", "--model", MODEL, "--max-budget-usd", f"{float(COST) * 1.5:.4f}")

    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "budget exceeded: the run budget (--max-budget-usd" in stopped.stdout
    features = nc.backlog()
    assert features[one]["state"] == "passed"
    assert features[two]["state"] == "pending"  # stopped mid-attempt, never left in progress
    assert started == [one, two]
    resumed = nc("build", "--resume", "--model", MODEL)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert [f["state"] for f in nc.backlog().values()] == ["passed", "passed"]


def test_max_features_stops_early_and_on_failure_stop_ends_the_build_with_exit_1(
    tmp_path: Path, nightcrew: Starter
) -> None:
    root = make_project(tmp_path / "proj", "")
    nc = nightcrew(root, by_feature(adds("sub", "a - b", "calc.sub(5, 3) == 2"), idle))
    one = nc.add("Subtraction", "--accept", check("calc.sub(5, 3) == 2"))
    two = nc.add("Power", "--accept", check("calc.pow(2, 3) == 8"))

    first = nc("build", "--model", MODEL, "--max-features", "1")

    assert first.returncode == 0, first.stdout + first.stderr
    assert "stopped after 1 feature(s) (--max-features); 1 of 2 features passed" in first.stdout
    assert nc.backlog()[two]["state"] == "pending"

    second = nc("build", "--resume", "--model", MODEL, "--on-failure", "stop")

    assert second.returncode == 1, second.stdout + second.stderr
    assert f"feature #{two} failed: the feature failed and --on-failure is stop" in second.stdout
    features = nc.backlog()
    assert [features[one]["state"], features[two]["state"]] == ["passed", "failed"]
    failures = json.loads(nc("backlog", "failures", "--json").stdout)
    assert [f["feature_id"] for f in failures] == [two]


# ---- moved from tests/integration/test_routing.py --------------------------------


def configure(root: Path, text: str) -> None:
    """The project's nightcrew.toml, committed (a run refuses a dirty tree)."""
    (root / "nightcrew.toml").write_text(text)
    git(root, "add", "nightcrew.toml")
    git(root, "commit", "-q", "-m", "config")


def batch_number(request: AgentRequest) -> int:
    """The batch a plan run's session works on (its prompt's ``Batch N of M``)."""
    for line in request.prompt.splitlines():
        if "Batch " in line and " of " in line:
            words = line.split()
            at = words.index("Batch")
            if words[at + 2] == "of":
                return int(words[at + 1])
    raise AssertionError("not a batch's session")


def works(request: AgentRequest) -> Script:
    """Batch ``n`` adds f<n> and its test."""
    n = batch_number(request)
    return adds(f"f{n}", str(n), f"calc.f{n}(0, 0) == {n}")(request)


def test_a_stuck_batch_climbs_its_rules_chain(tmp_path: Path, nightcrew: Starter) -> None:
    root = make_project(tmp_path / "p", "# Plan\n\n## Batch 1: Small\n\n### Task 1: Add f1\n")
    configure(
        root,
        f'max_retries = 5\n\n[[routing]]\nname = "cheap first"\n'
        f'models = ["{HAIKU}", "{MODEL}", "{OPUS}"]\n',
    )
    right = adds("f1", "1", "calc.f1(0, 0) == 1")
    wrong = adds("f1", "0", "calc.f1(0, 0) == 1")  # its own test fails the same way each time
    nc = nightcrew(root, lambda request: (right if request.model == MODEL else wrong)(request))

    result = nc("run", "PLAN.md")

    assert result.returncode == 0, result.stdout + result.stderr
    # Two equal failures on Haiku: stuck, so the batch climbs to Sonnet, which passes.
    assert nc.first_models() == [HAIKU, HAIKU, MODEL]
    assert f"batch 1: escalating to {MODEL}" in result.stdout
    decision = nc.events("decision")[-1]
    assert decision["reason"].endswith(f"failed the same way): escalating to {MODEL}")
    assert decision["routing"]["rule"] == "cheap first"


def test_the_command_line_model_overrides_the_rules(tmp_path: Path, nightcrew: Starter) -> None:
    root = make_project(tmp_path / "p", PLAN)
    configure(root, RULES)
    nc = nightcrew(root, works)

    result = nc("run", "PLAN.md", "--model", MODEL)

    assert result.returncode == 0, result.stdout + result.stderr
    assert nc.first_models() == [MODEL, MODEL]
    assert [batch_number(r) for r in nc.backend.requests] == [1, 2]
    routed = nc.events("routing")
    assert {e["rule"] for e in routed} == {None}
    assert routed[0]["why"] == "default: --model on the command line overrides the rules"


def test_a_features_rule_tries_haiku_first_and_climbs_to_sonnet_when_stuck(
    tmp_path: Path, nightcrew: Starter
) -> None:
    root = make_project(tmp_path / "p", "")
    configure(
        root,
        f'stuck_after = 2\n\n[[routing]]\nname = "docs"\ncategory = "docs"\n'
        f'models = ["{HAIKU}", "{MODEL}"]\n',
    )
    build = adds("sub", "a - b", "calc.sub(5, 3) == 2")
    nc = nightcrew(root, lambda request: (build if request.model == MODEL else idle)(request))
    nc.add("Sub", "--category", "docs", "--accept", check("calc.sub(5, 3) == 2"))

    result = nc("build")

    assert result.returncode == 0, result.stdout + result.stderr
    assert nc.first_models() == [HAIKU, HAIKU, MODEL]
    assert f"escalating to {MODEL}" in result.stdout
    assert "the backlog is done: 1 of 1 features passed" in result.stdout
    (routed,) = nc.events("routing")
    assert routed["item"] == "feature #1" and routed["rule"] == "docs"
    assert routed["why"].startswith("rule 'docs' matched: category docs")


# ---- moved from tests/integration/test_build_states.py ---------------------------


def test_a_builds_status_and_forecast_speak_of_features_with_reported_costs(
    tmp_path: Path, nightcrew: Starter
) -> None:
    root = make_project(tmp_path / "proj", "")
    nc = nightcrew(root, adds("sub", "a - b", "calc.sub(5, 3) == 2"))
    one = nc.add("Subtraction", "--accept", check("calc.sub(5, 3) == 2"))
    nc.add("Power", "--accept", check("calc.pow(2, 3) == 8"))
    nc.add("Cube", "--accept", check("calc.cube(2) == 8"))

    result = nc("build", "--model", MODEL, "--max-features", "1")
    assert result.returncode == 0, result.stdout + result.stderr

    shown = nc("status", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["run"]["kind"] == "build"
    (feature,) = data["features"]
    assert feature["id"] == one and feature["name"] == "Subtraction"
    assert feature["state"] == "passed"

    forecast = nc("usage", "--forecast")
    assert forecast.returncode == 0, forecast.stderr
    line = " ".join(forecast.stdout.split())
    assert line.startswith("build ") and "2 features left: about $" in line, line
    assert "from 1 passed feature" in line and "unknown" not in line and "batch" not in line
    as_json = json.loads(nc("usage", "--forecast", "--json").stdout)
    assert as_json["kind"] == "build" and (as_json["passed"], as_json["left"]) == (1, 2)
    # The forecast is made of the cost the agent reported for the passed feature.
    assert as_json["forecast"]["cost_median"] == pytest.approx(2 * float(COST), abs=1e-6)


def test_an_answered_question_reaches_the_next_attempt_and_the_build_finishes(
    tmp_path: Path, nightcrew: Starter
) -> None:
    """The second half of tests/integration/test_build.py's asks-a-person test
    (whose first build keeps the real CLI calling the MCP tool): `backlog
    answer`, then a build whose agent reads the answer and passes the feature."""
    root = make_project(tmp_path / "proj", "")
    sub = adds("sub", "a - b", "calc.sub(5, 3) == 2")
    mul = adds("mul", "a * b", "calc.mul(3, 4) == 12")

    def session(request: AgentRequest) -> Script:
        if feature_number(request) == 2:
            return mul(request)
        if "Answer: no rounding" in request.prompt:  # with the answer, the agent builds it
            return sub(request)
        [ask] = [t for t in request.harness_tools if t.name == "request_human_input"]

        async def asks() -> None:
            reply = await ask.call({"question": "Should sub round to integers?"})
            assert not reply.is_error, reply.text

        return Script(after=asks)

    nc = nightcrew(root, session)
    one = nc.add("Subtraction", "--accept", check("calc.sub(5, 3) == 2"))
    two = nc.add("Multiplication", "--accept", check("calc.mul(3, 4) == 12"))
    first = nc("build", "--model", MODEL)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 of 2 features passed, 1 waiting for a person (#1)" in first.stdout
    assert nc.backlog()[one]["state"] == "needs_input"

    answered = nc("backlog", "answer", str(one), "no rounding")
    assert answered.returncode == 0, answered.stderr
    second = nc("build", "--model", MODEL)

    assert second.returncode == 0, second.stdout + second.stderr
    assert "the backlog is done: 2 of 2 features passed" in second.stdout
    prompts = [r.prompt for r in nc.backend.requests if feature_number(r) == one]
    assert len(prompts) == 2 and "Answer: no rounding" in prompts[1]
    assert [f["state"] for f in nc.backlog().values()] == ["passed", "passed"]
    assert two in nc.backlog()


def test_the_agents_set_up_runs_once_there_is_work_and_never_for_nothing_to_do(
    tmp_path: Path, nightcrew: Starter
) -> None:
    root = make_project(tmp_path / "proj", "")
    nc = nightcrew(root, adds("sub", "a - b", "calc.sub(5, 3) == 2"))
    prepared: list[str] = []
    nc.backend.prepare = lambda: prepared.append("prepared")  # type: ignore[attr-defined]

    nc.add("Subtraction", "--accept", check("calc.sub(5, 3) == 2"))
    assert nc("build", "--model", MODEL).returncode == 0
    assert prepared == ["prepared"]  # once, for the build that had a feature to work on

    done = nc("build", "--model", MODEL)

    assert done.returncode == 0 and "the backlog is done" in done.stdout
    assert prepared == ["prepared"]  # the SDK's import is not paid for nothing to do
