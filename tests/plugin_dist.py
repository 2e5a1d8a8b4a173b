"""Third-party plugins on disk, as pip would install them: a module and a
``.dist-info`` whose ``entry_points.txt`` names it in the ``nightcrew`` group.
Put the directory on ``sys.path`` (or ``PYTHONPATH`` for a subprocess)."""

from __future__ import annotations

from pathlib import Path

# A backend that "works" without any model: it writes a file into the project
# and ends its session successfully, as a real agent's events would say.
FILE_WRITER = """
from nightcrew.agents.base import Capabilities, Finished, SessionStarted, Text
from nightcrew.agents.hooks import BackendInfo, hookimpl

CAPABILITIES = Capabilities(reports_cost=False, resumable_sessions=False,
                            harness_tools=False, tool_policy=False)


class FileWriter:
    name = "filewriter"
    capabilities = CAPABILITIES
    default_allowed_tools = ()

    def tool_name(self, tool):
        return tool

    async def run(self, request):
        first = request.prompt.splitlines()[0]
        (request.cwd / "written.txt").write_text(f"{request.model}: {first}\\n")
        yield SessionStarted("filewriter-1", request.model)
        yield Text("I wrote written.txt")
        yield Finished(status="success", result_subtype=None, is_error=False,
                       result_text="done", reported_cost_usd=None, model_usage=())


@hookimpl
def nightcrew_backends():
    return [BackendInfo("filewriter", CAPABILITIES, FileWriter, "writes written.txt")]
"""


def write_plugin(where: Path, name: str, source: str, *, target: str | None = None) -> Path:
    """Module ``<name>_plugin`` holding ``source``, declared as entry point
    ``name`` (pointing at ``target``, the module by default); returns ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    module = f"{name}_plugin"
    (where / f"{module}.py").write_text(source)
    dist = where / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[nightcrew]\n{name} = {target or module}\n")
    return where
