"""``/p/{key}/files/{path}``: a file of a run's evidence (gate logs, the
prompt, the agent's stderr), as text. Only files under the project's
``.nightcrew/runs/`` are served: a path with ``..``, an absolute one, or one
that leads out through a symbolic link is refused before anything is read."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from nightcrew.server.project_page import project_root
from nightcrew.server.projects import evidence_dir

router = APIRouter()


def evidence_file(root: Path, relative: str) -> Path:
    """The file ``relative`` names under the project's evidence; HTTP 400 for
    a path that tries to leave it, 404 for one that is not a file there."""
    parts = PurePosixPath(relative).parts
    if (
        not relative
        or "\\" in relative
        or "\x00" in relative
        or relative.startswith("/")
        or any(p in ("..", ".") for p in parts)
    ):
        raise HTTPException(400, "refused: a path outside the project's run evidence")
    base = evidence_dir(root).resolve()
    try:
        target = (base / Path(*parts)).resolve(strict=True)
    except (OSError, RuntimeError):
        raise HTTPException(404, "no such file in the project's run evidence") from None
    if not target.is_relative_to(base):
        raise HTTPException(400, "refused: a path outside the project's run evidence")
    if not target.is_file():
        raise HTTPException(404, "no such file in the project's run evidence")
    return target


@router.get("/p/{key}/files/{relative:path}")
def run_file(key: str, relative: str) -> FileResponse:
    target = evidence_file(project_root(key), relative)
    return FileResponse(
        target,
        media_type="text/plain; charset=utf-8",
        content_disposition_type="inline",
        filename=target.name,
        headers={"Cache-Control": "no-store"},
    )
