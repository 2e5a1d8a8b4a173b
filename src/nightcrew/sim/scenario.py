"""The scenario format: what the scripted model answers, turn by turn.

A scenario is plain data (a JSON file or a dict) so that tests and the offline demo can
describe a whole agent session -- text, tool calls, token usage, delays, API errors --
without writing server code. Parsing is strict: unknown keys and wrong types raise
``ValueError`` with the path of the offending value (``scripts[1].turns[0].usage``), because
a typo in a test fixture should fail loudly rather than silently fall back to "OK.".

See docs/sim.md for the format with an example.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Upper bound for ``delay_s``: long enough to simulate a hung model, short enough that a
#: scenario typo (``delay_s: 60000``) cannot park a server thread for a day.
MAX_DELAY_S = 3600.0

#: Anthropic error ``type`` used when a scripted error gives only a status.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Usage:
    """Token counts reported for one model call.

    The defaults (100 in, 20 out, no cache) are small and distinct so that a test that
    forgets to script usage still sees plausible, non-zero numbers.
    """

    input_tokens: int = 100
    output_tokens: int = 20
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The Messages API ``usage`` object."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": self.ephemeral_1h_input_tokens,
            },
            "service_tier": "standard",
        }


@dataclass(frozen=True)
class TextBlock:
    """Assistant text."""

    text: str


@dataclass(frozen=True)
class ToolUseBlock:
    """A tool call the CLI will really execute; ``{cwd}`` in input strings is expanded."""

    name: str
    input: dict[str, Any]


Block = TextBlock | ToolUseBlock


@dataclass(frozen=True)
class ScriptedError:
    """An HTTP error returned instead of a message.

    ``times`` limits how often it is returned for its turn (per server); after that the
    turn's blocks are sent. Without it the error repeats forever, which is how a test makes
    the CLI exhaust its own retries.
    """

    status: int
    type: str
    message: str
    times: int | None = None


@dataclass(frozen=True)
class Turn:
    """One model response."""

    blocks: tuple[Block, ...]
    usage: Usage = Usage()
    model: str | None = None
    delay_s: float = 0.0
    error: ScriptedError | None = None
    #: Hold the reply until this file exists: a test releases a model call in
    #: flight when it is ready (no clock decides when the agent goes on).
    hold_until: str | None = None

    @property
    def stop_reason(self) -> str:
        """``tool_use`` when the CLI must run a tool and call back, else ``end_turn``."""
        if any(isinstance(b, ToolUseBlock) for b in self.blocks):
            return "tool_use"
        return "end_turn"


@dataclass(frozen=True)
class Match:
    """Which requests a script answers (all conditions must hold)."""

    all_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()
    model: str | None = None

    def matches(self, prompt: str, model: str) -> bool:
        """Case-insensitive substring test on the prompt; exact test on the model."""
        text = prompt.casefold()
        if self.model is not None and self.model != model:
            return False
        if not all(s.casefold() in text for s in self.all_of):
            return False
        return not any(s.casefold() in text for s in self.none_of)


@dataclass(frozen=True)
class Script:
    """A named conversation: turn ``i`` answers the request with ``i`` assistant messages."""

    name: str
    match: Match
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class Selection:
    """The outcome of matching one request: ``script`` is None for the fallback."""

    script: str | None
    turn_index: int
    turn: Turn


#: Sent once a script has run out of turns: ending the conversation is the safe default.
DONE_TURN = Turn(blocks=(TextBlock("Done."),))
#: Sent when no script matches and the scenario does not define ``fallback``.
DEFAULT_FALLBACK = Turn(blocks=(TextBlock("OK."),))


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario. Build it with :meth:`from_dict` or :func:`load_scenario`."""

    scripts: tuple[Script, ...] = ()
    fallback: Turn = DEFAULT_FALLBACK
    default_model: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Validate ``data`` and build a scenario; raise ``ValueError`` naming the problem."""
        obj = _object(data, "scenario", {"default_model", "scripts", "fallback"})
        default_model = _opt_str(obj.get("default_model"), "default_model")
        raw_scripts = _list(obj.get("scripts", []), "scripts")
        scripts = tuple(_script(s, f"scripts[{i}]") for i, s in enumerate(raw_scripts))
        seen: set[str] = set()
        for i, script in enumerate(scripts):
            if script.name in seen:
                raise ValueError(f"scripts[{i}].name: duplicate script name {script.name!r}")
            seen.add(script.name)
        fallback = DEFAULT_FALLBACK
        if obj.get("fallback") is not None:
            fallback = _turn(obj["fallback"], "fallback")
        return cls(scripts=scripts, fallback=fallback, default_model=default_model)

    def select(self, prompt: str, model: str, assistant_turns: int) -> Selection:
        """Pick the answer for a request: first matching script, turn = assistant count."""
        for script in self.scripts:
            if script.match.matches(prompt, model):
                if assistant_turns < len(script.turns):
                    return Selection(script.name, assistant_turns, script.turns[assistant_turns])
                return Selection(script.name, assistant_turns, DONE_TURN)
        return Selection(None, assistant_turns, self.fallback)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read a JSON scenario file. ``OSError`` if unreadable, ``ValueError`` if invalid."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    try:
        return Scenario.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


# --- validation helpers: each takes the value and its path for the error message ---------


def _object(value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object, got {_kind(value)}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    return value


def _list(value: Any, where: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where}: expected a list, got {_kind(value)}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _int(value: Any, where: str, *, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: expected an integer, got {_kind(value)}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{where}: must be {bound}, got {value}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _script(value: Any, where: str) -> Script:
    obj = _object(value, where, {"name", "match", "turns"})
    if "name" not in obj:
        raise ValueError(f"{where}: missing 'name'")
    name = _str(obj["name"], f"{where}.name")
    if not name:
        raise ValueError(f"{where}.name: must not be empty")
    match = _match(obj.get("match", {}), f"{where}.match")
    raw_turns = _list(obj.get("turns"), f"{where}.turns")
    if not raw_turns:
        raise ValueError(f"{where}.turns: must contain at least one turn")
    turns = tuple(_turn(t, f"{where}.turns[{i}]") for i, t in enumerate(raw_turns))
    return Script(name=name, match=match, turns=turns)


def _match(value: Any, where: str) -> Match:
    obj = _object(value, where, {"all", "none", "model"})

    def strings(key: str) -> tuple[str, ...]:
        items = _list(obj.get(key, []), f"{where}.{key}")
        return tuple(_str(s, f"{where}.{key}[{i}]") for i, s in enumerate(items))

    return Match(
        all_of=strings("all"),
        none_of=strings("none"),
        model=_opt_str(obj.get("model"), f"{where}.model"),
    )


def _turn(value: Any, where: str) -> Turn:
    obj = _object(
        value,
        where,
        {"blocks", "text", "tool", "tools", "usage", "model", "delay_s", "error", "hold_until"},
    )
    blocks = _turn_blocks(obj, where)
    error = None if obj.get("error") is None else _error(obj["error"], f"{where}.error")
    if error is not None and error.times is None and blocks:
        raise ValueError(
            f"{where}: has blocks that are never sent, because its error has no 'times'"
        )
    if error is None and not blocks:
        raise ValueError(f"{where}: needs at least one block (blocks, text, tool or tools)")
    if error is not None and error.times is not None and not blocks:
        raise ValueError(f"{where}: error has 'times', so the turn needs blocks to send after it")
    delay = obj.get("delay_s", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise ValueError(f"{where}.delay_s: expected a number, got {_kind(delay)}")
    if not 0 <= delay <= MAX_DELAY_S:
        raise ValueError(f"{where}.delay_s: must be between 0 and {MAX_DELAY_S:g}, got {delay}")
    usage = Usage() if obj.get("usage") is None else _usage(obj["usage"], f"{where}.usage")
    hold_until = _opt_str(obj.get("hold_until"), f"{where}.hold_until")
    if hold_until is not None and not os.path.isabs(hold_until):
        raise ValueError(f"{where}.hold_until: must be an absolute path, got {hold_until!r}")
    return Turn(
        blocks=blocks,
        usage=usage,
        model=_opt_str(obj.get("model"), f"{where}.model"),
        delay_s=float(delay),
        error=error,
        hold_until=hold_until,
    )


def _turn_blocks(obj: Mapping[str, Any], where: str) -> tuple[Block, ...]:
    shorthand = [k for k in ("text", "tool", "tools") if k in obj]
    if "blocks" in obj:
        if shorthand:
            raise ValueError(f"{where}: use either 'blocks' or {'/'.join(shorthand)}, not both")
        items = _list(obj["blocks"], f"{where}.blocks")
        return tuple(_block(b, f"{where}.blocks[{i}]") for i, b in enumerate(items))
    if "tool" in obj and "tools" in obj:
        raise ValueError(f"{where}: use either 'tool' or 'tools', not both")
    blocks: list[Block] = []
    if "text" in obj:
        blocks.append(TextBlock(_str(obj["text"], f"{where}.text")))
    if "tool" in obj:
        blocks.append(_tool(obj["tool"], f"{where}.tool", {"name", "input"}))
    if "tools" in obj:
        items = _list(obj["tools"], f"{where}.tools")
        blocks.extend(
            _tool(t, f"{where}.tools[{i}]", {"name", "input"}) for i, t in enumerate(items)
        )
    return tuple(blocks)


def _block(value: Any, where: str) -> Block:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object, got {_kind(value)}")
    kind = value.get("type")
    if kind == "text":
        obj = _object(value, where, {"type", "text"})
        return TextBlock(_str(obj.get("text"), f"{where}.text"))
    if kind == "tool_use":
        return _tool(value, where, {"type", "name", "input"})
    raise ValueError(f"{where}.type: expected 'text' or 'tool_use', got {kind!r}")


def _tool(value: Any, where: str, allowed: set[str]) -> ToolUseBlock:
    obj = _object(value, where, allowed)
    name = _str(obj.get("name"), f"{where}.name")
    if not name:
        raise ValueError(f"{where}.name: must not be empty")
    raw_input = obj.get("input", {})
    if not isinstance(raw_input, Mapping):
        raise ValueError(f"{where}.input: expected an object, got {_kind(raw_input)}")
    return ToolUseBlock(name=name, input=dict(raw_input))


_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_SPLIT = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")


def _usage(value: Any, where: str) -> Usage:
    obj = _object(value, where, {*_COUNTS, "cache_creation"})
    counts = {k: _int(obj[k], f"{where}.{k}") for k in _COUNTS if obj.get(k) is not None}
    raw_split = {} if obj.get("cache_creation") is None else obj["cache_creation"]
    split_obj = _object(raw_split, f"{where}.cache_creation", set(_SPLIT))
    split = {k: _int(v, f"{where}.cache_creation.{k}") for k, v in split_obj.items()}
    # The API reports the cache write total and its 5m/1h split; keep them consistent, since
    # the CLI prices the 1h part at the 1h rate and the rest of the total at the 5m rate.
    total = counts.get("cache_creation_input_tokens")
    one_h = split.get("ephemeral_1h_input_tokens", 0)
    five_m = split.get("ephemeral_5m_input_tokens", max((total or 0) - one_h, 0))
    if total is not None and five_m + one_h != total:
        raise ValueError(
            f"{where}: cache_creation_input_tokens ({total}) must equal "
            f"ephemeral_5m + ephemeral_1h ({five_m} + {one_h})"
        )
    return Usage(
        input_tokens=counts.get("input_tokens", Usage.input_tokens),
        output_tokens=counts.get("output_tokens", Usage.output_tokens),
        cache_read_input_tokens=counts.get("cache_read_input_tokens", 0),
        cache_creation_input_tokens=five_m + one_h,
        ephemeral_5m_input_tokens=five_m,
        ephemeral_1h_input_tokens=one_h,
    )


def _error(value: Any, where: str) -> ScriptedError:
    obj = _object(value, where, {"status", "type", "message", "times"})
    if "status" not in obj:
        raise ValueError(f"{where}: missing 'status'")
    status = _int(obj["status"], f"{where}.status", low=400, high=599)
    kind = obj.get("type")
    times = obj.get("times")
    return ScriptedError(
        status=status,
        type=_ERROR_TYPES.get(status, "api_error") if kind is None else _str(kind, f"{where}.type"),
        message=_str(obj.get("message", "Simulated error"), f"{where}.message"),
        times=None if times is None else _int(times, f"{where}.times", low=1),
    )
