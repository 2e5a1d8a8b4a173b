"""Unit tests for the backlog's dependency logic (nightcrew.work.backlog_graph)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nightcrew.core.states import ItemState
from nightcrew.work.backlog import Feature
from nightcrew.work.backlog_graph import (
    Conflict,
    analysis_json,
    analyze,
    blocked_by,
    blockers,
    display_state,
    display_states,
    find_cycle,
    ready,
    render_analysis,
    text_files,
    topological_order,
    unblock_counts,
)

S = ItemState


def feat(
    id: int,
    *deps: int,
    state: ItemState = S.PENDING,
    name: str | None = None,
    priority: int | None = None,
    position: int | None = None,
    manual: bool = False,
    files: tuple[str, ...] = (),
    acceptance: tuple[str, ...] = ("true",),
    attempts: int = 0,
) -> Feature:
    """A feature whose priority and position default to its id (backlog order)."""
    return Feature(
        id=id,
        name=name if name is not None else f"feature {id}",
        category="functional",
        description="",
        steps=(),
        acceptance=() if manual else acceptance,
        manual=manual,
        files=files,
        priority=id if priority is None else priority,
        position=id if position is None else position,
        state=state,
        depends_on=deps,
        attempts=attempts,
    )


def index(*features: Feature) -> dict[int, Feature]:
    return {f.id: f for f in features}


def ids(features: Sequence[Feature]) -> list[int]:
    return [f.id for f in features]


def assert_is_cycle(path: Sequence[int], edges: Mapping[int, Sequence[int]]) -> None:
    assert len(path) >= 2
    assert path[0] == path[-1]
    assert len(set(path[:-1])) == len(path) - 1  # no node twice inside the loop
    for node, dep in itertools.pairwise(path):
        assert dep in edges[node], f"{node} does not depend on {dep}"


# -- find_cycle ---------------------------------------------------------------


def test_no_cycle_in_a_diamond() -> None:
    assert find_cycle({1: [], 2: [1], 3: [1], 4: [2, 3]}) is None
    assert find_cycle({}) is None


def test_self_loop_is_a_cycle() -> None:
    assert find_cycle({1: [], 4: [1, 4]}) == [4, 4]


def test_two_cycle() -> None:
    assert find_cycle({1: [2], 2: [1]}) == [1, 2, 1]


def test_long_cycle_path_really_is_a_cycle() -> None:
    # 1 → 2 → … → 40 → 1, reached from a tail 100 → 50 → 1
    edges: dict[int, list[int]] = {n: [n + 1] for n in range(1, 40)}
    edges[40] = [1]
    edges[50] = [1]
    edges[100] = [50]
    path = find_cycle(edges)
    assert path is not None
    assert_is_cycle(path, edges)
    assert len(path) == 41


def test_cycle_found_behind_a_tail_excludes_the_tail() -> None:
    edges = {1: [2], 2: [3], 3: [4], 4: [2]}
    assert find_cycle(edges) == [2, 3, 4, 2]


def test_reports_the_cycle_through_the_smallest_ids() -> None:
    edges = {9: [8], 8: [9], 3: [5], 5: [3]}
    assert find_cycle(edges) == [3, 5, 3]


def test_edges_to_unknown_ids_are_ignored() -> None:
    assert find_cycle({1: [99], 2: [1, 98]}) is None


def test_ten_thousand_long_cycle_needs_no_recursion() -> None:
    n = 10_000
    edges = {i: [i + 1] for i in range(1, n)} | {n: [1]}
    path = find_cycle(edges)
    assert path is not None
    assert len(path) == n + 1
    assert_is_cycle(path, edges)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(0, 12), st.lists(st.integers(0, 14), max_size=4)))
def test_find_cycle_agrees_with_topological_order(edges: dict[int, list[int]]) -> None:
    path = find_cycle(edges)
    features = [feat(node, *deps) for node, deps in edges.items()]
    if path is None:
        order = ids([p.feature for p in topological_order(features)])
        assert sorted(order) == sorted(edges)
        for node, deps in edges.items():
            assert all(order.index(d) < order.index(node) for d in deps if d in edges)
    else:
        assert_is_cycle(path, edges)
        with pytest.raises(ValueError, match="dependency cycle"):
            topological_order(features)


# -- blockers and display_state ----------------------------------------------


def test_skipped_feature_blocks_its_whole_chain_and_names_the_root() -> None:
    by_id = index(feat(1, state=S.SKIPPED), feat(2, 1), feat(3, 2), feat(4, 3), feat(5))
    assert blockers(by_id[2], by_id) == [1]
    assert blockers(by_id[4], by_id) == [1]  # the one a person must act on
    assert [display_state(by_id[n], by_id) for n in range(1, 6)] == [
        "skipped",
        "blocked",
        "blocked",
        "blocked",
        "pending",
    ]


def test_walk_stops_at_the_nearest_culprit() -> None:
    by_id = index(feat(1, state=S.SKIPPED), feat(2, 1, state=S.FAILED), feat(3, 2))
    assert blockers(by_id[3], by_id) == [2]


@pytest.mark.parametrize("state", [S.SKIPPED, S.FAILED, S.NEEDS_INPUT])
def test_stuck_states_block(state: ItemState) -> None:
    by_id = index(feat(1, state=state), feat(2, 1))
    assert blockers(by_id[2], by_id) == [1]
    assert display_state(by_id[2], by_id) == "blocked"


def test_missing_and_manual_dependencies_block() -> None:
    by_id = index(feat(1, manual=True), feat(2, 1), feat(3, 99), feat(4, 3, 2))
    assert blockers(by_id[2], by_id) == [1]
    assert blockers(by_id[3], by_id) == [99]
    assert blockers(by_id[4], by_id) == [1, 99]


def test_passed_manual_and_in_progress_dependencies_do_not_block() -> None:
    by_id = index(
        feat(1, manual=True, state=S.PASSED),
        feat(2, state=S.IN_PROGRESS),
        feat(3, 1, 2),
        feat(4, 3),
    )
    assert blockers(by_id[4], by_id) == []
    assert display_state(by_id[4], by_id) == "pending"
    assert ready(list(by_id.values())) == []  # #3 waits for #2, #4 waits for #3


def test_a_passed_dependency_shields_what_is_behind_it() -> None:
    by_id = index(feat(1, state=S.SKIPPED), feat(2, 1, state=S.PASSED), feat(3, 2))
    assert blockers(by_id[3], by_id) == []


def test_only_pending_features_show_as_blocked() -> None:
    by_id = index(feat(1, state=S.SKIPPED), feat(2, 1, state=S.FAILED))
    assert blockers(by_id[2], by_id) == [1]
    assert display_state(by_id[2], by_id) == "failed"


def test_bulk_answers_match_one_feature_at_a_time() -> None:
    features = [
        feat(1, state=S.SKIPPED),
        feat(2, 1),
        feat(3, 2),
        feat(4, manual=True),
        feat(5, 3, 4, 99),
        feat(6, 5, state=S.FAILED),
        feat(7, state=S.PASSED),
        feat(8, 7),
        feat(9, 8),
    ]
    by_id = index(*features)
    assert display_states(features) == {f.id: display_state(f, by_id) for f in features}
    assert blocked_by(features) == {2: [1], 3: [1], 5: [1, 4, 99]}
    assert all(blocked_by(features)[f] == blockers(by_id[f], by_id) for f in (2, 3, 5))


def test_blockers_terminate_on_a_cycle() -> None:
    by_id = index(feat(1, 2), feat(2, 1, 3), feat(3, state=S.SKIPPED))
    assert blockers(by_id[1], by_id) == [3]


# -- unblock_counts and ready -------------------------------------------------


def test_diamond_is_counted_once() -> None:
    #   1 ← 2 ← 4
    #   1 ← 3 ← 4
    counts = unblock_counts([feat(1), feat(2, 1), feat(3, 1), feat(4, 2, 3)])
    assert counts == {1: 3, 2: 1, 3: 1, 4: 0}


def test_passed_dependents_are_not_counted() -> None:
    counts = unblock_counts([feat(1), feat(2, 1, state=S.PASSED), feat(3, 2)])
    assert counts[1] == 1


def test_feature_that_unblocks_most_beats_higher_priority() -> None:
    features = [
        feat(1, priority=1),  # urgent, frees nothing
        feat(2, priority=50),  # three features wait on it
        feat(3, 2),
        feat(4, 2),
        feat(5, 4),
    ]
    assert ids(ready(features)) == [2, 1]


def test_ready_ties_break_by_priority_then_position_then_id() -> None:
    features = [
        feat(1, priority=5, position=1),
        feat(2, priority=3, position=9),
        feat(3, priority=5, position=0),
        feat(4, priority=5, position=0),
    ]
    assert ids(ready(features)) == [2, 3, 4, 1]


def test_ready_needs_pending_automated_features_with_passed_dependencies() -> None:
    features = [
        feat(1, state=S.PASSED),
        feat(2, 1),  # ready
        feat(3, 2),  # waits for #2
        feat(4, manual=True),
        feat(5, state=S.IN_PROGRESS),
        feat(6, state=S.FAILED),
        feat(7, 99),  # depends on a feature that does not exist
        feat(8, 1, 1),  # duplicate dependency
    ]
    assert ids(ready(features)) == [2, 8]


# -- topological_order --------------------------------------------------------


def test_order_puts_dependencies_first_with_reasons() -> None:
    features = [feat(7, 3, 5), feat(5, 3), feat(3), feat(9, 42)]
    placed = topological_order(features)
    assert ids([p.feature for p in placed]) == [3, 5, 7, 9]
    reasons = {p.feature.id: p.reasons for p in placed}
    assert reasons[3] == ()
    assert reasons[7] == ("#7 after #3: depends on it", "#7 after #5: depends on it")
    assert reasons[9] == ("#9 needs #42: not in the backlog",)


def test_order_breaks_ties_like_ready() -> None:
    features = [
        feat(1, priority=1),
        feat(2, priority=9),
        feat(3, 2),
        feat(4, 2),
        feat(5, priority=1, position=0),
    ]
    order = ids([p.feature for p in topological_order(features)])
    # #2 frees two features; then priority 1 by position (#5 before #1); then the freed ones
    assert order == [2, 5, 1, 3, 4]


def test_order_names_the_cycle() -> None:
    features = [feat(1), feat(3, 1, 5), feat(5, 3), feat(6, 5)]
    with pytest.raises(ValueError) as info:
        topological_order(features)
    assert str(info.value) == "dependency cycle: #3 → #5 → #3"


# -- analyze ------------------------------------------------------------------


def test_conflict_from_file_hints_after_normalising() -> None:
    features = [
        feat(1, files=("./src/App.py", "README.md")),
        feat(2, files=("src/app.py",)),
        feat(3, files=("src/other.py",)),
    ]
    assert analyze(features).conflicts == (Conflict(1, 2, files=("./src/App.py",)),)


def test_names_sharing_words_are_no_conflict() -> None:
    features = [
        feat(1, name="Login form validation"),
        feat(2, name="Signup form validation errors"),
        feat(3, name="Index item list", files=("src/list.py",)),
        feat(4, name="Index item detail", files=("src/detail.py",)),
    ]
    assert analyze(features).conflicts == ()


def test_conflict_from_files_lines_in_the_text_and_files_attempts_touched() -> None:
    features = [
        dataclasses.replace(feat(1), description="Adds login.\nFiles: `src/auth.py`, tests/a.py"),
        feat(2, files=("./src/Auth.py",)),
        feat(3),  # named nothing, but its failed attempt changed tests/a.py
        feat(4),
    ]
    touched = {3: ["tests/a.py", "README.md"], 4: ["docs/x.md"]}
    assert analyze(features, touched).conflicts == (
        Conflict(1, 2, files=("src/auth.py",)),
        Conflict(1, 3, files=("tests/a.py",)),
    )
    text = "* **Files:** a.py b.py\nfiles: c.py; `d.py`\nThe files: are many"
    assert text_files(text) == ["a.py", "b.py", "c.py", "d.py"]


def test_no_conflict_when_dependencies_order_the_pair() -> None:
    shared = ("src/db.py",)
    features = [
        feat(1, files=shared),
        feat(2, 1),
        feat(3, 2, files=shared),  # after #1 through #2
        feat(4, files=shared, state=S.PASSED),  # finished: nothing left to collide with
    ]
    assert analyze(features).conflicts == ()


def test_independent_features() -> None:
    features = [
        feat(1, state=S.PASSED),
        feat(2, 1),  # nothing depends on it; its dependency passed
        feat(3),  # #4 depends on it
        feat(4, 3),  # waits for #3, unfinished: never independent
        feat(5, state=S.IN_PROGRESS),
        feat(6, 5),  # waits for #5, in progress
        feat(7, manual=True),
        feat(8, 7),  # blocked by a manual feature
        feat(9, state=S.FAILED),
        feat(10),
    ]
    assert ids(analyze(features).independent) == [2, 10]


def test_blocked_section_lists_pending_features_with_their_blockers() -> None:
    features = [feat(1, state=S.SKIPPED), feat(2, 1), feat(3, 2, 99), feat(4, 1, state=S.FAILED)]
    blocked = analyze(features).blocked
    assert [(b.feature.id, b.blockers) for b in blocked] == [(2, (1,)), (3, (1, 99))]


def test_analyze_refuses_a_cycle() -> None:
    with pytest.raises(ValueError, match="#1 → #2 → #1"):
        analyze([feat(1, 2), feat(2, 1)])


SMALL = [
    feat(1, name="Database schema", state=S.PASSED),
    feat(2, 1, name="Login form validation", files=("src/forms.py",)),
    feat(3, 1, name="Signup form validation", files=("src/forms.py", "src/signup.py")),
    feat(4, 2, 3, name="Account settings"),
    feat(5, name="Export report", state=S.SKIPPED),
    feat(6, 5, 77, name="Email report"),
]


def test_render_analysis() -> None:
    assert render_analysis(analyze(SMALL)) == (
        "Order\n"
        "  #1 Database schema [passed]\n"
        "  #2 Login form validation — after #1 (depends on it)\n"
        "  #3 Signup form validation — after #1 (depends on it)\n"
        "  #5 Export report [skipped]\n"  # frees #6: before #4, which frees nothing
        "  #4 Account settings — after #2, #3 (depends on them)\n"
        "  #6 Email report [blocked] — after #5 (depends on it); needs #77 (not in the backlog)\n"
        "\n"
        "May conflict\n"
        "  #2 Login form validation and #3 Signup form validation: both touch src/forms.py\n"
        "\n"
        "Independent\n"
        "  (none)\n"
        "\n"
        "Blocked\n"
        "  #6 Email report — blocked by #5 Export report (skipped), #77 (not in the backlog)\n"
    )


def test_analysis_json_uses_ids_and_round_trips() -> None:
    data = analysis_json(analyze(SMALL))
    assert json.loads(json.dumps(data)) == data
    order = data["order"]
    assert isinstance(order, list)
    assert [entry["id"] for entry in order] == [1, 2, 3, 5, 4, 6]
    assert order[4] == {
        "id": 4,
        "name": "Account settings",
        "state": "pending",
        "after": [2, 3],
        "reasons": ["#4 after #2: depends on it", "#4 after #3: depends on it"],
    }
    assert data["conflicts"] == [{"features": [2, 3], "files": ["src/forms.py"]}]
    assert data["independent"] == []
    assert data["blocked"] == [{"id": 6, "blockers": [5, 77]}]


# -- scale --------------------------------------------------------------------


def test_five_thousand_feature_chain() -> None:
    n = 5_000
    features = [feat(1, state=S.PASSED)] + [feat(i, i - 1) for i in range(2, n + 1)]
    assert ids(ready(features)) == [2]
    counts = unblock_counts(features)
    assert counts[1] == n - 1
    assert counts[2] == n - 2
    assert ids([p.feature for p in topological_order(features)]) == list(range(1, n + 1))
    assert blockers(features[-1], index(*features)) == []


def test_five_thousand_feature_graph() -> None:
    rng = random.Random(7)
    n = 5_000
    features = [feat(i, *rng.sample(range(1, i), min(i - 1, 3))) for i in range(1, n + 1)]
    order = ids([p.feature for p in topological_order(features)])
    position = {node: k for k, node in enumerate(order)}
    assert all(position[d] < position[f.id] for f in features for d in f.depends_on)
    counts = unblock_counts(features)
    assert counts[n] == 0
    assert counts[1] > 0
    assert ids(ready(features)) == [1]
    analysis = analyze(features)
    assert len(analysis.order) == n
