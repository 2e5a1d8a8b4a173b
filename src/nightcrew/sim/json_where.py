"""The line of a value in JSON text, named by a path like ``scripts[0].turns[1].usage``
(the form :meth:`~nightcrew.sim.scenario.Scenario.from_dict` names a bad value by), so a
person is told the ``file:line`` to fix. Standard library only, like the rest of the sim."""

from __future__ import annotations

import json
import re

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_STEP = re.compile(r"\.?([A-Za-z_]\w*)|\[(\d+)\]")


def line_of(text: str, path: str, root: str = "scenario") -> int:
    """The line where the value at ``path`` starts in ``text`` (valid JSON); where the
    deepest part of it that exists starts when the rest is missing. ``root`` names the
    whole document."""
    pos = _skip(text, 0)
    steps = [] if path == root else _steps(path)
    for step in steps:
        child = _child(text, pos, step)
        if child is None:
            break
        pos = child
    return text.count("\n", 0, pos) + 1


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            break  # not a path after all: the deepest part read so far
        key, index = match.groups()
        steps.append(int(index) if index is not None else key)
        pos = match.end()
    return steps


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _after(text: str, pos: int) -> int:
    """From a value's start: the start of the next member, past any comma."""
    pos = _skip(text, _DECODER.raw_decode(text, pos)[1])
    return _skip(text, pos + 1) if text[pos] == "," else pos


def _child(text: str, pos: int, step: str | int) -> int | None:
    """Where the member ``step`` of the array or object starting at ``pos`` starts."""
    if isinstance(step, int):
        if text[pos] != "[":
            return None
        pos, number = _skip(text, pos + 1), 0
        while text[pos] != "]":
            if number == step:
                return pos
            pos, number = _after(text, pos), number + 1
        return None
    if text[pos] != "{":
        return None
    pos = _skip(text, pos + 1)
    while text[pos] != "}":
        key, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, _skip(text, pos) + 1)  # past the colon
        if key == step:
            return pos
        pos = _after(text, pos)
    return None
