"""The console line of a failed gate names what failed."""

from __future__ import annotations

from pathlib import Path

from nightcrew.engine.digest import describe_failure
from nightcrew.engine.gate_lines import gate_reason
from nightcrew.engine.gates import GateResult


def failed_gate(digest: str) -> GateResult:
    return GateResult(
        name="tests",
        command="python -m pytest -q",
        passed=False,
        duration_s=1.0,
        exit_code=1,
        timed_out=False,
        tests=None,
        tests_passed=3,
        tests_failed=5,
        regressions=(),
        output_path=None,
        digest=digest,
        signature="sig",
    )


def test_the_line_names_up_to_three_failing_tests_and_how_many_more() -> None:
    ids = [f"tests/test_calc.py::test_{n}" for n in "abcde"]
    digest = describe_failure(new_failures=ids, output_path=Path("attempt-1/tests.log"))
    assert gate_reason(failed_gate(digest)) == (
        " — failing tests: tests/test_calc.py::test_a, tests/test_calc.py::test_b,"
        " tests/test_calc.py::test_c (+2 more)"
    )


def test_more_than_the_digest_lists_are_counted() -> None:
    ids = [f"t::test_{n:02d}" for n in range(20)]  # the digest lists 15 and "… and 5 more"
    assert gate_reason(failed_gate(describe_failure(new_failures=ids))) == (
        " — failing tests: t::test_00, t::test_01, t::test_02 (+17 more)"
    )


def test_regressions_come_first_with_their_notes() -> None:
    digest = describe_failure(
        regressions=["t::test_old"], regression_notes={"t::test_old": "now failing"}
    )
    assert gate_reason(failed_gate(digest)) == (
        " — REGRESSIONS (passed before this batch, not passing now): t::test_old (now failing)"
    )


def test_a_problem_line_is_shown_as_it_is() -> None:
    assert gate_reason(failed_gate("exited with code 2\nfull output: x.log")) == (
        " — exited with code 2"
    )
