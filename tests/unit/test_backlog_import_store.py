"""Importing by key (unchanged, changed, --update) and removing features in the
backlog store: one transaction each, refused whole, ids never given twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nightcrew.core.errors import BadInput
from nightcrew.core.states import ItemState
from nightcrew.store.backlog import Backlog
from nightcrew.store.backlog_create import SpecsRejected
from nightcrew.store.records import Store
from nightcrew.work.backlog import FeatureSpec


@pytest.fixture
def backlog(tmp_path: Path) -> Iterator[Backlog]:
    store = Store.open(tmp_path / ".nightcrew" / "nightcrew.db")
    yield Backlog(store)
    store.close()


def spec(name: str, key: str, **kw: object) -> FeatureSpec:
    kw.setdefault("acceptance", ("true",))
    return FeatureSpec(name=name, source_key=key, **kw)  # type: ignore[arg-type]


FILE = [
    spec("Schema", "1"),
    spec("Signup", "2", depends_on_keys=("1",)),
    spec("Login", "3", depends_on_keys=("2",)),
]


def test_a_changed_feature_is_updated_only_with_update_and_only_if_not_started(
    backlog: Backlog,
) -> None:
    backlog.import_specs(FILE, source="f")
    backlog.claim(1, by="run-1")
    backlog.count_attempt(1)
    changed = [
        spec("Schema", "1", description="v2"),
        spec("Signup", "2", depends_on_keys=("1",), description="v2"),
        FILE[2],
    ]
    left = backlog.import_specs(changed, source="f")
    assert (left.differing, left.updated, left.unchanged) == ((1, 2), (), (3,))
    assert backlog.feature(2).description == ""
    done = backlog.import_specs(changed, source="f", update=True)
    assert (done.updated, done.started, done.unchanged) == ((2,), (1,), (3,))
    assert [backlog.feature(i).description for i in (1, 2)] == ["", "v2"]
    assert len(backlog.features()) == 3


def test_an_import_refused_by_the_store_updates_nothing_either(backlog: Backlog) -> None:
    backlog.import_specs(FILE, source="f")
    bad = [
        spec("Schema", "1", description="v2"),
        spec("Loop", "9", depends_on_keys=("9",)),  # depends on itself: refused
    ]
    with pytest.raises(SpecsRejected):
        backlog.import_specs(bad, source="f", update=True)
    assert backlog.feature(1).description == ""
    assert len(backlog.features()) == 3


def test_rm_refuses_what_others_depend_on_unless_cascade(backlog: Backlog) -> None:
    backlog.import_specs(FILE, source="f")
    with pytest.raises(BadInput, match=r"#1 is needed by #2: .*--cascade"):
        backlog.remove([1])
    assert len(backlog.features()) == 3
    # removing a dependent and what it depends on together is fine
    assert [f.id for f in backlog.remove([2, 3])] == [2, 3]
    assert [f.id for f in backlog.features()] == [1]
    assert backlog.feature(1).depends_on == ()


def test_rm_cascade_takes_the_dependents_and_refuses_started_ones(backlog: Backlog) -> None:
    backlog.import_specs(FILE, source="f")
    backlog.claim(1, by="run-1")
    backlog.count_attempt(1)
    backlog.release(1, ItemState.PASSED, by="run-1", reason="done")
    backlog.claim(2, by="run-1")
    backlog.count_attempt(2)
    backlog.release(2, ItemState.FAILED, by="run-1", reason="gave up")
    with pytest.raises(BadInput, match=r"#1, #2 have been worked on"):
        backlog.remove([1], cascade=True)
    assert len(backlog.features()) == 3
    assert [f.id for f in backlog.remove([3], cascade=True)] == [3]


def test_rm_cascade_removes_dependents_transitively(backlog: Backlog) -> None:
    backlog.import_specs([*FILE, spec("Other", "4")], source="f")
    assert sorted(f.id for f in backlog.remove([1], cascade=True)) == [1, 2, 3]
    assert [f.name for f in backlog.features()] == ["Other"]


def test_a_removed_features_id_is_never_given_again(backlog: Backlog) -> None:
    backlog.import_specs(FILE, source="f")
    backlog.remove([3])
    again = backlog.create([spec("Logout", "x")], source="t")
    assert again.created == [4]
    # not even to an export asking for it back
    wanted = backlog.create([spec("Login", "y", wanted_id=3)], source="t")
    assert wanted.created == [5]
