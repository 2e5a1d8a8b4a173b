"""How a gate's result is shown on the console and kept in the store."""

from __future__ import annotations

from collections.abc import Sequence

from nightcrew.engine import gates as gates_mod
from nightcrew.store.records import Store


def record_gate(store: Store, attempt_id: int, result: gates_mod.GateResult) -> None:
    store.record_gate(
        attempt_id,
        name=result.name,
        command=result.command,
        passed=result.passed,
        duration_s=result.duration_s,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        tests_passed=result.tests_passed,
        tests_failed=result.tests_failed,
        failed_ids=sorted(result.tests.failed) if result.tests else [],
        regressions=result.regressions,
        output_path=str(result.output_path) if result.output_path else None,
        digest=result.digest,
    )


def gate_detail(result: gates_mod.GateResult) -> str:
    parts = []
    if result.tests_passed is not None:
        parts.append(f"{result.tests_passed} passed")
    if result.tests_failed:
        parts.append(f"{result.tests_failed} failed")
    if result.regressions:
        parts.append(f"{len(result.regressions)} regression(s)")
    if result.timed_out:
        parts.append("timed out")
    return f" ({', '.join(parts)})" if parts else ""


def gate_label(name: str) -> str:
    return name if name.startswith(("gate ", "acceptance ")) else f"gate {name}"


SHOWN_IDS = 3


def gate_reason(result: gates_mod.GateResult) -> str:
    """The first telling line of a failed gate's digest, for the console; a
    heading such as "failing tests:" with the first ids listed under it."""
    lines = result.digest.splitlines()
    for index, line in enumerate(lines):
        text = line.strip()
        if not text or text.startswith(("full output:", "summary:", "[")):
            continue
        if text.endswith(":"):
            text += _listed_ids(lines[index + 1 :])
        return f" — {text[:240]}"
    return ""


def _listed_ids(lines: Sequence[str]) -> str:
    """`` a, b, c (+N more)`` from a digest's ``  - id`` lines."""
    ids: list[str] = []
    more = 0
    for line in lines:
        if line.startswith("  - "):
            ids.append(line[4:].strip())
        elif line.startswith("  … and ") and line.rstrip().endswith(" more"):
            more += int(line.split()[2])
        else:
            break
    if not ids:
        return ""
    extra = len(ids) - SHOWN_IDS + more
    return " " + ", ".join(ids[:SHOWN_IDS]) + (f" (+{extra} more)" if extra > 0 else "")
