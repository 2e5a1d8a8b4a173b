"""A killed agent's unfinished atomic writes."""

from __future__ import annotations

from pathlib import Path

from nightcrew.debris import is_agent_temp, remove_new


def test_only_claude_codes_temp_shape_counts() -> None:
    assert is_agent_temp("stock.py.tmp.31337.1f2e3d")
    assert is_agent_temp("src/app/stock.py.tmp.7.18c4f2a9b1")
    assert not is_agent_temp("stock.py")
    assert not is_agent_temp("notes.tmp")
    assert not is_agent_temp("data.tmp.backup")
    assert not is_agent_temp("dir.tmp.1.ab/file.py")
    assert not is_agent_temp(".tmp.1.ab")


def test_remove_new_spares_what_was_there_before(tmp_path: Path) -> None:
    old = tmp_path / "old.py.tmp.1.aa"
    new = tmp_path / "new.py.tmp.2.bb"
    other = tmp_path / "new.py"
    for path in (old, new, other):
        path.write_text("x")
    now = ["old.py.tmp.1.aa", "new.py.tmp.2.bb", "new.py"]
    assert remove_new(tmp_path, now, before=["old.py.tmp.1.aa"]) == ["new.py.tmp.2.bb"]
    assert old.exists() and other.exists() and not new.exists()
