"""The backlog in the project store: creating with dependencies, the checks on
what is created, state changes, claims, and many processes writing at once."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.core.errors import BadInput
from nightcrew.core.states import ItemState
from nightcrew.store.backlog import Backlog, UnknownFeature
from nightcrew.store.backlog_create import SpecsRejected
from nightcrew.store.records import Store
from nightcrew.work.backlog import FeatureSpec


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / ".nightcrew" / "nightcrew.db"


@pytest.fixture
def backlog(db_path: Path) -> Iterator[Backlog]:
    store = Store.open(db_path)
    yield Backlog(store)
    store.close()


def spec(name: str, **kw: object) -> FeatureSpec:
    kw.setdefault("acceptance", ("true",))
    return FeatureSpec(name=name, **kw)  # type: ignore[arg-type]


def test_bulk_create_resolves_dependencies_by_index_and_key(backlog: Backlog) -> None:
    created = backlog.create(
        [
            spec("Database schema", source_key="US-1"),
            spec("Login form", depends_on_indices=(0,)),
            spec("Profile page", depends_on_keys=("US-1",), depends_on_indices=(1,)),
        ],
        source="test",
    )
    a, b, c = created.ids
    assert created.rejected == ()
    assert backlog.feature(c or 0).depends_on == (a, b)
    assert [f.name for f in backlog.features()] == ["Database schema", "Login form", "Profile page"]
    # a later batch may name stored features by id or by key
    later = backlog.create(
        [spec("Settings", depends_on=(b or 0,), depends_on_keys=("US-1",))], source="t"
    )
    assert backlog.feature(later.created[0]).depends_on == (a, b)


def test_a_key_may_name_a_later_feature_of_the_same_batch(backlog: Backlog) -> None:
    # An export lists a skipped feature last, after what depends on it.
    created = backlog.create(
        [spec("Profile page", depends_on_keys=("7",)), spec("Sign up", source_key="7")],
        source="import",
        all_or_nothing=True,
    )
    first, second = created.ids
    assert backlog.feature(first or 0).depends_on == (second,)


def test_what_cannot_be_created_is_rejected_with_its_reason(backlog: Backlog) -> None:
    created = backlog.create(
        [
            spec("Fine"),
            FeatureSpec(name="No command"),  # neither acceptance nor manual
            spec("Forward", depends_on_indices=(3,)),
            spec("On a rejected one", depends_on_indices=(1,)),
            spec("Unknown id", depends_on=(99,)),
            spec("Manual is fine", acceptance=(), manual=True),
            spec("   "),
        ],
        source="test",
    )
    assert [i is not None for i in created.ids] == [True, False, False, False, False, True, False]
    reasons = {r.index: r.reason for r in created.rejected}
    assert "no acceptance command" in reasons[1]
    assert "only earlier features" in reasons[2]
    assert "index 1, which was rejected" in reasons[3]
    assert "#99, which is not in the backlog" in reasons[4]
    assert "needs a name" in reasons[6]
    assert len(backlog.features()) == 2


def test_a_cycle_through_keys_rejects_one_feature_and_says_which(backlog: Backlog) -> None:
    created = backlog.create(
        [
            spec("A", source_key="a", depends_on_keys=("c",)),
            spec("B", source_key="b", depends_on_keys=("a",)),
            spec("C", source_key="c", depends_on_keys=("b",)),
            spec("D", depends_on_keys=("c",)),
            spec("E"),
        ],
        source="test",
    )
    [rejection] = [r for r in created.rejected if "cycle" in r.reason]
    assert rejection.name == "C" and "index 0 → index 2 → index 1 → index 0" in rejection.reason
    # the others of the cycle, and D, depended on C (directly or not): they go too
    others = {r.name: r.reason for r in created.rejected if r is not rejection}
    assert others == {
        "A": "depends on index 2, which was rejected",
        "B": "depends on index 0, which was rejected",
        "D": "depends on index 2, which was rejected",
    }
    assert [f.name for f in backlog.features()] == ["E"]


def test_set_dependencies_refuses_cycles_self_and_unknown_ids(backlog: Backlog) -> None:
    a, b, c = backlog.create([spec("A"), spec("B"), spec("C")], source="t").created
    backlog.set_dependencies(b, [a])
    backlog.set_dependencies(c, [b])
    with pytest.raises(BadInput, match=f"cycle: #{a} → #{c} → #{b} → #{a}|cycle: #"):
        backlog.set_dependencies(a, [c])
    with pytest.raises(BadInput, match="itself"):
        backlog.set_dependencies(a, [a])
    with pytest.raises(UnknownFeature, match="#42"):
        backlog.set_dependencies(a, [42])
    assert backlog.feature(a).depends_on == ()  # nothing changed by the refusals
    assert backlog.set_dependencies(c, [a], add=True).depends_on == (a, b)


def test_claim_takes_only_ready_features_in_schedule_order(backlog: Backlog) -> None:
    base, leaf, mid = backlog.create(
        [spec("Base"), spec("Leaf", priority=-5), spec("Mid", depends_on_indices=(0,))],
        source="t",
    ).created
    # Base unblocks Mid, so it goes first although Leaf has the better priority
    first = backlog.claim(None, by="run-1")
    assert first is not None and first.id == base and first.state == ItemState.IN_PROGRESS
    assert backlog.claim(mid, by="run-1") is None  # its dependency has not passed
    second = backlog.claim(None, by="run-1")
    assert second is not None and second.id == leaf
    assert backlog.claim(None, by="run-1") is None
    backlog.release(base, ItemState.PASSED, by="run-1", reason="gates passed")
    assert backlog.ready()[0].id == mid
    with pytest.raises(BadInput, match="not in progress for run-2"):
        backlog.release(leaf, ItemState.PASSED, by="run-2", reason="x")


def test_skip_retry_reorder_and_answer(backlog: Backlog) -> None:
    a, b, c = backlog.create([spec("A"), spec("B"), spec("C")], source="t").created
    [skipped] = backlog.skip([a], reason="by hand")
    assert skipped.state == ItemState.SKIPPED
    assert [f.id for f in backlog.features()] == [b, c, a]  # moved behind the others
    assert backlog.skip([a], reason="again") == []  # already skipped: nothing changes
    [again] = backlog.retry([a], model="claude-opus-4-5", reason="retry with Opus")
    assert (again.state, again.model) == (ItemState.PENDING, "claude-opus-4-5")
    moved = backlog.reorder(a, before=b)
    assert [f.id for f in backlog.features()] == [a, b, c]
    assert moved.priority == backlog.feature(b).priority
    backlog.reorder(a, after=c)  # the only way to the last place
    assert [f.id for f in backlog.features()] == [b, c, a]
    backlog.reorder(a, after=b)
    assert [f.id for f in backlog.features()] == [b, a, c]
    with pytest.raises(BadInput, match="cannot go after itself"):
        backlog.reorder(a, after=a)
    with pytest.raises(BadInput, match="before or after"):
        backlog.reorder(a)
    backlog.reorder(a, before=b)
    claimed = backlog.claim(c, by="run-1")
    assert claimed is not None
    with pytest.raises(BadInput, match="only a feature in progress"):
        backlog.request_input(a, "which colour?")
    waiting = backlog.request_input(c, "Which OAuth provider?")
    assert (waiting.state, waiting.input_request) == (
        ItemState.NEEDS_INPUT,
        "Which OAuth provider?",
    )
    answered = backlog.answer(c, "GitHub")
    assert (answered.state, answered.input_answer) == (ItemState.PENDING, "GitHub")
    with pytest.raises(BadInput, match="asked nothing"):
        backlog.answer(c, "again")


def test_a_passed_feature_cannot_be_skipped_and_unknown_ids_are_named(backlog: Backlog) -> None:
    [a] = backlog.create([spec("A", manual=True, acceptance=(), passes=True)], source="t").created
    assert backlog.feature(a).state == ItemState.PENDING  # a file's word is a claim
    assert backlog.pass_by_person(a, note="checked").state == ItemState.PASSED
    with pytest.raises(BadInput, match="has passed"):
        backlog.skip([a], reason="x")
    with pytest.raises(UnknownFeature, match="#7, #8"):
        backlog.skip([a, 7, 8], reason="x")


def test_an_imported_passing_claim_is_recorded_not_believed(backlog: Backlog) -> None:
    [a] = backlog.create([spec("A", passes=True)], source="import").created
    assert backlog.feature(a).state == ItemState.PENDING
    [claim] = backlog.open_claims(a)
    assert claim["source"] == "import"
    assert backlog.judge_claims(a, confirmed=False) == 1
    assert backlog.open_claims(a) == []


def test_edit_checks_the_result(backlog: Backlog) -> None:
    [a] = backlog.create([spec("A")], source="t").created
    edited = backlog.edit(a, acceptance=("pytest -q tests/test_a.py",), priority=3)
    assert (edited.acceptance, edited.priority) == (("pytest -q tests/test_a.py",), 3)
    with pytest.raises(BadInput, match="no acceptance command"):
        backlog.edit(a, acceptance=())
    assert backlog.edit(a, acceptance=(), manual=True).manual


def test_all_or_nothing_creates_nothing_when_one_spec_is_refused(backlog: Backlog) -> None:
    with pytest.raises(SpecsRejected, match=r"feature 2 \(No command\).*1 of 2 rejected"):
        backlog.create([spec("Fine"), FeatureSpec(name="No command")], source="t",
                       all_or_nothing=True)  # fmt: skip
    assert backlog.features() == []


def test_attempts_and_failure_records_outlive_the_process(db_path: Path) -> None:
    store = Store.open(db_path)
    backlog = Backlog(store)
    [a] = backlog.create([spec("A")], source="t").created
    backlog.count_attempt(a)
    assert backlog.count_attempt(a) == 2
    backlog.record_failure(
        a, run_id="run-1", reason="stuck on haiku, sonnet and opus",
        attempts=[{"number": 1, "model": "haiku", "state": "failed", "digest": "1 failed"}],
        cost_usd="0.42", last_text="I could not make the test pass",
    )  # fmt: skip
    store.close()
    store = Store.open(db_path)  # a restart: counts and history are in the store
    try:
        backlog = Backlog(store)
        assert backlog.feature(a).attempts == 2
        [failure] = backlog.failures()
        assert (failure["feature_id"], failure["name"], failure["cost_usd"]) == (a, "A", 0.42)
        assert failure["attempts"][0]["model"] == "haiku"
    finally:
        store.close()


def test_release_all_puts_back_only_what_dead_runs_held(backlog: Backlog) -> None:
    a, b, c = backlog.create([spec("A"), spec("B"), spec("C")], source="t").created
    backlog.claim(a, by="dead-run")
    backlog.claim(b, by="live-run")
    backlog.claim(c, by="dead-run")
    released = backlog.release_all(["dead-run"], reason="its run crashed")
    assert sorted(f.id for f in released) == [a, c]
    states = {f.id: (f.state, f.claimed_by) for f in backlog.features()}
    assert states[a] == (ItemState.PENDING, None)
    assert states[b] == (ItemState.IN_PROGRESS, "live-run")


# ---- many processes at once --------------------------------------------------------------


def _hammer(db_path: str, worker: int, rounds: int, out: multiprocessing.Queue[object]) -> None:
    store = Store.open(Path(db_path))
    backlog = Backlog(store)
    claimed: list[int] = []
    try:
        for n in range(rounds):
            backlog.create(
                [spec(f"w{worker}-{n}-a"), spec(f"w{worker}-{n}-b", depends_on_indices=(0,))],
                source=f"worker {worker}",
            )
            feature = backlog.claim(None, by=f"w{worker}")
            if feature is not None:
                claimed.append(feature.id)
                backlog.claim_passing(feature.id, source="agent", note=f"w{worker}")
                backlog.release(feature.id, ItemState.PASSED, by=f"w{worker}", reason="ok")
        out.put(claimed)
    except Exception as exc:  # reported to the test, which fails with it
        out.put(f"{type(exc).__name__}: {exc}")
    finally:
        store.close()


def test_several_processes_hammering_one_backlog_lose_nothing(db_path: Path) -> None:
    Store.open(db_path).close()  # the schema exists before the race
    workers, rounds = 6, 15
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[object] = context.Queue()
    procs = [
        context.Process(target=_hammer, args=(str(db_path), w, rounds, out)) for w in range(workers)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r for r in results if isinstance(r, str)]
    assert errors == []  # no "database is locked", no guarded update lost
    claimed = [fid for r in results if isinstance(r, list) for fid in r]
    assert len(claimed) == len(set(claimed)) == workers * rounds  # each claimed once
    store = Store.open(db_path)
    try:
        backlog = Backlog(store)
        features = backlog.features()
        assert len(features) == 2 * workers * rounds
        assert len({f.position for f in features}) == len(features)  # no position reused
        passed = {f.id for f in features if f.state == ItemState.PASSED}
        assert passed == set(claimed)
        claims = store.db.execute("SELECT count(*) FROM feature_claims").fetchone()[0]
        assert claims == len(claimed)
    finally:
        store.close()
