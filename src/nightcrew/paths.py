"""Where nightcrew keeps what is not inside one project.

``NIGHTCREW_HOME`` moves everything (tests and CI set it to a temp dir);
otherwise the user data dir of this platform (``~/.local/share/nightcrew``).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_path


def user_home() -> Path:
    override = os.environ.get("NIGHTCREW_HOME")
    if override:
        return Path(override).expanduser()
    return user_data_path("nightcrew", appauthor=False)


def global_db_path() -> Path:
    """The global usage database: the project registry and imported Claude Code
    transcripts."""
    return user_home() / "usage.db"
