"""A :class:`~nightcrew.views.pull_request.PullRequest` as GitHub-flavoured
markdown. Everything quoted comes from plans, backlogs, commits and agents, so
it may hold markdown, backticks or HTML of its own: one-line text is escaped,
names of files are code spans, and longer text sits in a fence longer than any
run of backticks inside it, so nothing quoted can change the layout around it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from decimal import Decimal

    from nightcrew.core.usage import TokenCounts
    from nightcrew.views.pull_request import ItemReport, Money, PullRequest

MAX_FILES = 20  # per item; the rest are counted
MAX_UNTOUCHED = 20  # backlog features a build never reached

# Every character CommonMark lets a backslash escape that could start markup
# in the middle of a line (emphasis, code, links, HTML, entities, table cells).
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~])")
_BACKTICKS = re.compile(r"`+")


def inline(text: str) -> str:
    """``text`` on one line, shown as written wherever markdown puts it."""
    return _INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def code_span(text: str) -> str:
    """``text`` as inline code: delimited by more backticks than it holds."""
    text = " ".join(text.splitlines())
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str = "") -> str:
    """``text`` in a fenced block whose fence no line of it can close."""
    fence = "`" * max(3, _longest_backticks(text) + 1)
    body = text.strip("\n")
    return f"{fence}{info}\n{body}\n{fence}" if body else f"{fence}{info}\n{fence}"


def money(cost: Decimal | None, unknown: int) -> str:
    """Dollars as a reviewer reads them: unknown stays unknown, never $0."""
    if cost is None:
        return "unknown" if unknown else "$0.0000"
    text = f"${cost:.4f}"
    if unknown:
        return f"at least {text} ({unknown} attempt{_s(unknown)} of unknown cost)"
    return text


def duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def tokens(t: TokenCounts) -> str:
    return (
        f"{t.total:,} ({t.input:,} in, {t.output:,} out, {t.cache_read:,} cache read,"
        f" {t.cache_write:,} cache write)"
    )


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _state(state: str) -> str:
    return inline(state.replace("_", " "))


def _head(item: ItemReport) -> str:
    return f"### {inline(item.label)}: {inline(item.title)}"


# ---- sections ------------------------------------------------------------------------------


def _asked(pr: PullRequest) -> list[str]:
    out = ["## What was asked", ""]
    if not pr.passed:
        return [*out, "No item passed in this run.", ""]
    for item in pr.passed:
        out += [_head(item), ""]
        if item.text.strip():
            out += [fenced(item.text, "markdown"), ""]
        if item.acceptance:
            out += ["Acceptance commands:", "", fenced("\n".join(item.acceptance), "sh"), ""]
    return out


def _files(files: Sequence[str]) -> list[str]:
    shown = [f"- {code_span(f)}" for f in files[:MAX_FILES]]
    if len(files) > MAX_FILES:
        shown.append(f"- and {len(files) - MAX_FILES} more")
    return shown


def _done(pr: PullRequest) -> list[str]:
    out = ["## What was done", ""]
    if not pr.passed:
        return [*out, "Nothing was committed.", ""]
    for item in pr.passed:
        out += [_head(item), ""]
        if not item.commits:
            out += ["Its commit is no longer in this repository (history rewritten?).", ""]
            continue
        out += [f"- {code_span(c.sha[:7])} {inline(c.subject)}" for c in item.commits]
        n = len(item.files)
        out += ["", f"Files changed ({n}):" if n else "No file changed.", ""]
        if n:
            out += [*_files(item.files), ""]
    return out


def _attempt_lines(item: ItemReport) -> list[str]:
    n = item.money.attempts
    lines = [f"- Attempts: {n}"]
    for failed in item.failures:
        model = f" ({inline(failed.model)})" if failed.model else ""
        lines.append(
            f"  - attempt {failed.number}{model}: {inline(failed.state)}: {inline(failed.why)}"
        )
    return lines


def _evidence(pr: PullRequest) -> list[str]:
    out = ["## Evidence", ""]
    if not pr.passed:
        return [*out, "No item passed, so no gate vouches for anything.", ""]
    for item in pr.passed:
        out += [_head(item), ""]
        out.append(f"- Gates passed on the final attempt (attempt {item.final_attempt}):")
        if not item.gates:
            out.append("  - none were stored")
        for gate in item.gates:
            detail = f": {inline(gate.detail)}" if gate.detail else ""
            out.append(f"  - {code_span(gate.name)}{detail}")
        regressions = ", ".join(code_span(r) for r in item.regressions) or "none"
        out.append(f"- Regressions: {regressions}")
        out += [*_attempt_lines(item), ""]
    return out


def _row(name: str, m: Money) -> str:
    cells = [
        name,
        money(m.cost_usd, m.unknown_cost),
        f"{m.tokens.total:,}",
        duration(m.agent_seconds),
        duration(m.wall_seconds),
        inline(", ".join(m.models)) or "-",
    ]
    return "| " + " | ".join(cells) + " |"


def _cost(pr: PullRequest) -> list[str]:
    out = ["## Cost and time", ""]
    worked = [i for i in pr.items if i.money.attempts]
    if not worked:
        return [*out, "No attempt ran: nothing was spent.", ""]
    out += [
        "| item | cost | tokens | agent time | wall time | models |",
        "|---|---|---|---|---|---|",
    ]
    out += [_row(f"{inline(i.label)}: {inline(i.title)}", i.money) for i in worked]
    out += [_row("**total**", pr.total), ""]
    out.append(
        f"Tokens in all: {tokens(pr.total.tokens)}. Wall time counts each attempt's"
        " agent and gates."
    )
    if pr.elapsed_seconds is not None:
        out[-1] += f" The run took {duration(pr.elapsed_seconds)} from its start to its end."
    return [*out, ""]


def _undone(pr: PullRequest) -> list[str]:
    out = ["## Left undone", ""]
    items = [i for i in pr.items if not i.passed]
    if not items and not pr.untouched:
        return [*out, "Nothing: every item passed.", ""]
    out += [
        f"- **{inline(i.label)}: {inline(i.title)}** ({_state(i.state)}): {inline(i.why_not or '')}"
        for i in items
    ]
    out += [
        f"- **{inline(u.label)}: {inline(u.title)}** ({_state(u.state)}): {inline(u.why)}"
        for u in pr.untouched[:MAX_UNTOUCHED]
    ]
    if len(pr.untouched) > MAX_UNTOUCHED:
        out.append(f"- and {len(pr.untouched) - MAX_UNTOUCHED} more features not passed")
    return [*out, ""]


def body(pr: PullRequest) -> str:
    """The description without its title (``gh pr create`` takes that apart)."""
    kind = {"backlog": "build", "plan": "run"}.get(pr.kind, pr.kind)
    lines = [
        f"Made by nightcrew, {kind} {code_span(pr.run_id)} ({_state(pr.run_state)}):"
        f" {len(pr.passed)} of {len(pr.items)} item{_s(len(pr.items))} passed.",
        "",
    ]
    for section in (_asked, _done, _evidence, _cost, _undone):
        lines += section(pr)
    return "\n".join(lines).rstrip("\n") + "\n"


def markdown(pr: PullRequest) -> str:
    """The whole description: the suggested title as a heading, then the body."""
    return f"# {inline(pr.title)}\n\n{body(pr)}"
