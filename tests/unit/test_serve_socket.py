"""The dashboard's listening socket hands connections that send each
response at once: without TCP_NODELAY every request after the first on a
kept-alive connection waited ~40 ms for the client's delayed ACK (asyncio
turns Nagle off only on sockets it made itself; ``bench/dashboard.py``)."""

from __future__ import annotations

import socket

from nightcrew.server.serve import listen


def test_connections_of_the_dashboards_socket_do_not_wait_for_acks() -> None:
    server = listen("127.0.0.1", 0)
    try:
        with socket.create_connection(server.getsockname()[:2], timeout=10):
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.close()
