"""``nightcrew serve``: the dashboard (see ``nightcrew.server``)."""

from __future__ import annotations

import click


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on. Anything but loopback is reachable from other"
    " machines and always asks for the token.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=int,
    help="The port to listen on (0: any free one).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in a browser.")
@click.option(
    "--no-token",
    is_flag=True,
    help="Ask for no token (loopback only: any program on this machine can then open it).",
)
@click.option(
    "--new-token",
    is_flag=True,
    help="Make a new token: every earlier URL, cookie and open page stops working.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Another name this machine is reached by (a VPN's), accepted in the Host header.",
)
def serve_command(
    host: str,
    port: int,
    open_browser: bool,
    no_token: bool,
    new_token: bool,
    allow_hosts: tuple[str, ...],
) -> None:
    """Serve the dashboard: every project nightcrew knows, and each one's
    latest run live (cost, lanes, merge queue, budgets). It prints the URL to
    open, with the token that lets a browser in; Ctrl-C stops it."""
    from nightcrew.cli.log_lines import log_line
    from nightcrew.server.serve import ServeOptions, serve

    options = ServeOptions(
        host=host,
        port=port,
        open_browser=open_browser,
        no_token=no_token,
        new_token=new_token,
        allow_hosts=allow_hosts,
    )
    serve(options, lambda line: click.echo(line, nl=True), log_line=log_line)
