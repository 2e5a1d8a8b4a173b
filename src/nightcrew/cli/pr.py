"""``nightcrew pr``: a pull request's description of a night's work, printed,
written to a file, or handed to ``gh pr create``."""

from __future__ import annotations

from pathlib import Path

import click

# How long `gh pr create` may take (it pushes nothing; it talks to GitHub).
GH_TIMEOUT_S = 120.0


@click.command("pr")
@click.option("--run", "run_id", metavar="ID", help="The run or build (default: the latest).")
@click.option(
    "--feature", "feature", metavar="ID", help="Only this feature, from the latest build of it."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the description to FILE instead of printing it.",
)
@click.option("--open", "open_pr", is_flag=True, help="Open the pull request with `gh pr create`.")
@click.option("--base", metavar="BRANCH", help="With --open: the branch to merge into.")
@click.option("--head", metavar="BRANCH", help="With --open: the branch with the work.")
def pr_command(
    run_id: str | None,
    feature: str | None,
    output: Path | None,
    open_pr: bool,
    base: str | None,
    head: str | None,
) -> None:
    """Describe a run's work as a pull request: what was asked, the commits and
    files, the gates that passed, what it cost, and what was left undone."""
    from nightcrew.cli.backlog_common import parse_ids, write_atomically
    from nightcrew.core.errors import BadInput
    from nightcrew.project import Project
    from nightcrew.store.records import Store
    from nightcrew.views.pull_request import pull_request
    from nightcrew.views.pull_request_md import body, markdown

    if (base or head) and not open_pr:
        raise BadInput("--base and --head go with --open")
    feature_id = None
    if feature is not None:
        ids = parse_ids((feature,))
        if len(ids) != 1:
            raise BadInput(f"--feature {feature}: give one feature id")
        feature_id = ids[0]
    project = Project.find(Path.cwd())
    if not project.store_path.exists():
        raise BadInput(f"{project.root}: no nightcrew run here yet")
    store = Store.open(project.store_path, create=False)
    try:
        described = pull_request(store, project.root, run_id=run_id, feature_id=feature_id)
    finally:
        store.close()
    if open_pr:
        _check_can_open(project.root)
    if output is not None:
        write_atomically(output, markdown(described))
        click.echo(f"wrote {output}", err=True)
    elif not open_pr:
        click.echo(markdown(described), nl=False)
    if open_pr:
        url = _open(project.root, described.title, body(described), base=base, head=head)
        click.echo(url)


def _check_can_open(root: Path) -> None:
    """``--open`` needs gh and a remote: say which is missing before anything is written."""
    import shutil

    from nightcrew import gitops
    from nightcrew.core.errors import BadInput

    missing = []
    if shutil.which("gh") is None:
        missing.append("`gh` is not on PATH (https://cli.github.com)")
    if not gitops.remotes(root):
        missing.append("this repository has no remote (`git remote add origin URL`)")
    if missing:
        raise BadInput("--open cannot open a pull request: " + " and ".join(missing))


def _open(root: Path, title: str, text: str, *, base: str | None, head: str | None) -> str:
    """Run ``gh pr create`` with the body in a temporary file; the URL it printed."""
    import tempfile

    from nightcrew import proc
    from nightcrew.core.errors import NightcrewError

    argv = ["gh", "pr", "create", "--title", title]
    with tempfile.TemporaryDirectory(prefix="nightcrew-pr-") as directory:
        body_file = Path(directory) / "body.md"
        body_file.write_text(text, encoding="utf-8")
        argv += ["--body-file", str(body_file)]
        if base:
            argv += ["--base", base]
        if head:
            argv += ["--head", head]
        done = proc.run(argv, cwd=root, timeout_s=GH_TIMEOUT_S)
    lines = [line.strip() for line in done.output.splitlines() if line.strip()]
    if done.timed_out:
        raise NightcrewError(f"gh pr create did not finish in {GH_TIMEOUT_S:.0f}s")
    if done.exit_code != 0:
        said = lines[-1] if lines else "(no output)"
        raise NightcrewError(f"gh pr create failed (exit {done.exit_code}): {said}")
    urls = [line for line in lines if line.startswith(("https://", "http://"))]
    return urls[-1] if urls else (lines[-1] if lines else "gh pr create printed nothing")
