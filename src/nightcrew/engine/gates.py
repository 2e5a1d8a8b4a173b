"""Quality gates: the harness, not the agent, decides when a batch is done.

Three kinds of gate:

* ``tests``: the project's test runner (auto-detected, or a configured
  command), judged on test *ids* against the baseline taken before the first
  batch: a test that passed then and does not pass now is a regression.
* ``command``: a user's shell command; passes on exit code 0.
* ``clean``: the tree is fit for the harness to commit (no git operation in
  progress, no unmerged paths, history not rewritten, no secrets).
* ``changes``: the attempt changed at least one file (other than the ones
  named in ``GateSpec.ignore``, such as the plan); only for work that nothing
  else judges (no tests gate, no ``--gate``).

Every gate runs (no short-circuit) so the digest for the retry prompt is
complete, and every gate's full output is kept in the evidence directory.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

from nightcrew import debris, gitops, proc, secrets
from nightcrew.core.errors import GitError
from nightcrew.core.events import TestsDetected
from nightcrew.engine import digest as digest_mod
from nightcrew.engine import testrun
from nightcrew.engine.testrun import PYTEST_NO_TESTS, Runner

TestIds: TypeAlias = testrun.TestIds  # structured results of one test run
GateKind = Literal["tests", "command", "clean", "changes"]
GATE_NAME_CHARS = 48


@dataclass(frozen=True)
class GateSpec:
    name: str
    command: str | None  # None for the clean gate and the auto-detected tests gate
    kind: GateKind
    # The auto-detected tests gate: the command to run them by hand (for the prompt).
    shown: str | None = field(default=None, compare=False)
    ignore: tuple[str, ...] = ()  # the changes gate: paths that are not a change


@dataclass(frozen=True)
class GateResult:
    name: str  # "tests", "clean", or the user's gate name
    command: str | None  # what ran, as shown to a person
    passed: bool
    duration_s: float
    exit_code: int | None
    timed_out: bool
    tests: TestIds | None  # None when the runner gives no ids
    tests_passed: int | None
    tests_failed: int | None
    regressions: tuple[str, ...]  # passed in the baseline, not passing now (failed OR missing)
    output_path: Path | None  # full output kept on disk
    digest: str  # short, for the retry prompt
    signature: str | None  # stable failure signature; None when passed


@dataclass(frozen=True)
class TestVerdict:
    """How one test run compares with the baseline."""

    __test__ = False

    passed: bool
    problems: tuple[str, ...] = ()
    regressions: tuple[str, ...] = ()
    regression_notes: Mapping[str, str] = field(default_factory=dict)
    new_failures: tuple[str, ...] = ()
    pre_existing: tuple[str, ...] = ()


def _named_gate(label: str, command: str) -> GateSpec:
    shown = " ".join(command.split())
    if len(shown) > GATE_NAME_CHARS:
        shown = shown[: GATE_NAME_CHARS - 1] + "…"
    return GateSpec(name=f"{label}: {shown}", command=command, kind="command")


def command_gate(index: int, command: str) -> GateSpec:
    """A spec for the user's ``index``-th gate command, named for display."""
    return _named_gate(f"gate {index}", command)


def acceptance_gate(index: int, command: str) -> GateSpec:
    """A spec for a backlog feature's ``index``-th acceptance command."""
    return _named_gate(f"acceptance {index}", command)


def changes_gate(ignore: Sequence[str] = ()) -> GateSpec:
    """A gate that fails when the attempt changed no file outside ``ignore``."""
    return GateSpec(name="changes", command=None, kind="changes", ignore=tuple(ignore))


def judges_the_work(specs: Sequence[GateSpec]) -> bool:
    """Whether a tests gate or a user's command judges what the agent did."""
    return any(spec.kind in ("tests", "command") for spec in specs)


def default_gates(root: Path) -> list[GateSpec]:
    """The auto-detected tests gate (when a runner is found) and the clean gate."""
    specs: list[GateSpec] = []
    runner = testrun.detect_runner(root)
    if runner is not None:
        shown = testrun.shown_command(root, runner)
        specs.append(GateSpec(name="tests", command=None, kind="tests", shown=shown))
    specs.append(GateSpec(name="clean", command=None, kind="clean"))
    return specs


def detected_tests(root: Path, run_id: str | None = None) -> TestsDetected:
    """How the tests gate will run the project's tests, as an event."""
    runner = testrun.detect_runner(root)
    if runner is None:
        return TestsDetected(run_id=run_id, runner=None)
    python = None
    if runner.python is not None:
        shown = runner.python
        python = str(shown.relative_to(root) if shown.is_relative_to(root) else shown)
    return TestsDetected(
        run_id=run_id,
        runner=runner.kind,
        source=runner.source,
        python=python,
        command=runner.command,
    )


def gates_passed(results: Sequence[GateResult]) -> bool:
    return all(r.passed for r in results)


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _shown(path: Path, root: Path) -> Path:
    """``path`` relative to the project when it is inside it (the agent works
    there), else as is."""
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return path


# ---- verdicts ---------------------------------------------------------------


def judge_tests(
    ids: TestIds | None,
    *,
    exit_code: int | None,
    timed_out: bool,
    baseline: TestIds | None,
    timeout_s: float,
    zero_tests_ok: bool = False,
) -> TestVerdict:
    """The tests gate verdict.

    Fails when the run timed out; with ids, when a test fails that was not
    already failing in the baseline, when a baseline-passing id no longer
    passes (failing, skipped or missing), or when the runner exited non-zero
    without naming a failing test; without ids, when it exited non-zero.
    ``zero_tests_ok`` makes pytest's "no tests collected" exit code a pass.
    """
    problems: list[str] = []
    if timed_out:
        problems.append(f"timed out after {_seconds(timeout_s)}")
    no_tests = zero_tests_ok and exit_code == PYTEST_NO_TESTS
    if ids is None:
        if not timed_out and exit_code != 0 and not no_tests:
            problems.append(f"exited with code {exit_code}")
        return TestVerdict(passed=not problems, problems=tuple(problems))
    base_failed = baseline.failed if baseline is not None else frozenset()
    new_failures = tuple(sorted(ids.failed - base_failed))
    pre_existing = tuple(sorted(ids.failed & base_failed))
    regressions = tuple(sorted(baseline.passed - ids.passed)) if baseline is not None else ()
    notes = {
        t: "now failing"
        if t in ids.failed
        else "now skipped"
        if t in ids.skipped
        else "now missing"
        for t in regressions
    }
    if exit_code not in (0, None) and not ids.failed and not no_tests:
        problems.append(f"exited with code {exit_code} without naming a failing test")
    passed = not problems and not new_failures and not regressions
    return TestVerdict(
        passed=passed,
        problems=tuple(problems),
        regressions=regressions,
        regression_notes=notes,
        new_failures=new_failures,
        pre_existing=pre_existing,
    )


# ---- running ----------------------------------------------------------------


def _safe_names(specs: Sequence[GateSpec]) -> list[str]:
    names: list[str] = []
    for spec in specs:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.name).strip("-.")[:60] or "gate"
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


@dataclass(frozen=True)
class _Context:
    root: Path
    evidence_dir: Path
    timeout_s: float
    env: Mapping[str, str] | None
    baseline: TestIds | None
    base_sha: str | None
    left_alone: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Outcome:
    """What one gate found, before its digest is written."""

    command: str | None
    problems: tuple[str, ...] = ()
    duration_s: float = 0.0
    exit_code: int | None = None
    timed_out: bool = False
    output: str = ""
    verdict: TestVerdict | None = None  # tests gates: decides pass/fail
    ids: TestIds | None = None
    counts: tuple[int | None, int | None] = (None, None)
    with_errors: bool = True  # quote error lines from the output


def _result(spec: GateSpec, out: _Outcome, log: Path, ctx: _Context) -> GateResult:
    verdict = out.verdict or TestVerdict(passed=not out.problems)
    passed_n, failed_n = out.counts
    counts = None
    if passed_n is not None and failed_n is not None:
        counts = f"{passed_n} passed, {failed_n} failed"
        if out.ids is not None and out.ids.skipped:
            counts += f", {len(out.ids.skipped)} skipped"
    problems = (*verdict.problems, *out.problems) if out.verdict else out.problems
    body = digest_mod.describe_failure(
        problems=problems,
        regressions=verdict.regressions,
        regression_notes=dict(verdict.regression_notes),
        new_failures=verdict.new_failures,
        pre_existing=verdict.pre_existing,
        output=out.output,
        counts=counts,
        output_path=_shown(log, ctx.root),
        with_errors=out.with_errors and not verdict.passed,
    )
    signature = None
    if not verdict.passed:
        signature = digest_mod.gate_signature(
            spec.name,
            failing_ids=(*verdict.new_failures, *verdict.regressions),
            timed_out=out.timed_out,
            problems=problems if not out.output else (),
            output=out.output,
            exit_code=out.exit_code,
        )
    return GateResult(
        name=spec.name,
        command=out.command,
        passed=verdict.passed,
        duration_s=out.duration_s,
        exit_code=out.exit_code,
        timed_out=out.timed_out,
        tests=out.ids,
        tests_passed=passed_n,
        tests_failed=failed_n,
        regressions=verdict.regressions,
        output_path=log,
        digest=body,
        signature=signature,
    )


def _not_run(spec: GateSpec, message: str, log: Path, ctx: _Context) -> GateResult:
    """A gate that failed before its command could run."""
    log.write_text(message + "\n", encoding="utf-8")
    return _result(spec, _Outcome(spec.command, problems=(message,)), log, ctx)


def _runner_for(spec: GateSpec | None, root: Path) -> Runner | None:
    if spec is not None and spec.command:
        return Runner("custom", "configuration", command=spec.command)
    return testrun.detect_runner(root)


def _run_tests_gate(spec: GateSpec, log: Path, ctx: _Context) -> GateResult:
    runner = _runner_for(spec, ctx.root)
    if runner is None:
        message = "no test runner found any more (the test setup seen before is gone): "
        return _not_run(spec, message + testrun.NONE_FOUND, log, ctx)
    try:
        run = testrun.run_tests(
            runner,
            root=ctx.root,
            evidence_dir=ctx.evidence_dir,
            timeout_s=ctx.timeout_s,
            log_name=log.name,
            env=ctx.env,
        )
    except OSError as exc:
        return _not_run(spec, f"could not start: {exc}", log, ctx)
    done = run.completed
    zero_tests = run.runner.kind == "pytest" and done.exit_code == PYTEST_NO_TESTS
    verdict = judge_tests(
        run.ids,
        exit_code=done.exit_code,
        timed_out=done.timed_out,
        baseline=ctx.baseline,
        timeout_s=ctx.timeout_s,
        zero_tests_ok=run.runner.kind == "pytest",
    )
    ids = run.ids
    counts = (len(ids.passed), len(ids.failed)) if ids else digest_mod.summary_counts(run.text)
    outcome = _Outcome(
        command=run.command,
        problems=("no tests were collected (a pass with zero tests)",) if zero_tests else (),
        duration_s=done.duration_s,
        exit_code=done.exit_code,
        timed_out=done.timed_out,
        output=run.text,
        verdict=verdict,
        ids=ids,
        counts=counts,
    )
    return _result(spec, outcome, log, ctx)


def _run_command_gate(spec: GateSpec, log: Path, ctx: _Context) -> GateResult:
    try:
        done = proc.run(
            proc.shell_argv(spec.command or "true"),
            cwd=ctx.root,
            timeout_s=ctx.timeout_s,
            env=testrun.gate_env(ctx.env),
            output_file=log,
        )
    except OSError as exc:
        return _not_run(spec, f"could not start: {exc}", log, ctx)
    problems: tuple[str, ...] = ()
    if done.timed_out:
        problems = (f"timed out after {_seconds(ctx.timeout_s)}",)
    elif done.exit_code != 0:
        problems = (f"exited with code {done.exit_code}",)
    outcome = _Outcome(
        command=spec.command,
        problems=problems,
        duration_s=done.duration_s,
        exit_code=done.exit_code,
        timed_out=done.timed_out,
        output=done.output,
        counts=digest_mod.summary_counts(done.output),
    )
    return _result(spec, outcome, log, ctx)


def clean_problems(
    root: Path, base_sha: str | None, left_alone: frozenset[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """(problems, status lines) for the clean gate: is the tree fit for the
    harness to commit? Paths in ``left_alone`` (the user's, never committed)
    are not judged."""
    problems: list[str] = []
    operation = gitops.operation_in_progress(root)
    if operation is not None:
        problems.append(f"a git {operation} is in progress: finish it or abort it")
    entries = [
        e for e in gitops.status_entries(root) if not (e.path + "/").startswith(gitops.STATE_DIR)
    ]
    unmerged = sorted(e.path for e in entries if e.unmerged)
    if unmerged:
        problems.append("unmerged paths (resolve the conflict): " + ", ".join(unmerged))
    if base_sha is not None:
        head = gitops.head_sha(root)
        if head is None or not gitops.is_ancestor(root, base_sha, head):
            problems.append(
                f"HEAD no longer contains the batch's starting commit {base_sha[:12]}: history"
                " was rewritten (reset, rebase or amend); keep the existing commits"
            )
        paths = gitops.changed_files(root, base_sha)
    else:
        paths = sorted({e.path for e in entries})
    paths = [p for p in paths if p not in left_alone]
    for temp in sorted(debris.agent_temps(paths)):
        problems.append(
            f"{temp} is an unfinished write left by a stopped agent"
            " (<file>.tmp.<pid>.<hex>): delete it"
        )
    for finding in secrets.find_secrets(root, paths):
        problems.append(
            f"refusing to commit {finding.path}: {finding.reason}"
            " — remove it or add it to .gitignore"
        )
    status = [
        f"{e.code} {e.path}" + (f" (from {e.orig_path})" if e.orig_path else "") for e in entries
    ]
    return problems, status


def _run_clean_gate(spec: GateSpec, log: Path, ctx: _Context) -> GateResult:
    started = time.monotonic()
    timed_out = False
    try:
        with gitops.time_limit(ctx.timeout_s):
            problems, status = clean_problems(ctx.root, ctx.base_sha, ctx.left_alone)
    except gitops.GitTimedOut:
        timed_out = True
        problems, status = [f"timed out after {_seconds(ctx.timeout_s)}"], []
    except GitError as exc:
        problems, status = [f"git failed: {exc.message}"], []
    verdict_line = problems or ["the tree is fit to commit"]
    log.write_text("\n".join([*verdict_line, "", "git status:", *status, ""]), encoding="utf-8")
    outcome = _Outcome(
        command=spec.command,
        problems=tuple(problems),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        with_errors=False,
    )
    return _result(spec, outcome, log, ctx)


def _run_changes_gate(spec: GateSpec, log: Path, ctx: _Context) -> GateResult:
    started = time.monotonic()
    try:
        changed = [p for p in gitops.changed_files(ctx.root, ctx.base_sha) if p not in spec.ignore]
    except GitError as exc:
        problems = [f"git failed: {exc.message}"]
    else:
        problems = [] if changed else [NOTHING_CHANGED]
    text = problems or ["changed:", *changed]
    log.write_text("\n".join([*text, ""]), encoding="utf-8")
    outcome = _Outcome(
        command=None,
        problems=tuple(problems),
        duration_s=time.monotonic() - started,
        with_errors=False,
    )
    return _result(spec, outcome, log, ctx)


NOTHING_CHANGED = (
    "the agent changed nothing: no file differs from the start of the batch (the plan"
    " itself does not count). Do the work the batch asks for; a batch that needs no"
    " change is marked no-change-ok in the plan"
)


def run_gates(
    specs: Sequence[GateSpec],
    *,
    root: Path,
    evidence_dir: Path,
    baseline: TestIds | None,
    base_sha: str | None,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    left_alone: frozenset[str] = frozenset(),
) -> list[GateResult]:
    """Run every gate (no short-circuit), each with ``timeout_s``, keeping
    each gate's full output in ``evidence_dir/<safe-name>.log``."""
    ctx = _Context(
        root=Path(root).resolve(),
        evidence_dir=Path(evidence_dir).resolve(),
        timeout_s=timeout_s,
        env=env,
        baseline=baseline,
        base_sha=base_sha,
        left_alone=left_alone,
    )
    ctx.evidence_dir.mkdir(parents=True, exist_ok=True)
    runners = {
        "tests": _run_tests_gate,
        "command": _run_command_gate,
        "clean": _run_clean_gate,
        "changes": _run_changes_gate,
    }
    return [
        runners[spec.kind](spec, ctx.evidence_dir / f"{name}.log", ctx)
        for spec, name in zip(specs, _safe_names(specs), strict=True)
    ]


def run_baseline(
    root: Path,
    evidence_dir: Path,
    timeout_s: float,
    *,
    spec: GateSpec | None = None,
    env: Mapping[str, str] | None = None,
) -> TestIds | None:
    """Run the tests once before the first batch. None when there is no test
    runner, it gives no ids, or it timed out; the output is kept either way."""
    root = Path(root).resolve()
    runner = _runner_for(spec, root)
    if runner is None:
        return None
    try:
        run = testrun.run_tests(
            runner, root=root, evidence_dir=Path(evidence_dir), timeout_s=timeout_s, env=env
        )
    except OSError:
        return None
    return None if run.completed.timed_out else run.ids
