"""What happens after a failed attempt: retry (with the digest, escalating the
model for the last try), skip, or stop; and when retrying is pointless because
the same failure came back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from nightcrew.engine.prompt import PreviousFailure

# skip: a plan batch is left failed and the run goes on (--on-failure skip);
# give_up: a feature is skipped, its changes kept as a patch.
Action = Literal["retry", "skip", "give_up", "stop"]


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    model: str | None = None  # the model for the retry
    stuck: bool = False


def after_failure(
    *,
    on_failure: Literal["stop", "skip", "retry"],
    max_retries: int,
    attempts_made: int,
    signatures: Sequence[str | None],
    model: str | None,
    escalate_model: str | None,
    current_model: str | None = None,
    critical: bool = False,
    numbers: Sequence[int] = (),
) -> Decision:
    """``attempts_made`` counts this batch's attempts in this policy window;
    ``signatures`` are their failure signatures, oldest first; ``model`` is the
    run's model and ``current_model`` the one the failed attempt used.

    A batch is stuck when two attempts in a row fail the same way: retrying
    the same model again is pointless, so it gets one last try with the
    escalation model (when there is one and it was not used yet), then stops.

    A CRITICAL batch fails as with ``--on-failure stop``, whatever the run's
    policy. ``numbers`` are the stored numbers of the attempts, as the log and
    ``status`` show them (they go on counting after a resume).
    """
    if critical:
        return Decision("stop", "the batch is CRITICAL: a failure stops the run")
    if on_failure == "stop":
        return Decision("stop", "the batch failed and --on-failure is stop")
    if on_failure == "skip":
        return Decision("skip", "the batch failed and --on-failure is skip")
    if len(signatures) >= 2 and signatures[-1] is not None and signatures[-1] == signatures[-2]:
        first, last = numbers[-2:] if len(numbers) >= 2 else (attempts_made - 1, attempts_made)
        same = f"attempts {first} and {last} failed the same way"
        if escalate_model and current_model != escalate_model:
            return Decision(
                "retry",
                f"stuck ({same}): one last try with {escalate_model}",
                model=escalate_model,
                stuck=True,
            )
        return Decision("stop", f"stuck: {same}", stuck=True)
    if attempts_made > max_retries:
        return Decision("stop", f"still failing after {attempts_made} attempts")
    is_last = attempts_made + 1 == max_retries + 1
    next_model = escalate_model if (is_last and escalate_model) else model
    return Decision("retry", f"retry {attempts_made} of {max_retries}", model=next_model)


# ---- backlog features ----------------------------------------------------------------


def model_ladder(
    escalation: Sequence[str], model: str | None, override: str | None = None
) -> tuple[str | None, ...]:
    """The models a feature climbs, weakest first.

    ``escalation`` is the chain (``haiku,sonnet,opus``), ``model`` the build's
    starting model and ``override`` the feature's own (``backlog retry --model``).
    A start inside the chain climbs from there; a ``--model`` outside it goes
    first, then the chain; an override outside it is used alone (climbing from
    Opus to a chain's Haiku would be a step down).
    """
    chain = tuple(dict.fromkeys(escalation))
    start = override or model
    if start is None:
        return chain or (None,)
    if start in chain:
        return chain[chain.index(start) :]
    if override is not None:
        return (override,)
    return (start, *chain)


def _same_run(signatures: Sequence[str | None], n: int) -> bool:
    tail = signatures[-n:]
    return len(tail) == n and tail[0] is not None and all(s == tail[0] for s in tail)


def after_feature_failure(
    *,
    on_failure: Literal["stop", "skip", "retry"],
    ladder: Sequence[str | None],
    rung: int,
    rung_signatures: Sequence[str | None],
    attempts_made: int,
    max_attempts: int,
    stuck_after: int,
    rung_numbers: Sequence[int] = (),
    used_model: str | None = None,
) -> Decision:
    """What a failed attempt at a feature leads to.

    ``rung`` is the index in ``ladder`` of the model that failed and
    ``rung_signatures`` the failure signatures on that model, oldest first;
    ``attempts_made`` counts the feature's attempts in this window, every model.
    The same signature ``stuck_after`` times in a row on one model means that
    model is stuck: climb to the next; with none left, give up (the build skips
    the feature and records why). Giving up also ends a feature that used
    ``max_attempts``. ``rung_numbers`` are the stored numbers of the attempts
    on this rung (what the log and ``status`` call them) and ``used_model`` the
    model the failed attempt really ran on, for a ladder of the agent's default.
    """
    if on_failure == "stop":
        return Decision("stop", "the feature failed and --on-failure is stop")
    if on_failure == "skip":
        return Decision("give_up", "the feature failed and --on-failure is skip")
    if _same_run(rung_signatures, stuck_after):
        first, last = attempts_made - stuck_after + 1, attempts_made
        if len(rung_numbers) >= stuck_after:
            first, last = rung_numbers[-stuck_after], rung_numbers[-1]
        same = f"attempts {first}–{last} failed the same way"
        if rung + 1 < len(ladder):
            nxt = ladder[rung + 1]
            return Decision("retry", f"stuck ({same}): escalating to {nxt}", model=nxt, stuck=True)
        top = ladder[rung] or used_model
        on = f"on {top}" if top else "on the agent's default model"
        return Decision("give_up", f"stuck ({same}) {on}, the last model of the chain", stuck=True)
    if attempts_made >= max_attempts:
        return Decision(
            "give_up",
            f"still failing after {attempts_made} attempts (--max-attempts-per-feature)",
        )
    return Decision(
        "retry", f"retry {attempts_made + 1} of at most {max_attempts}", model=ladder[rung]
    )


# ---- one policy for every work item --------------------------------------------------


def batch_ladder(model: str | None, escalate_model: str | None) -> tuple[str | None, ...]:
    """A plan batch's two-rung ladder: the run's model, then the escalation model."""
    if escalate_model and escalate_model != model:
        return (model, escalate_model)
    return (model,)


@dataclass
class Climb:
    """Where a work item is on its model ladder: what its failures so far say."""

    ladder: tuple[str | None, ...]
    rung: int = 0
    signatures: list[str | None] = field(default_factory=list)  # every failure, oldest first
    numbers: list[int] = field(default_factory=list)  # their stored attempt numbers
    rung_signatures: list[str | None] = field(default_factory=list)
    rung_numbers: list[int] = field(default_factory=list)  # the stored attempt numbers
    used_model: str | None = None  # the model the last failed attempt ran on
    attempts_made: int = 0
    previous: PreviousFailure | None = None
    verdict: Decision | None = None

    @property
    def model(self) -> str | None:
        return self.ladder[self.rung]


class Policy(Protocol):
    """What a work item's failures lead to: a plan batch's or a feature's rules."""

    def decide(self, climb: Climb) -> Decision: ...


@dataclass(frozen=True)
class BatchPolicy:
    """A plan batch: retries on the run's model, the last one (or a stuck one)
    on the escalation model; stuck after two equal failures in a row."""

    on_failure: Literal["stop", "skip", "retry"]
    max_retries: int
    critical: bool = False
    # A routing rule's chain (``[[routing]]``) is climbed one rung each time the
    # batch is stuck on a model, or for its last retry; without one the ladder
    # is the run's model and the escalation model, decided as it always was.
    routed: bool = False

    def decide(self, climb: Climb) -> Decision:
        if not self.routed:
            return after_failure(
                on_failure=self.on_failure,
                max_retries=self.max_retries,
                attempts_made=climb.attempts_made,
                signatures=climb.signatures,
                model=climb.ladder[0],
                escalate_model=climb.ladder[1] if len(climb.ladder) > 1 else None,
                current_model=climb.model,
                critical=self.critical,
                numbers=climb.numbers,
            )
        chain, rung = climb.ladder, climb.rung
        above = chain[rung + 1] if rung + 1 < len(chain) else None
        decision = after_failure(
            on_failure=self.on_failure,
            max_retries=self.max_retries,
            attempts_made=climb.attempts_made,
            signatures=climb.rung_signatures,
            model=chain[rung],
            escalate_model=above,
            current_model=climb.used_model,
            critical=self.critical,
            numbers=climb.rung_numbers,
        )
        more_above = rung + 2 < len(chain)
        if decision.action == "retry" and decision.stuck and decision.model == above and more_above:
            reason = decision.reason.replace("one last try with", "escalating to")
            decision = Decision("retry", reason, model=above, stuck=True)
        return decision


@dataclass(frozen=True)
class FeaturePolicy:
    """A backlog feature: climbs its chain, ``stuck_after`` equal failures a rung."""

    on_failure: Literal["stop", "skip", "retry"]
    max_attempts: int
    stuck_after: int

    def decide(self, climb: Climb) -> Decision:
        return after_feature_failure(
            on_failure=self.on_failure,
            ladder=climb.ladder,
            rung=climb.rung,
            rung_signatures=climb.rung_signatures,
            attempts_made=climb.attempts_made,
            max_attempts=self.max_attempts,
            stuck_after=self.stuck_after,
            rung_numbers=climb.rung_numbers,
            used_model=climb.used_model,
        )


def failed(
    policy: Policy, climb: Climb, signature: str | None, number: int, used_model: str | None
) -> Decision:
    """Count one failure (attempt ``number``) and decide; a retry on another
    model of the ladder moves to that rung, which starts with no failures."""
    climb.attempts_made += 1
    climb.signatures = [*climb.signatures, signature]
    climb.numbers = [*climb.numbers, number]
    climb.rung_signatures = [*climb.rung_signatures, signature]
    climb.rung_numbers = [*climb.rung_numbers, number]
    climb.used_model = used_model
    decision = policy.decide(climb)
    if decision.action == "retry" and decision.model != climb.model:
        if decision.model in climb.ladder:
            climb.rung = climb.ladder.index(decision.model)
        else:
            climb.rung = min(climb.rung + 1, len(climb.ladder) - 1)
        climb.rung_signatures = []
        climb.rung_numbers = []
    return decision
