"""Digest contents, the size limit, and failure-signature stability."""

from __future__ import annotations

import os
from pathlib import Path

from nightcrew.engine import digest, gates
from nightcrew.engine.digest import (
    MAX_DIGEST_CHARS,
    TRUNCATED,
    error_lines,
    failure_signature,
    make_digest,
    normalise,
    summary_line,
)
from nightcrew.engine.gates import GateResult, GateSpec

PYTEST_OUTPUT = """\
..F.E                                                                    [100%]
==================================== ERRORS ====================================
_________________________ ERROR at setup of test_uses __________________________

    @pytest.fixture
    def broken():
>       raise RuntimeError('fixture broke')
E       RuntimeError: fixture broke

tests/test_calc.py:19: RuntimeError
=================================== FAILURES ===================================
_________________________________ test_wrong ___________________________________

    def test_wrong():
>       assert add(1, 1) == 3
E       assert 2 == 3
E        +  where 2 = add(1, 1)

tests/test_calc.py:7: AssertionError
=========================== short test summary info ============================
FAILED tests/test_calc.py::test_wrong - assert 2 == 3
ERROR tests/test_calc.py::test_uses - RuntimeError: fixture broke
1 failed, 3 passed, 1 error in 0.12s
"""

TRACEBACK_OUTPUT = """\
starting worker
Traceback (most recent call last):
  File "/srv/app/main.py", line 10, in <module>
    main()
  File "/srv/app/main.py", line 6, in main
    load(path)
  File "/srv/app/config.py", line 42, in load
    raise ValueError(f"bad config {path}")
ValueError: bad config /tmp/tmpab12cd/config.toml
"""


def result(
    name: str = "tests",
    *,
    passed: bool = False,
    digest_text: str = "",
    signature: str | None = "sig",
    command: str | None = "pytest -q",
) -> GateResult:
    return GateResult(
        name=name,
        command=command,
        passed=passed,
        duration_s=0.1,
        exit_code=0 if passed else 1,
        timed_out=False,
        tests=None,
        tests_passed=None,
        tests_failed=None,
        regressions=(),
        output_path=None,
        digest=digest_text,
        signature=None if passed else signature,
    )


# ---- extraction -------------------------------------------------------------


def test_error_lines_from_pytest_output() -> None:
    lines = error_lines(PYTEST_OUTPUT)
    assert lines == [
        "E       RuntimeError: fixture broke",
        "tests/test_calc.py:19: RuntimeError",
        "E       assert 2 == 3",
        "E        +  where 2 = add(1, 1)",
        "tests/test_calc.py:7: AssertionError",
        "FAILED tests/test_calc.py::test_wrong - assert 2 == 3",
        "ERROR tests/test_calc.py::test_uses - RuntimeError: fixture broke",
    ]


def test_error_lines_keep_the_last_traceback_frame() -> None:
    assert error_lines(TRACEBACK_OUTPUT) == [
        'File "/srv/app/config.py", line 42, in load',
        "ValueError: bad config /tmp/tmpab12cd/config.toml",
    ]


def test_error_lines_other_tools_dedupe_ansi_and_limit() -> None:
    output = "\n".join(
        [
            "\x1b[31msrc/a.py:3: error: Incompatible types\x1b[0m",
            "src/a.py:3: error: Incompatible types",
            "--- FAIL: TestAdd (0.00s)",
            "panic: runtime error: index out of range [recovered]",
            "make: *** [Makefile:2: test] Error 3",
            "npm error Test failed.",
            "Exception in thread main",
            "all fine here",
            *[f"Error: thing {i}" for i in range(30)],
        ]
    )
    lines = error_lines(output)
    assert lines[:6] == [
        "src/a.py:3: error: Incompatible types",
        "--- FAIL: TestAdd (0.00s)",
        "panic: runtime error: index out of range [recovered]",
        "make: *** [Makefile:2: test] Error 3",
        "npm error Test failed.",
        "Exception in thread main",
    ]
    assert len(lines) == digest.MAX_ERROR_LINES
    assert "all fine here" not in lines


def test_long_lines_are_shortened() -> None:
    (line,) = error_lines("Error: " + "x" * 1000)
    assert len(line) == digest.MAX_LINE_CHARS
    assert line.endswith("…")


def test_summary_lines() -> None:
    assert summary_line(PYTEST_OUTPUT) == "1 failed, 3 passed, 1 error in 0.12s"
    assert summary_line("== 5 passed, 1 skipped in 2.01s ==\n") == "5 passed, 1 skipped in 2.01s"
    assert summary_line("\nno tests ran in 0.01s\n") == "no tests ran in 0.01s"
    jest = "PASS a.test.js\nTests:       1 failed, 4 passed, 5 total\nTime: 1 s\n"
    assert summary_line(jest) == "Tests:       1 failed, 4 passed, 5 total"
    go = "--- FAIL: TestX (0.00s)\nFAIL\nFAIL\texample.com/m/calc\t0.004s\nFAIL\n"
    assert summary_line(go) == "FAIL\texample.com/m/calc\t0.004s"
    assert summary_line("Found 2 errors in 1 file (checked 3 source files)\n") == (
        "Found 2 errors in 1 file (checked 3 source files)"
    )
    assert summary_line("nothing to see\n") is None
    assert digest.summary_counts(PYTEST_OUTPUT) == (3, 2)
    assert digest.summary_counts(jest) == (4, 1)
    assert digest.summary_counts("nothing\n") == (None, None)


# ---- per-gate bodies --------------------------------------------------------


def test_describe_failure_puts_regressions_first_and_marks_them() -> None:
    body = digest.describe_failure(
        problems=["exited with code 1"],
        regressions=["tests/test_a.py::test_gone", "tests/test_a.py::test_broke"],
        regression_notes={
            "tests/test_a.py::test_gone": "now missing",
            "tests/test_a.py::test_broke": "now failing",
        },
        new_failures=["tests/test_a.py::test_new", "tests/test_a.py::test_broke"],
        pre_existing=["tests/test_old.py::test_flaky"],
        output=PYTEST_OUTPUT,
        output_path=Path(".nightcrew/runs/1/tests.log"),
    )
    lines = body.splitlines()
    assert lines[:6] == [
        "exited with code 1",
        "full output: .nightcrew/runs/1/tests.log",
        "REGRESSIONS (passed before this batch, not passing now):",
        "  - tests/test_a.py::test_broke (now failing)",
        "  - tests/test_a.py::test_gone (now missing)",
        "failing tests:",
    ]
    assert lines[6] == "  - tests/test_a.py::test_new"
    assert "  E       assert 2 == 3" in lines
    assert "summary: 1 failed, 3 passed, 1 error in 0.12s" in lines
    assert lines[-1] == (
        "already failing before this batch (not caused by it): tests/test_old.py::test_flaky"
    )


def test_describe_failure_falls_back_to_the_tail() -> None:
    output = "\n".join(f"line {i}" for i in range(20))
    body = digest.describe_failure(output=output)
    assert body.splitlines() == ["errors:", *[f"  line {i}" for i in range(12, 20)]]


def test_long_id_lists_are_capped() -> None:
    body = digest.describe_failure(new_failures=[f"t::test_{i:03d}" for i in range(40)])
    assert "  - t::test_000" in body
    assert "t::test_039" not in body
    assert "… and 25 more" in body


# ---- the digest -------------------------------------------------------------


def test_make_digest_only_failed_gates_and_empty_when_all_passed() -> None:
    ok = result("clean", passed=True, digest_text="fine", command=None)
    bad = result("gate 1: ruff check", digest_text="errors:\n  x.py:1: F401", command="ruff check")
    text = make_digest([ok, bad])
    assert text == "[gate 1: ruff check] FAILED: ruff check\nerrors:\n  x.py:1: F401"
    assert make_digest([ok]) == ""
    assert failure_signature([ok]) is None


def test_make_digest_limit_and_fair_share() -> None:
    huge = "\n".join(f"  - tests/test_{i}.py::test_something_long_{i}" for i in range(400))
    results = [
        result("tests", digest_text=huge),
        result("gate 1: mypy", digest_text="src/a.py:1: error: bad", command="mypy"),
        result("gate 2: lint", digest_text=huge, command="ruff"),
    ]
    text = make_digest(results)
    assert len(text) <= MAX_DIGEST_CHARS
    assert text.count(TRUNCATED) == 2
    assert "[gate 1: mypy] FAILED: mypy\nsrc/a.py:1: error: bad" in text
    assert "[gate 2: lint] FAILED: ruff" in text
    assert make_digest(results) == text


def test_make_digest_from_real_gate_results(tmp_path: Path) -> None:
    spec = GateSpec("gate 1: fail", "printf 'Error: %s\\n' " + "x" * 3000 + "; exit 4", "command")
    results = gates.run_gates(
        [spec],
        root=tmp_path,
        evidence_dir=tmp_path / "ev",
        baseline=None,
        base_sha=None,
        timeout_s=30,
    )
    text = make_digest(results)
    assert len(text) <= MAX_DIGEST_CHARS
    assert text.startswith("[gate 1: fail] FAILED: printf")
    assert "exited with code 4" in text
    assert "full output: ev/gate-1-fail.log" in text


def test_truncate() -> None:
    assert digest.truncate("short", 10) == "short"
    cut = digest.truncate("aaaa\nbbbb\ncccc\ndddd", 17)
    assert cut == f"aaaa\n{TRUNCATED}"
    assert len(digest.truncate("x" * 100, 20)) == 20


# ---- signatures -------------------------------------------------------------


def test_normalise_removes_what_varies_between_runs() -> None:
    a = "Error: object at 0x7f3a2b1c00 failed after 1.23s in /tmp/pytest-of-u/pytest-7/t0/x.py:12"
    b = "Error: object at 0x55aa00ff11 failed after 10.5s in /tmp/pytest-of-u/pytest-9/t1/x.py:99"
    assert normalise(a) == normalise(b)
    assert normalise("KeyError: 'user'") != normalise("KeyError: 'group'")


def test_signature_is_stable_for_the_same_failure() -> None:
    first = digest.gate_signature("gate 1", output="Error: at 0xdeadbeef0 after 12ms\n")
    second = digest.gate_signature("gate 1", output="Error: at 0xfeedf00d1 after 340ms\n")
    other = digest.gate_signature("gate 1", output="Error: something else\n")
    assert first == second
    assert first != other
    ids_a = digest.gate_signature("tests", failing_ids=["b::t", "a::t"])
    ids_b = digest.gate_signature("tests", failing_ids=["a::t", "b::t"])
    assert ids_a == ids_b
    assert ids_a != digest.gate_signature("tests", failing_ids=["a::t"])
    assert digest.gate_signature("tests", timed_out=True) == digest.gate_signature(
        "tests", timed_out=True, output="different"
    )


def test_failure_signature_over_results() -> None:
    a = result("tests", signature="s1")
    b = result("clean", signature="s2")
    assert failure_signature([a, b]) == failure_signature([b, a])
    assert failure_signature([a, b]) != failure_signature([a])
    assert failure_signature([a, result("clean", passed=True)]) == failure_signature([a])


def test_real_runs_failing_the_same_way_share_a_signature(tmp_path: Path) -> None:
    # Each run prints a fresh temporary directory, a pid and a timing.
    command = (
        'd=$(mktemp -d); echo "starting $$"; '
        'echo "Error: cannot open $d/config.toml (pid $$, after 0.0$$s)"; rmdir "$d"; exit 1'
    )
    spec = GateSpec("gate 1: check", command, "command")
    sigs = []
    outputs = []
    for attempt in range(2):
        (results,) = [
            gates.run_gates(
                [spec],
                root=tmp_path,
                evidence_dir=tmp_path / f"ev{attempt}",
                baseline=None,
                base_sha=None,
                timeout_s=30,
                env=dict(os.environ, TMPDIR="/tmp"),
            )
        ]
        sigs.append(failure_signature(results))
        assert results[0].output_path is not None
        outputs.append(results[0].output_path.read_text(encoding="utf-8"))
    assert outputs[0] != outputs[1]
    assert sigs[0] is not None
    assert sigs[0] == sigs[1]
