"""Grouping (at most one message a minute per kind) and the notifier on the
bus, with an injected clock and a recording sender: nothing sleeps, nothing
goes over a network."""

from __future__ import annotations

import threading
from decimal import Decimal

from nightcrew.config_notify import Target, target
from nightcrew.core import events as ev
from nightcrew.core.events import Event
from nightcrew.notify.grouping import Grouper
from nightcrew.notify.messages import Message
from nightcrew.notify.notifier import Notifier


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stuck(n: int) -> Message:
    return Message("stuck", "nightcrew: feature stuck", f"feature #{n} is stuck", "warning")


def test_the_first_of_a_kind_goes_at_once_and_later_ones_wait_out_the_minute() -> None:
    clock = Clock()
    grouper = Grouper(clock)
    assert grouper.offer(stuck(1)) == [stuck(1)]
    clock.now += 20
    assert grouper.offer(stuck(2)) == []
    clock.now += 20
    assert grouper.offer(stuck(3)) == []
    assert grouper.due() == []
    clock.now += 20  # a minute after the first
    (sent,) = grouper.due()
    assert sent.title == "nightcrew: feature stuck (and 1 more)"
    assert sent.body == "feature #2 is stuck\n\nfeature #3 is stuck"
    assert grouper.due() == []
    clock.now += 30  # half a minute after the group: the next one waits again
    assert grouper.offer(stuck(4)) == []
    clock.now += 30
    assert grouper.offer(Message("budget_warning", "w", "b")) == [
        stuck(4),
        Message("budget_warning", "w", "b"),
    ]


def test_finish_question_and_crash_are_never_held() -> None:
    clock = Clock()
    grouper = Grouper(clock)
    for kind in ("finished", "question", "crashed", "question"):
        message = Message(kind, "t", "b")
        assert grouper.offer(message) == [message]


def test_each_kind_has_its_own_minute_and_the_end_sends_whatever_waits() -> None:
    clock = Clock()
    grouper = Grouper(clock)
    warn = Message("budget_warning", "w", "b")
    assert grouper.offer(stuck(1)) == [stuck(1)]
    assert grouper.offer(warn) == [warn]
    assert grouper.offer(stuck(2)) == []
    assert grouper.offer(warn) == []
    assert grouper.drain() == [stuck(2), warn]
    assert grouper.drain() == []


# ---- the notifier ----------------------------------------------------------------------


class Recorder:
    """A send function: keeps what it was given; fails for the targets told to."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.failing = failing or set()
        self.lock = threading.Lock()

    def __call__(self, where: Target, message: Message) -> str | None:
        with self.lock:
            self.sent.append((where.scheme, message))
        if where.scheme in self.failing:
            raise ConnectionError(f"refused by {where.url}")
        return None

    def titles(self) -> list[str]:
        with self.lock:
            return [m.title for _, m in self.sent]


def notifier(
    send: Recorder, clock: Clock, emitted: list[Event], late: list[ev.NotifyFailed]
) -> Notifier:
    targets = [target("json://127.0.0.1:9/"), target("ntfys://bob:s3cretpass@ntfy.example/t")]
    return Notifier(
        targets,
        project="shop",
        emit=emitted.append,
        late=late.append,
        send=send,
        clock=clock,
        flush_seconds=30,
    )


def given_up(n: int) -> ev.ItemSkipped:
    return ev.ItemSkipped(item=f"feature #{n}", reason="stuck", title=f"F{n}")


def test_the_notifier_groups_flushes_at_the_finish_and_reports_failures_as_events() -> None:
    clock, send = Clock(), Recorder(failing={"ntfys"})
    emitted: list[Event] = []
    late: list[ev.NotifyFailed] = []
    watcher = notifier(send, clock, emitted, late)

    watcher(ev.RunStarted(run_id="r1", work="backlog"))
    watcher(given_up(1))
    clock.now += 10
    watcher(given_up(2))  # held: a minute has not passed
    clock.now += 754
    watcher(ev.RunFinished(run_id="r1", state="succeeded", message="nothing is ready"))

    titles = send.titles()
    assert titles == [
        "nightcrew: feature given up",
        "nightcrew: feature given up",
        "nightcrew: feature given up",  # #2, sent once the run ended
        "nightcrew: feature given up",
        "nightcrew: build finished",
        "nightcrew: build finished",
    ]
    finished = send.sent[-1][1]
    assert "Time: 12m 44s." in finished.body
    failures = [e for e in emitted if isinstance(e, ev.NotifyFailed)]
    assert [(f.scheme, f.notification) for f in failures] == [
        ("ntfys", "stuck"),
        ("ntfys", "stuck"),
        ("ntfys", "finished"),
    ]
    assert failures[0].error == "ConnectionError: refused by ntfys://****"
    assert all("s3cretpass" not in f.error for f in failures)
    watcher.close()
    assert late == []


def test_a_failure_is_reported_the_next_time_the_notifier_is_told_anything() -> None:
    clock, send = Clock(), Recorder(failing={"json"})
    emitted: list[Event] = []
    watcher = notifier(send, clock, emitted, [])
    watcher(
        ev.BudgetWarning(budget="run", name="n", limit_usd=Decimal(1), spent_usd=Decimal("0.8"))
    )
    assert watcher.flush()  # the send happens on the notifier's own thread
    watcher(ev.ItemPassed(item="feature #1"))
    assert [(e.scheme, e.notification) for e in emitted if isinstance(e, ev.NotifyFailed)] == [
        ("json", "budget_warning")
    ]
    watcher.close()


def test_after_the_run_failures_go_to_late_and_a_crash_is_sent() -> None:
    clock, send = Clock(), Recorder(failing={"json"})
    emitted: list[Event] = []
    late: list[ev.NotifyFailed] = []
    watcher = notifier(send, clock, emitted, late)
    watcher(ev.RunStarted(run_id="r1", work="plan"))
    watcher.close()  # the run's frame closes its watchers first
    watcher.crashed(RuntimeError("boom"))
    assert send.titles() == ["nightcrew: run crashed", "nightcrew: run crashed"]
    assert [(f.scheme, f.notification) for f in late] == [("json", "crashed")]
    assert not [e for e in emitted if isinstance(e, ev.NotifyFailed)]


def test_a_target_that_never_answers_holds_the_end_of_the_run_only_for_the_bound() -> None:
    answer = threading.Event()
    started = threading.Event()

    def hangs(where: Target, message: Message) -> str | None:
        started.set()
        answer.wait(60)
        return None

    late: list[ev.NotifyFailed] = []
    watcher = Notifier(
        [target("json://127.0.0.1:9/")],
        project="shop",
        emit=lambda event: None,
        late=late.append,
        send=hangs,
        clock=Clock(),
        flush_seconds=0.05,
    )
    watcher(ev.RunFinished(run_id="r1", state="succeeded", message="done"))
    assert started.wait(30)  # the finish is being sent, and the run's end did not wait for it
    watcher.close()
    watcher.crashed(RuntimeError("after the end"))  # the bound is spent: no wait again
    assert not answer.is_set() and late == []
    answer.set()
