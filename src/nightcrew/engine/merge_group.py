"""What several landings checked together share: one set of checks, one
baseline, and the evidence every one of them keeps.

The merge queue (:mod:`merge_queue`) puts the landings waiting together on
the integration head one after the other and runs the checks once on the
result. These are the pure parts of that: which checks (every feature's
acceptance commands, named after their feature, then the project's gates
once), against which baseline (the strictest of theirs), and the evidence
(the logs of that one run, copied to each feature's evidence with a note
saying what was checked).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from nightcrew.engine import gates as gates_mod

NOTE = "checked-together.txt"


def group_gates(
    owners: Sequence[tuple[str, Sequence[gates_mod.GateSpec], int]],
) -> tuple[gates_mod.GateSpec, ...]:
    """The checks of a group: each feature's own gates (``owners``: its item,
    its gates, how many of the first are its own), named ``"feature #5 ›
    acceptance 1"`` so that two features' ``acceptance 1`` stay apart, then
    the project's gates, each once, in the order they came."""
    own: list[gates_mod.GateSpec] = []
    shared: dict[gates_mod.GateSpec, None] = {}
    for item, specs, count in owners:
        own += [replace(spec, name=f"{item} › {spec.name}") for spec in specs[:count]]
        shared.update(dict.fromkeys(specs[count:]))
    return (*own, *shared)


def group_baseline(baselines: Sequence[gates_mod.TestIds | None]) -> gates_mod.TestIds | None:
    """The strictest baseline of several: a test may keep failing only when it
    failed in every one, and must still pass when it passed in any. None when
    none of them had test ids."""
    known = [b for b in baselines if b is not None]
    if not known:
        return None
    passed: frozenset[str] = frozenset().union(*(b.passed for b in known))
    failed = frozenset.intersection(*(b.failed for b in known))
    if len(known) < len(baselines):  # one knew of no failing test
        failed = frozenset()
    skipped = frozenset.intersection(*(b.skipped for b in known))
    return gates_mod.TestIds(passed=passed, failed=failed - passed, skipped=skipped)


def share_evidence(source: Path, targets: Sequence[Path], note: str) -> None:
    """Move the logs of a group's one run from ``source`` (a scratch directory,
    removed) into every feature's evidence directory, with ``note`` beside them."""
    logs = sorted(p for p in source.glob("*") if p.is_file())
    for target in targets:
        target.mkdir(parents=True, exist_ok=True)
        for log in logs:
            shutil.copyfile(log, target / log.name)
        (target / NOTE).write_text(note, encoding="utf-8")
    shutil.rmtree(source, ignore_errors=True)


def kept_in(
    results: Sequence[gates_mod.GateResult], evidence_dir: Path
) -> tuple[gates_mod.GateResult, ...]:
    """``results`` with their logs where :func:`share_evidence` put one
    feature's copy."""
    return tuple(
        replace(r, output_path=evidence_dir / r.output_path.name) if r.output_path else r
        for r in results
    )


def describe(
    items: Sequence[str], shas: Sequence[str], onto: str, branch: str, passed: bool
) -> str:
    """The note kept with each feature checked in a group."""
    lines = [
        f"These features were put on {branch} (at {onto}) one after the other and checked"
        " together, once, on the result: each one's acceptance commands and the project's"
        " gates (the logs beside this file).",
        "",
        *(f"  {item}: {sha}" for item, sha in zip(items, shas, strict=True)),
        "",
    ]
    if passed:
        lines.append(f"The checks passed, so {branch} moved to {shas[-1]}.")
    else:
        lines.append(
            "The checks failed, so nothing moved: the group was split in halves and each"
            " half checked again on its own, down to the feature that fails."
        )
    return "\n".join(lines) + "\n"
