"""Model routing: each condition of a rule, the first match winning, no match
leaving today's ladder, the command line and a feature's own model overriding
the rules, and a batch climbing a rule's chain when stuck."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nightcrew.config import Settings, load_settings
from nightcrew.config_routing import RoutingRule
from nightcrew.core.states import ItemState
from nightcrew.engine.policy import BatchPolicy, Climb, batch_ladder, failed
from nightcrew.engine.routing import (
    Facts,
    batch_facts,
    event_fields,
    feature_facts,
    for_batch,
    for_feature,
    for_init,
    route,
)
from nightcrew.work.backlog import Feature
from nightcrew.work.plan import Batch


def rule(name: str = "r", models: tuple[str, ...] = ("haiku",), **conditions: Any) -> RoutingRule:
    return RoutingRule(name=name, models=models, **conditions)


def batch(body: str = "x" * 100, *, critical: bool = False, files: int = 0) -> Batch:
    return Batch(
        number=1,
        title="t",
        line=1,
        body=body,
        tasks=(),
        context_refs=(),
        files_create=tuple(f"f{i}.py" for i in range(files)),
        files_modify=("f0.py",) if files else (),  # named twice, counted once
        critical=critical,
    )


def feature(
    *, category: str = "functional", model: str | None = None, description: str = ""
) -> Feature:
    return Feature(
        id=3,
        name="Add docs",
        category=category,
        description=description,
        steps=("one", "two"),
        acceptance=("true",),
        manual=False,
        files=("README.md", "docs/a.md"),
        priority=1,
        position=1,
        state=ItemState.PENDING,
        model=model,
    )


@pytest.mark.parametrize(
    ("conditions", "facts", "why"),
    [
        ({"kind": ("batch", "init")}, Facts("batch"), "kind batch"),
        ({"category": ("docs",)}, Facts("feature", category="docs"), "category docs"),
        ({"labels": ("ui", "db")}, Facts("feature", labels=("api", "db")), "label db"),
        ({"critical": True}, Facts("batch", critical=True), "CRITICAL"),
        ({"critical": False}, Facts("batch"), "not CRITICAL"),
        ({"max_chars": 2000}, Facts("feature", chars=340), "340 chars <= 2000"),
        ({"min_chars": 100}, Facts("feature", chars=340), "340 chars >= 100"),
        ({"min_files": 1, "max_files": 3}, Facts("batch", files=3), "1 <= 3 files named <= 3"),
        ({}, Facts("summary"), "no conditions"),
    ],
)
def test_each_condition_that_holds_is_said(
    conditions: dict[str, Any], facts: Facts, why: str
) -> None:
    chosen = route([rule("q", ("haiku", "sonnet"), **conditions)], facts)
    assert chosen.models == ("haiku", "sonnet")
    assert chosen.rule == "q"
    assert chosen.why == f"rule 'q' matched: {why}"


@pytest.mark.parametrize(
    ("conditions", "facts"),
    [
        ({"kind": ("batch",)}, Facts("feature")),
        ({"category": ("docs",)}, Facts("feature", category="ui")),
        ({"category": ("docs",)}, Facts("batch")),  # a batch has no category
        ({"labels": ("ui",)}, Facts("feature", labels=("db",))),
        ({"labels": ("ui",)}, Facts("feature")),
        ({"critical": True}, Facts("batch")),
        ({"critical": False}, Facts("batch", critical=True)),
        ({"max_chars": 2000}, Facts("batch", chars=2001)),
        ({"min_chars": 100}, Facts("batch", chars=99)),
        ({"max_files": 2}, Facts("batch", files=3)),
        ({"min_files": 1}, Facts("batch", files=0)),
        ({"kind": ("batch",), "critical": True}, Facts("batch")),  # all must hold
    ],
)
def test_a_condition_that_fails_leaves_the_default(
    conditions: dict[str, Any], facts: Facts
) -> None:
    chosen = route([rule(**conditions)], facts, ("sonnet",))
    assert (chosen.models, chosen.rule, chosen.why) == (
        ("sonnet",),
        None,
        "default: no rule matched",
    )


def test_the_first_matching_rule_wins() -> None:
    rules = [
        rule("big", ("opus",), min_chars=5000),
        rule("batches", ("sonnet",), kind=("batch",)),
        rule("all", ("haiku",)),
    ]
    assert route(rules, Facts("batch", chars=100)).rule == "batches"
    assert route(rules, Facts("batch", chars=9000)).rule == "big"
    assert route(rules, Facts("feature", chars=100)).rule == "all"


def test_without_rules_the_route_is_the_default() -> None:
    assert route([], Facts("batch"), ("m", "e")) == route([], Facts("feature"), ("m", "e"))
    assert route([], Facts("batch")).why == "default"


def test_batch_and_feature_facts() -> None:
    assert batch_facts(batch("abc", critical=True, files=2)) == Facts(
        "batch", chars=3, files=2, critical=True
    )
    facts = feature_facts(feature(category="docs", description="d" * 10))
    assert facts == Facts(
        "feature", chars=len("Add docs\n" + "d" * 10 + "\none\ntwo"), files=2, category="docs"
    )


def settings(tmp_path: Path, toml: str, overrides: dict[str, Any] | None = None) -> Settings:
    (tmp_path / "nightcrew.toml").write_text(toml)
    return load_settings(tmp_path, overrides)


RULES = """model = "sonnet"
escalate_model = "opus"
escalation = ["sonnet", "opus"]

[[routing]]
name = "critical"
critical = true
models = ["opus"]

[[routing]]
name = "quick"
kind = ["batch", "feature"]
max_chars = 200
models = ["haiku", "sonnet"]

[[routing]]
name = "spec"
kind = "init"
models = ["opus"]
"""


def test_a_rule_replaces_the_configured_models(tmp_path: Path) -> None:
    s = settings(tmp_path, RULES)
    assert for_batch(s, batch(critical=True)).models == ("opus",)
    assert for_batch(s, batch("x" * 100)).models == ("haiku", "sonnet")
    big = for_batch(s, batch("x" * 300))
    assert (big.models, big.why) == (("sonnet", "opus"), "default: no rule matched")
    assert for_feature(s, feature()).models == ("haiku", "sonnet")
    assert for_init(s, 10_000).models == ("opus",)


def test_without_rules_every_ladder_is_as_it_was(tmp_path: Path) -> None:
    s = settings(tmp_path, 'model = "sonnet"\nescalate_model = "opus"\nescalation = ["haiku"]\n')
    assert for_batch(s, batch()) == for_batch(s, batch(critical=True))
    assert for_batch(s, batch()).models == ("sonnet", "opus")
    assert for_batch(s, batch()).why == "default"
    assert for_feature(s, feature()).models == ("sonnet", "haiku")
    assert for_init(s, 5).models == ("sonnet",)


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"model": "m"}, "--model"),
        ({"escalate_model": "e"}, "--escalate-model"),
        ({"model": "m", "escalate_model": "e"}, "--model and --escalate-model"),
    ],
)
def test_the_command_line_overrides_the_rules_for_a_batch(
    tmp_path: Path, given: dict[str, str], why: str
) -> None:
    chosen = for_batch(settings(tmp_path, RULES, given), batch(critical=True))
    assert chosen.rule is None
    assert chosen.models == (given.get("model", "sonnet"), given.get("escalate_model", "opus"))
    verb = "override" if " and " in why else "overrides"
    assert chosen.why == f"default: {why} on the command line {verb} the rules"


def test_the_command_line_overrides_the_rules_for_a_feature_and_init(tmp_path: Path) -> None:
    s = settings(tmp_path, RULES, {"escalation": ("a", "b")})
    assert for_feature(s, feature()).models == ("sonnet", "a", "b")
    assert "--escalation on the command line" in for_feature(s, feature()).why
    s = settings(tmp_path, RULES, {"model": "x"})
    assert for_init(s, 10).models == ("x",)
    assert for_init(s, 10).rule is None


def test_a_features_own_model_overrides_the_rule(tmp_path: Path) -> None:
    s = settings(tmp_path, RULES)
    inside = for_feature(s, feature(model="sonnet"))
    assert inside.models == ("sonnet",)  # climbs the rule's chain from its own model
    assert (inside.rule, inside.why) == (
        "quick",
        "the feature's own model sonnet, then the chain of rule 'quick'",
    )
    outside = for_feature(s, feature(model="opus"))  # outside the chain: alone
    assert (outside.models, outside.rule) == (("opus",), None)
    assert outside.why == "the feature's own model opus overrides rule 'quick'"


def test_without_rules_nothing_new_is_stored(tmp_path: Path) -> None:
    s = settings(tmp_path, 'model = "m"\n')
    assert event_fields(s, for_batch(s, batch())) == {}
    s = settings(tmp_path, RULES)
    assert event_fields(s, for_batch(s, batch()))["routing"] == {
        "rule": "quick",
        "models": ["haiku", "sonnet"],
        "why": "rule 'quick' matched: kind batch, 100 chars <= 200",
    }


Ladder = tuple[BatchPolicy, Climb]


def ladder(s: Settings, chain: tuple[str, ...], critical: bool = False, **kw: Any) -> Ladder:
    s = s.model_copy(update=kw)
    chosen = route([rule("r", chain)], Facts("batch"))
    policy = BatchPolicy(s.on_failure, s.max_retries, critical=critical, routed=True)
    return policy, Climb(chosen.models)


def climb(lad: Ladder, signatures: list[str]) -> list[str | None]:
    """Fail with ``signatures`` one by one; the models the attempts ran on."""
    policy, where = lad
    used: list[str | None] = []
    for n, signature in enumerate(signatures, 1):
        used.append(where.model)
        decision = failed(policy, where, signature, n, where.model)
        if decision.action != "retry":
            break
    return used


def test_a_stuck_batch_climbs_a_rules_chain_one_rung_at_a_time() -> None:
    lad = ladder(Settings(), ("haiku", "sonnet", "opus"), max_retries=9)
    assert climb(lad, ["a"] * 9) == ["haiku", "haiku", "sonnet", "sonnet", "opus", "opus"]


def test_a_batch_on_a_rule_retries_on_its_rung_and_escalates_for_the_last_try() -> None:
    lad = ladder(Settings(), ("haiku", "sonnet"), max_retries=2)
    assert climb(lad, ["a", "b", "c"]) == ["haiku", "haiku", "sonnet"]


def test_a_stuck_batch_says_it_escalates_while_there_is_more_above() -> None:
    policy, where = ladder(Settings(), ("haiku", "sonnet", "opus"), max_retries=9)
    failed(policy, where, "a", 1, "haiku")
    decision = failed(policy, where, "a", 2, "haiku")
    assert decision.reason == "stuck (attempts 1 and 2 failed the same way): escalating to sonnet"
    failed(policy, where, "b", 3, "sonnet")
    decision = failed(policy, where, "b", 4, "sonnet")
    assert decision.reason == "stuck (attempts 3 and 4 failed the same way): one last try with opus"


def test_a_critical_batch_on_a_rule_still_stops_at_its_first_failure() -> None:
    lad = ladder(Settings(), ("haiku", "opus"), critical=True)
    assert climb(lad, ["a", "a"]) == ["haiku"]


def test_the_default_batch_ladder_decides_as_before() -> None:
    s = Settings(model="m", escalate_model="e", max_retries=4)
    lad = BatchPolicy(s.on_failure, s.max_retries), Climb(batch_ladder("m", "e"))
    # stuck on m: one last try on e; a new failure on e goes back to m, as always
    assert climb(lad, ["a", "a", "b", "c", "d"]) == ["m", "m", "e", "m", "e"]
