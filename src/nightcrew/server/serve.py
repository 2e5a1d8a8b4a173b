"""Starting the dashboard: the checks that come before any socket, the
token, the listening socket, the URL to open, then uvicorn until Ctrl-C.

``--host`` other than loopback is only ever what the person typed, and it
always asks for the token: ``--no-token`` (for a browser on this machine
alone) is refused there. The socket is bound here, before uvicorn starts,
so a port in use is one line, and ``--port 0`` can say which port it got.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nightcrew import paths
from nightcrew.core.errors import BadInput
from nightcrew.server.render import LineOf
from nightcrew.server.security import (
    Policy,
    allowed_hosts,
    is_loopback,
    is_wildcard,
    load_token,
)


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    open_browser: bool = False
    no_token: bool = False
    new_token: bool = False
    allow_hosts: Sequence[str] = ()


def check(options: ServeOptions) -> None:
    """Refuse what must not start, before anything is written or bound."""
    if options.no_token and not is_loopback(options.host):
        raise BadInput(
            f"--no-token is refused with --host {options.host}: a dashboard other machines"
            " can reach always asks for its token"
        )
    if not 0 <= options.port <= 65535:
        raise BadInput(f"--port {options.port}: not a port (0-65535; 0 picks a free one)")


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    try:
        sock = socket.create_server((host.strip("[]"), port), family=family)
    except OSError as exc:
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    # Every response goes out at once, not after the client's delayed ACK (40 ms
    # on each request of a kept-alive connection): asyncio turns Nagle off only
    # on sockets it made itself, and connections inherit this one's setting.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def url_of(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if is_wildcard(host) else host.strip("[]")
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(
    options: ServeOptions, say: Callable[[str], None], *, log_line: LineOf | None = None
) -> None:
    """Run the dashboard until interrupted. ``log_line`` words the timeline's
    events as ``nightcrew logs`` does (the cli lends it: it sits above)."""
    import uvicorn  # noqa: PLC0415 - the web server loads only for `serve`

    from nightcrew.server.app import create_app  # noqa: PLC0415

    check(options)
    home = paths.user_home()
    token, made = load_token(home, renew=options.new_token)
    policy = Policy(
        hosts=allowed_hosts(options.host, options.allow_hosts),
        token=None if options.no_token else token,
        secret=token,
    )
    sock = listen(options.host, options.port)
    port = sock.getsockname()[1]
    url = url_of(options.host, port, policy.token)
    say(f"nightcrew dashboard: {url}")
    if policy.token is None:
        say("no token asked (--no-token): any program on this machine can open it")
    else:
        say(
            f"the token in this URL opens it ({'new, ' if made else ''}kept in"
            f" {home / 'dashboard-token'}); keep it private"
        )
    if not is_loopback(options.host):
        say(
            f"warning: listening on {options.host}, reachable from other machines, over plain"
            " HTTP: use a network you trust, or a tunnel (ssh -L, a VPN)"
        )
    say("Ctrl-C stops it")
    config = uvicorn.Config(
        create_app(policy, log_line=log_line),
        log_level="warning",
        access_log=False,  # its lines would carry ?token= on a first visit
        server_header=False,
        lifespan="off",
        timeout_graceful_shutdown=1,  # open event streams never end on their own
    )
    if options.open_browser:
        import webbrowser  # noqa: PLC0415

        webbrowser.open(url)  # the socket listens already: the browser's request waits for it
    uvicorn.Server(config).run(sockets=[sock])
