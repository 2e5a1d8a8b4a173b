"""Where nightcrew keeps what is not inside one project.

``NIGHTCREW_HOME`` moves everything (tests and CI set it to a temp dir);
otherwise the user data dir of this platform (``~/.local/share/nightcrew``).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (9 ms)

if TYPE_CHECKING:
    from pathlib import Path


def user_home() -> Path:
    from pathlib import Path  # noqa: PLC0415

    override = os.environ.get("NIGHTCREW_HOME")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_path  # noqa: PLC0415 - only when not overridden

    return user_data_path("nightcrew", appauthor=False)


def global_db_file() -> str:
    """:func:`global_db_path` as a string, without importing pathlib when
    ``NIGHTCREW_HOME`` is set (the fast path of ``usage import`` wants every ms)."""
    override = os.environ.get("NIGHTCREW_HOME")
    if override:
        return os.path.join(os.path.expanduser(override), "usage.db")
    return str(global_db_path())


def global_db_path() -> Path:
    """The global usage database: the project registry and imported Claude Code
    transcripts."""
    return user_home() / "usage.db"
