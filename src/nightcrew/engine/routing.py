"""Model routing: which model chain an item of work climbs, from the
``[[routing]]`` rules of the config.

A rule matches an item when every condition it gives holds (the kind of work,
a feature's category or labels, a CRITICAL batch, the item's size in
characters of text and files named); the first rule that matches gives the
chain, weakest first. No rule matching leaves today's ladder: ``--model`` and
``--escalate-model`` for a batch, ``--model`` and ``--escalation`` for a
feature. Those options on the command line, and a feature's own model
(``backlog retry --model``), override the rules. Everything here is a pure
function of the settings and the item; ``batch`` and ``feature`` ask it for
the ladder, and ``why`` says in plain words how it was chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nightcrew.config import Settings
from nightcrew.config_routing import RoutingRule
from nightcrew.core.events import ItemRouted
from nightcrew.engine.policy import model_ladder
from nightcrew.engine.report import Reporter
from nightcrew.work.backlog import Feature
from nightcrew.work.plan import Batch

DEFAULT = "default"


@dataclass(frozen=True)
class Facts:
    """What the rules can ask about an item of work."""

    kind: str  # init, batch, feature, conflict, summary
    chars: int = 0  # characters of its text
    files: int = 0  # files it names
    critical: bool = False  # a plan batch marked CRITICAL
    category: str | None = None  # a feature's
    labels: tuple[str, ...] = ()  # a feature's (none yet: features have no labels)


@dataclass(frozen=True)
class Route:
    """The chain an item climbs, the rule that chose it (None: the default)
    and why, in plain words."""

    models: tuple[str | None, ...]
    rule: str | None
    why: str

    def named(self) -> str:
        """``haiku → sonnet``; the agent's default model when none is named."""
        return " → ".join(m or "the agent's default" for m in self.models)

    def to_json(self) -> dict[str, object]:
        return {"rule": self.rule, "models": list(self.models), "why": self.why}


def batch_facts(batch: Batch) -> Facts:
    named = {*batch.files_create, *batch.files_modify, *batch.files_test}
    return Facts("batch", chars=len(batch.body), files=len(named), critical=batch.critical)


def feature_text(feature: Feature) -> str:
    """The text a feature's size is measured on: its name, description and steps."""
    return "\n".join([feature.name, feature.description, *feature.steps])


def feature_facts(feature: Feature) -> Facts:
    return Facts(
        "feature",
        chars=len(feature_text(feature)),
        files=len(set(feature.files)),
        category=feature.category,
    )


def _size(value: int, unit: str, low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low} <= {value} {unit} <= {high}"
    if low is not None:
        return f"{value} {unit} >= {low}"
    return f"{value} {unit} <= {high}"


def matches(rule: RoutingRule, facts: Facts) -> list[str] | None:
    """The conditions of ``rule`` that ``facts`` meet, in words, or None when
    one does not hold."""
    said: list[str] = []
    if rule.kind:
        if facts.kind not in rule.kind:
            return None
        said.append(f"kind {facts.kind}")
    if rule.category:
        if facts.category not in rule.category:
            return None
        said.append(f"category {facts.category}")
    if rule.labels:
        shared = [label for label in facts.labels if label in rule.labels]
        if not shared:
            return None
        said.append(f"label {shared[0]}")
    if rule.critical is not None:
        if facts.critical != rule.critical:
            return None
        said.append("CRITICAL" if facts.critical else "not CRITICAL")
    for value, unit, low, high in (
        (facts.chars, "chars", rule.min_chars, rule.max_chars),
        (facts.files, "files named", rule.min_files, rule.max_files),
    ):
        if low is None and high is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            return None
        said.append(_size(value, unit, low, high))
    return said


def route(
    rules: Sequence[RoutingRule], facts: Facts, default: tuple[str | None, ...] = (None,)
) -> Route:
    """The first rule that matches ``facts`` gives the chain; none: ``default``."""
    for rule in rules:
        said = matches(rule, facts)
        if said is not None:
            conditions = ", ".join(said) or "no conditions"
            return Route(rule.models, rule.name, f"rule '{rule.name}' matched: {conditions}")
    return Route(default, None, "default: no rule matched" if rules else DEFAULT)


def _given(settings: Settings, options: dict[str, str]) -> str | None:
    """``--model on the command line overrides the rules`` when one of
    ``options`` (setting: option) was given there and there are rules."""
    named = [option for key, option in options.items() if key in settings.command_line]
    if not named or not settings.routing:
        return None
    verb = "overrides" if len(named) == 1 else "override"
    return f"default: {' and '.join(named)} on the command line {verb} the rules"


def for_batch(settings: Settings, batch: Batch) -> Route:
    default = (settings.model,) + ((settings.escalate_model,) if settings.escalate_model else ())
    given = _given(settings, {"model": "--model", "escalate_model": "--escalate-model"})
    if given is not None:
        return Route(default, None, given)
    return route(settings.routing, batch_facts(batch), default)


def for_feature(settings: Settings, feature: Feature) -> Route:
    default = model_ladder(settings.escalation, settings.model, feature.model)
    given = _given(settings, {"model": "--model", "escalation": "--escalation"})
    if given is not None:
        return Route(default, None, given)
    chosen = route(settings.routing, feature_facts(feature), default)
    if feature.model is None or chosen.rule is None:
        return chosen
    if feature.model in chosen.models:  # it climbs the rule's chain from there
        ladder = model_ladder([m for m in chosen.models if m], None, feature.model)
        why = f"the feature's own model {feature.model}, then the chain of rule '{chosen.rule}'"
        return Route(ladder, chosen.rule, why)
    why = f"the feature's own model {feature.model} overrides rule '{chosen.rule}'"
    return Route((feature.model,), None, why)


def for_init(settings: Settings, spec_chars: int) -> Route:
    given = _given(settings, {"model": "--model"})
    if given is not None:
        return Route((settings.model,), None, given)
    return route(settings.routing, Facts("init", chars=spec_chars), (settings.model,))


def event_fields(settings: Settings, chosen: Route) -> dict[str, object]:
    """What a stored event says of the routing: nothing without rules, so the
    events of a project without rules stay as they were."""
    return {"routing": chosen.to_json()} if settings.routing else {}


def record(reporter: Reporter, run_id: str, item: str, settings: Settings, chosen: Route) -> None:
    """A ``routing`` event as an item starts (``batch 2``, ``feature #3``): the
    chain, the rule and why, for ``status`` and the logs. None without rules."""
    if settings.routing:
        reporter.emit(
            ItemRouted(
                run_id=run_id, item=item, rule=chosen.rule, models=chosen.models, why=chosen.why
            )
        )
