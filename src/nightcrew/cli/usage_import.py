"""``nightcrew usage import`` for the click command line: the work and the output
are in :mod:`nightcrew.usage.import_command`, which the ``nightcrew`` executable
also runs without click (see :mod:`nightcrew.launch`)."""

from __future__ import annotations

from nightcrew.usage.import_command import run_import

__all__ = ["run_import"]
