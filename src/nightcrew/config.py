"""Settings: ``nightcrew.toml`` or ``[tool.nightcrew]`` in ``pyproject.toml``
supply defaults; command-line options override them.

A bad file is one line naming the file, the line and what is wrong.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from nightcrew.config_errors import describe, setting_name
from nightcrew.config_notify import check as check_notify_url
from nightcrew.config_policy import PolicySettings, check_policy_table
from nightcrew.config_routing import RoutingRule, check_routing_table
from nightcrew.core.errors import LocatedError

MAX_PORT = 65535
# Settings a command-line option adds to instead of replacing (--notify URL).
ADDED_ON_THE_COMMAND_LINE = frozenset({"notify"})
NotifyUrl = Annotated[str, AfterValidator(check_notify_url)]


class Settings(BaseModel):
    """Everything a run can be told. Field names are the config keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # A registered agent backend's name (checked against the registry by the
    # commands that start agents: load_settings(agents=...)).
    agent: str = "claude"
    model: str | None = None
    escalate_model: str | None = None
    gates: tuple[str, ...] = ()
    on_failure: Literal["stop", "skip", "retry"] = "retry"
    max_retries: int = Field(default=2, ge=0, le=50)
    max_budget_usd: float | None = Field(default=None, gt=0)
    max_item_usd: float | None = Field(default=None, gt=0)
    # Budgets of the project as a whole, across runs (config only).
    daily_budget_usd: float | None = Field(default=None, gt=0)
    total_budget_usd: float | None = Field(default=None, gt=0)
    attempt_timeout: float = Field(default=1800, gt=0)
    gate_timeout: float = Field(default=1800, gt=0)
    commit: bool = True
    wait_on_limit: bool = False  # wait for a usage limit to reset instead of stopping
    # The agent's tools it may use without asking; None: the backend's own default.
    allowed_tools: tuple[str, ...] | None = None
    pricing: dict[str, dict[str, float]] = Field(default_factory=dict)
    # Backlog builds: the model chain a stuck feature climbs (weakest first),
    # how many same failures in a row mean stuck, and a feature's attempt cap.
    escalation: tuple[str, ...] = ()
    stuck_after: int = Field(default=3, ge=1, le=50)
    max_attempts_per_feature: int = Field(default=10, ge=1, le=200)
    # Parallel builds: how many features at once (each in its own worktree),
    # how a passed feature's branch lands on the main one, and whether it keeps
    # a branch of its own afterwards.
    parallel: int = Field(default=1, ge=1, le=16)
    merge: Literal["rebase", "merge", "squash"] = "rebase"
    # How many landings waiting together the merge queue checks in one run.
    merge_batch: int = Field(default=4, ge=1, le=32)
    branch_per_feature: bool = False
    # Shell commands that make a fresh worktree runnable (copy .env, install
    # dependencies), run in it before its first attempt.
    worktree_setup: tuple[str, ...] = ()
    # Lane k (1-based, up to 2 * parallel) gets the ports port_base + (k-1)*ports_per_lane onwards.
    port_base: int = Field(default=3100, ge=1024, le=65000)
    ports_per_lane: int = Field(default=10, ge=1, le=1000)
    # [policy]: what the agent may run and where it may write (config only).
    policy: PolicySettings = Field(default_factory=PolicySettings)
    # [[routing]]: which model chain each kind of work climbs (config only).
    routing: tuple[RoutingRule, ...] = ()
    # Where to send notifications: Apprise URLs (any service Apprise knows).
    notify: tuple[NotifyUrl, ...] = ()
    # The settings given on the command line (they override the routing rules).
    _command_line: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("gates")
    @classmethod
    def _no_blank_gates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not g.strip() for g in value):
            raise ValueError("a gate command is empty")
        return value

    @field_validator("escalation")
    @classmethod
    def _no_blank_models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not m.strip() for m in value):
            raise ValueError("a model name in the chain is empty")
        return tuple(m.strip() for m in value)

    @field_validator("worktree_setup")
    @classmethod
    def _no_blank_setup(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not c.strip() for c in value):
            raise ValueError("a setup command is empty")
        return value

    @model_validator(mode="after")
    def _lanes_ports_fit(self) -> Settings:
        last = self.port_base + self.lanes * self.ports_per_lane
        if last > MAX_PORT:
            raise ValueError(
                f"port_base + 2 * parallel * ports_per_lane (two lanes per agent) must be at"
                f" most {MAX_PORT}, got {self.port_base} + 2 * {self.parallel} *"
                f" {self.ports_per_lane} = {last}: lower port_base, ports_per_lane or parallel"
            )
        return self

    @property
    def lanes(self) -> int:
        """The lanes of a build in worktrees: two per agent, so a feature whose
        merged result is being checked keeps its lane (and its ports) while the
        next feature's agent works in another (engine/slots.py)."""
        return 2 * self.parallel

    @property
    def command_line(self) -> frozenset[str]:
        """The names of the settings an option on the command line gave."""
        return self._command_line

    def snapshot(self) -> dict[str, Any]:
        # Without rules the stored snapshot stays as it was before routing existed.
        # Notification URLs hold secrets (tokens, passwords) and say nothing about
        # how the work was done: they are never stored.
        excluded = {"notify"} if self.routing else {"routing", "notify"}
        return self.model_dump(mode="json", exclude=excluded)


def _line_start(text: str, line: int | None) -> int:
    """Offset of the start of 1-based ``line`` (0 for None)."""
    offset = 0
    for _ in range((line or 1) - 1):
        offset = text.index("\n", offset) + 1
    return offset


def _key_line(text: str, key: str, after_line: int | None = None) -> int | None:
    # [ \t]*, not \s*: \s would match the newlines of blank lines before the key
    pattern = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.MULTILINE)
    match = pattern.search(text, _line_start(text, after_line))
    return text.count("\n", 0, match.start()) + 1 if match else None


def _table_line(text: str, table: str) -> int | None:
    pattern = re.compile(rf"^[ \t]*\[{re.escape(table)}\]", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LocatedError(str(path), None, f"cannot read: {exc}") from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        detail = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise LocatedError(str(path), line, f"invalid TOML: {detail}") from exc


def find_config(root: Path) -> tuple[Path, str, dict[str, Any], int | None] | None:
    """The config file that applies to ``root``: (path, text, table, table line)."""
    own = root / "nightcrew.toml"
    if own.is_file():
        text, data = _read_toml(own)
        return own, text, data, None
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        text, data = _read_toml(pyproject)
        tool = data.get("tool", {})
        table = tool.get("nightcrew") if isinstance(tool, dict) else None
        if table is None:
            return None
        if not isinstance(table, dict):
            line = _key_line(text, "nightcrew")
            raise LocatedError(str(pyproject), line, "[tool.nightcrew] must be a table")
        return pyproject, text, table, _table_line(text, "tool.nightcrew")
    return None


def load_settings(
    root: Path, overrides: dict[str, Any] | None = None, *, agents: Collection[str] | None = None
) -> Settings:
    """Config file values, then ``overrides`` (command-line options that were
    given; None values are ignored). With ``agents`` (the registered backends'
    names), ``agent`` must be one of them."""
    values: dict[str, Any] = {}
    found = find_config(root)
    if found is not None:
        path, text, table, table_line = found
        check_policy_table(table, str(path), text, tool=path.name == "pyproject.toml")
        named = table.get("agent")
        if agents is not None and isinstance(named, str) and named not in agents:
            line = _key_line(text, "agent", table_line) or table_line
            raise LocatedError(str(path), line, _unknown_agent(named, agents))
        rules = check_routing_table(table, str(path), text, tool=path.name == "pyproject.toml")
        if rules is not None:
            table = {**table, "routing": rules}
        try:
            from_file = Settings(**table)
        except ValidationError as exc:
            error = exc.errors()[0]
            line = _error_line(path, text, error["loc"], table_line, error.get("input"))
            if not error["loc"]:  # a check of several keys: its words name them
                what = describe(error)
                line = _named_key_line(text, what, table_line)
            elif error["type"] == "extra_forbidden":
                what = f"unknown setting '{error['loc'][0]}'"
            else:
                what = f"{setting_name(error['loc'])}: {describe(error)}"
            raise LocatedError(str(path), line or table_line, what) from exc
        _check_pricing(path, text, from_file, table_line)
        values.update(table)
    for key, value in (overrides or {}).items():
        if value is not None and key in ADDED_ON_THE_COMMAND_LINE:
            values[key] = (*values.get(key, ()), *value)
        elif value is not None:
            values[key] = value
    given = (overrides or {}).get("agent")
    if agents is not None and isinstance(given, str) and given not in agents:
        raise LocatedError("command line", None, f"--{_unknown_agent(given, agents)}")
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        what = describe(error)
        loc = error["loc"]
        if loc and loc[0] in ADDED_ON_THE_COMMAND_LINE:
            loc = loc[:1]  # its items count the file's too: the option's name says it
        if loc:
            what = f"{setting_name(loc, option=True)}: {what}"
        raise LocatedError("command line", None, what) from exc
    settings._command_line = frozenset(k for k, v in (overrides or {}).items() if v is not None)
    return settings


def _unknown_agent(name: str, agents: Collection[str]) -> str:
    return f"agent: unknown agent backend '{name}' (known: {', '.join(agents)})"


def _pricing_line(path: Path, text: str, model: str, key: str | None) -> int | None:
    """The line of ``[pricing.<model>]`` (or its ``key``), quoted name or bare."""
    prefix = "tool.nightcrew." if path.name == "pyproject.toml" else ""
    line = _table_line(text, f"{prefix}pricing.{model}") or _table_line(
        text, f'{prefix}pricing."{model}"'
    )
    if line is None:  # an inline table, or a key of [pricing]
        table = _table_line(text, f"{prefix}pricing")
        return _key_line(text, "pricing") or _key_line(text, model, table) or table
    return (_key_line(text, key, line) if key else None) or line


def _named_key_line(text: str, message: str, start: int | None) -> int | None:
    """The line of the first setting ``message`` names that the file sets."""
    named = sorted(
        (found.start(), key)
        for key in Settings.model_fields
        if (found := re.search(rf"\b{key}\b", message)) is not None
    )
    for _, key in named:
        line = _key_line(text, key, start)
        if line is not None:
            return line
    return None


def _error_line(
    path: Path, text: str, loc: tuple[int | str, ...], start: int | None, value: Any = None
) -> int | None:
    if not loc:
        return None
    if loc[0] == "pricing" and len(loc) > 1:
        key = str(loc[2]) if len(loc) > 2 else None
        return _pricing_line(path, text, str(loc[1]), key)
    line = _key_line(text, str(loc[0]), start)
    if line is not None and len(loc) > 1 and isinstance(value, str) and value:
        return _value_line(text, line, value) or line  # a list written over several lines
    return line


def _value_line(text: str, from_line: int, value: str) -> int | None:
    """The line of the first string holding ``value`` at or after ``from_line``."""
    found = text.find(value, _line_start(text, from_line))
    return text.count("\n", 0, found) + 1 if found >= 0 else None


def _check_pricing(path: Path, text: str, settings: Settings, start: int | None) -> None:
    """Each ``[pricing.<model>]`` table must give all five rates, none negative."""
    from nightcrew.usage.pricing import model_price_from_config  # noqa: PLC0415

    for model, table in settings.pricing.items():
        try:
            model_price_from_config(model, table)
        except ValueError as exc:
            named = re.search(r"\] *: '(\w+)' must", str(exc))
            line = _pricing_line(path, text, model, named.group(1) if named else None)
            raise LocatedError(str(path), line or start, str(exc)) from exc
