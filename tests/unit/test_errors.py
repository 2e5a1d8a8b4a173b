"""An unexpected error reaches a person as one line naming a file with the details."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nightcrew.core.errors import ExitCode, report_crash


def test_a_crash_is_one_line_and_a_file_with_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        raise ValueError("the disk is a teapot")
    except ValueError as exc:
        code = report_crash(exc)
    err = capsys.readouterr().err
    assert code == ExitCode.WORK_FAILED
    assert len(err.strip().splitlines()) == 1
    found = re.search(r"details in (\S+);", err)
    assert err.startswith("nightcrew: internal error: ValueError: the disk is a teapot")
    assert found is not None
    details = Path(found.group(1))
    try:
        text = details.read_text()
        assert "Traceback" in text and "the disk is a teapot" in text
    finally:
        details.unlink()
