"""Output for lists that may be long (a 20,000-feature backlog): aligned plain
columns and JSON with one item per line, each built as one string and written
once. Rich's tables measure and wrap every cell, which took seconds at that
size, and read ``[...]`` in a name as markup."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len

# Longer cells are written whole, not cut; they only stop setting the width.
MAX_WIDTH = 48


def _width(cell: str) -> int:
    """Terminal cells: a wide character (CJK, most emoji) takes two."""
    return len(cell) if cell.isascii() else cell_len(cell)


def columns(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """``rows`` under ``header``, each column as wide as its widest cell (up to
    :data:`MAX_WIDTH`) and two spaces apart; every line ends in a newline.
    Worked column by column, so an ASCII column is measured and padded in C."""
    padded = []
    for column in zip(header, *rows, strict=True):
        if "".join(column).isascii():
            width = min(max(map(len, column)), MAX_WIDTH)
            padded.append([cell.ljust(width) for cell in column])
        else:
            sizes = [_width(cell) for cell in column]
            width = min(max(sizes), MAX_WIDTH)
            padded.append([c + " " * (width - n) for c, n in zip(column, sizes, strict=True)])
    return "".join("  ".join(line).rstrip() + "\n" for line in zip(*padded, strict=True))


def json_lines(items: Iterable[Any]) -> str:
    """A JSON array with one item per line: as easy to read and to ``grep`` as
    indented JSON, and encoded by the C encoder (``indent`` is pure Python)."""
    body = ",\n".join(json.dumps(item) for item in items)
    return f"[\n{body}\n]" if body else "[]"
