"""``nightcrew serve`` as a person runs it: the printed URL opens the
dashboard in one step, the event stream resumes exactly after the
``Last-Event-ID`` it is given and follows what another process writes to
the store, Ctrl-C stops it, and what must not start is one line, exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from nightcrew.core import events as ev
from nightcrew.views.project_overview import project_key
from tests.dashboard_seed import Seeded
from tests.dashboard_server import messages, serving

WAIT_S = 30.0


def test_the_printed_url_opens_the_dashboard_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login"])
    with serving() as server:
        assert server.url.startswith("http://127.0.0.1:") and "?token=" in server.url
        with server.client() as client:
            page = client.get("/")
            assert page.status_code == 200
            assert 'href="/p/' + project_key(build.root) in page.text
            project = client.get(f"/p/{project_key(build.root)}/")
            assert project.status_code == 200 and "<title>shop · nightcrew</title>" in project.text
        assert httpx.get(server.base + "/").status_code == 401  # a client without it
    assert server.process.returncode == 130, server.sigint


def test_the_stream_resumes_after_last_event_id_and_follows_another_process(
    tmp_path: Path,
) -> None:
    build = Seeded.build(tmp_path / "shop", ["Login", "Cart"])
    attempt = build.attempt(1, None)
    build.tool(attempt, "Read", file_path="a.py")  # seen before the reconnect
    seen_last = max(row[0] for row in build.store.db.execute("SELECT id FROM events"))
    build.tool(attempt, "Edit", file_path="b.py")  # missed while away
    build.response(attempt, "0.0500")  # missed too, a quiet one
    build.tool(attempt, "Bash", command="pytest -q")

    with serving() as server, server.client() as client:
        url = f"/p/{project_key(build.root)}/events"
        headers = {"Last-Event-ID": str(seen_last)}
        with client.stream("GET", url, headers=headers, timeout=WAIT_S) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = messages(response)
            activity = []
            for message in stream:
                if message.event == "activity":
                    activity.append(message)
                if message.event == "cost":
                    break
            # the events after the one the browser had, once each, in order, with their ids
            assert [m.id for m in activity] == [seen_last + 1, seen_last + 3]
            assert "Edit: b.py" in activity[0].data and "Bash: pytest -q" in activity[1].data
            assert "$0.0500" in message.data and message.id == seen_last + 3

            # another process (this test) writes: the stream follows, with the store's ids
            build.response(attempt, "0.0250")  # its usage row, then its (quiet) event
            usage_id = seen_last + 4
            badge, last_id, lines = "", None, []
            for message in stream:
                badge = message.data if message.event == "cost" else badge
                last_id = message.id if message.id is not None else last_id
                lines += [message] if message.event == "activity" else []
                if "$0.0750" in badge and last_id == usage_id:
                    break
            assert lines == []  # a usage event moves the badge and the id, adds no line
            build.emit(
                ev.ItemWaits(run_id=build.run.id, item="feature #2", reason="shares a.py", other=1)
            )
            for message in stream:
                if message.event == "activity":
                    break
            assert message.id == usage_id + 1 and "shares a.py" in message.data


def test_no_token_is_refused_on_any_address_but_loopback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nightcrew", "serve", "--host", "0.0.0.0", "--no-token"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "nightcrew: --no-token is refused with --host 0.0.0.0: a dashboard other machines"
        " can reach always asks for its token\n"
    )
    assert done.stdout == ""


def test_a_port_in_use_is_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "nightcrew", "serve", "--port", str(port)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 2
    assert done.stderr.startswith(f"nightcrew: cannot listen on 127.0.0.1:{port}: ")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_that_is_not_one_is_refused(port: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nightcrew", "serve", "--port", port],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"nightcrew: --port {port}: not a port")
