"""What the engine asks the backend instead of knowing Claude Code: the tools
an agent may use when the config names none, and what the agent calls the
harness's tools in its prompts."""

from __future__ import annotations

import json
from pathlib import Path

from nightcrew.config import Settings
from nightcrew.engine.builder import Builder, BuildOptions
from nightcrew.engine.initializer import init_prompt
from nightcrew.engine.report import NullReporter
from nightcrew.store.backlog import Backlog
from nightcrew.store.records import Store
from nightcrew.testing import FakeBackend, Script
from nightcrew.work.backlog import FeatureSpec
from tests.unit.test_wait_on_limit import project, run, success


class OtherAgent(FakeBackend):
    """An agent whose own tools and tool names are not Claude Code's."""

    name = "other"
    default_allowed_tools = ("shell", "apply_patch")

    def tool_name(self, tool: str) -> str:
        return f"backlog.{tool}"


def stored_config(root: Path) -> dict[str, object]:
    store = Store.open(root / ".nightcrew" / "nightcrew.db")
    try:
        row = store.db.execute("SELECT config_json FROM runs").fetchone()
    finally:
        store.close()
    return dict(json.loads(row[0]))


def test_without_allowed_tools_in_the_config_the_agent_gets_its_backends_defaults(
    tmp_path: Path,
) -> None:
    backend = OtherAgent([Script(finished=success())])
    proj, _, _ = run(tmp_path, backend, lambda when: None)
    assert {r.allowed_tools for r in backend.requests} == {("shell", "apply_patch")}
    assert stored_config(proj.root)["allowed_tools"] == ["shell", "apply_patch"]


def test_allowed_tools_in_the_config_win_over_the_backends(tmp_path: Path) -> None:
    backend = OtherAgent([Script(finished=success())])
    run(tmp_path, backend, lambda when: None, allowed_tools=("shell",))
    assert {r.allowed_tools for r in backend.requests} == {("shell",)}


def test_a_features_prompt_names_the_tools_as_the_backend_does(tmp_path: Path) -> None:
    proj = project(tmp_path)
    store = Store.open(proj.store_path)
    try:
        Backlog(store).create([FeatureSpec(name="Login", acceptance=("true",))], source="test")
    finally:
        store.close()
    backend = OtherAgent([Script(finished=success())])
    options = BuildOptions(register=False, tools=lambda *_: ())
    Builder(proj, Settings(gates=("true",)), backend, NullReporter(), options).execute()
    prompt = backend.requests[0].prompt
    assert "- backlog.claim_passing: say the feature works" in prompt
    assert "- backlog.request_human_input: only when" in prompt
    assert "mcp__" not in prompt


def test_the_initializers_prompt_names_the_tools_as_the_backend_does() -> None:
    text = init_prompt(
        project_root=Path("/p"), spec_path="SPEC.md", existing=0, tool_name=lambda t: f"bl.{t}"
    )
    assert "with the backlog tools (bl.create_features and the others)" in text
