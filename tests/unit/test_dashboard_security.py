"""Who may talk to the dashboard: every refusal is a 4xx with one line and
none of the projects' data. The app is driven through HTTP (httpx's ASGI
transport, the requests a browser would make); ``test_serve.py`` starts the
real server."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nightcrew import paths
from nightcrew.core.errors import BadInput
from nightcrew.server.app import create_app
from nightcrew.server.security import (
    COOKIE,
    TOKEN_FILE,
    Policy,
    allowed_hosts,
    derive,
    load_token,
    split_host,
)
from nightcrew.views.project_overview import project_key
from tests.dashboard_seed import Seeded

BASE = "http://127.0.0.1:8765"
SECRET_TITLE = "Payroll export"  # a feature's name: no refusal may show it


@pytest.fixture
def project(tmp_path: Path) -> Seeded:
    build = Seeded.build(tmp_path / "acme", [SECRET_TITLE])
    attempt = build.attempt(1, None)
    build.response(attempt, "0.0100")
    evidence = build.root / ".nightcrew" / "runs" / build.run.id / "batch-1" / "attempt-1"
    evidence.mkdir(parents=True)
    (evidence / "tests.log").write_text("1 passed\n")
    (tmp_path / "outside.txt").write_text("the neighbour's secrets\n")
    return build


@pytest.fixture
def token() -> str:
    return load_token(paths.user_home())[0]


def client_for(policy: Policy, **kwargs: object) -> TestClient:
    return TestClient(
        create_app(policy),  # type: ignore[arg-type]
        base_url=BASE,
        follow_redirects=False,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def anonymous(token: str) -> Iterator[TestClient]:
    with client_for(Policy(allowed_hosts("127.0.0.1"), token, token)) as client:
        yield client


@pytest.fixture
def browser(anonymous: TestClient, token: str) -> TestClient:
    """A client holding the cookie, as a browser after opening the printed URL."""
    first = anonymous.get(f"/?token={token}")
    assert first.status_code == 303
    return anonymous


def no_data(response: object, project: Seeded) -> None:
    text = response.text  # type: ignore[attr-defined]
    assert SECRET_TITLE not in text and str(project.root) not in text and "acme" not in text
    assert "$" not in text


def test_the_token_in_the_url_becomes_an_http_only_strict_cookie_and_leaves_the_url(
    anonymous: TestClient, token: str, project: Seeded
) -> None:
    response = anonymous.get(f"/p/{project_key(project.root)}/?token={token}&x=1")
    assert response.status_code == 303
    assert response.headers["location"] == f"/p/{project_key(project.root)}/?x=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert token not in cookie  # the cookie is derived from the token, not the token
    no_data(response, project)

    page = anonymous.get(response.headers["location"])
    assert page.status_code == 200 and SECRET_TITLE in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path",
    ["/", "/api/projects", "/static/app.css", "/static/vendor/htmx-2.0.11.min.js", "/events"],
)
def test_every_request_without_the_token_is_refused_even_static_and_events(
    anonymous: TestClient, project: Seeded, path: str
) -> None:
    response = anonymous.get(path)  # no Origin, no cookie, no token
    assert response.status_code == 401
    assert response.text.startswith("refused: no token")
    no_data(response, project)


def test_the_project_stream_asks_for_the_token_too(anonymous: TestClient, project: Seeded) -> None:
    response = anonymous.get(f"/p/{project_key(project.root)}/events")
    assert response.status_code == 401
    no_data(response, project)


def test_a_wrong_token_is_refused(anonymous: TestClient, project: Seeded) -> None:
    response = anonymous.get("/?token=guess")
    assert response.status_code == 401 and "set-cookie" not in response.headers
    no_data(response, project)
    forged = anonymous.get("/", headers={"Cookie": f"{COOKIE}=guess"})
    assert forged.status_code == 401


def test_a_bearer_token_works_for_scripts(
    anonymous: TestClient, token: str, project: Seeded
) -> None:
    response = anonymous.get("/api/projects", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    (card,) = response.json()["projects"]
    assert card["name"] == "acme" and card["today"]["cost_usd"] == 0.01


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io:8765", "192.168.1.7:8765"]
)
def test_a_wrong_host_is_refused_even_with_the_cookie(
    browser: TestClient, project: Seeded, host: str
) -> None:
    response = browser.get("/", headers={"Host": host})
    assert response.status_code == 400
    assert "Host" in response.text
    no_data(response, project)


def test_loopback_names_are_the_dashboards_hosts(browser: TestClient) -> None:
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST"):
        assert browser.get("/", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8765"]
)
def test_a_foreign_origin_is_refused_even_with_the_cookie(
    browser: TestClient, project: Seeded, origin: str
) -> None:
    response = browser.get("/api/projects", headers={"Origin": origin})
    assert response.status_code == 403
    no_data(response, project)


def test_its_own_origin_is_welcome(browser: TestClient) -> None:
    assert browser.get("/", headers={"Origin": BASE}).status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_request_from_another_site_is_refused(
    browser: TestClient, project: Seeded, site: str
) -> None:
    response = browser.get("/", headers={"Sec-Fetch-Site": site})
    assert response.status_code == 403
    no_data(response, project)
    for ok in ("same-origin", "none"):
        assert browser.get("/", headers={"Sec-Fetch-Site": ok}).status_code == 200


def test_a_state_changing_request_needs_the_csrf_token(browser: TestClient, token: str) -> None:
    refused = browser.post("/logout", headers={"Origin": BASE})
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = browser.post("/logout", headers={"Origin": BASE, "X-CSRF-Token": "x" * 64})
    assert wrong.status_code == 403
    page = browser.get("/")
    csrf = derive(token, "csrf")
    assert csrf in page.text  # the page gives it to htmx's requests
    done = browser.post("/logout", headers={"Origin": BASE, "X-CSRF-Token": csrf})
    assert done.status_code == 204
    assert f'{COOKIE}=""' in done.headers["set-cookie"] or "Max-Age=0" in done.headers["set-cookie"]


def test_no_page_posts_without_the_token_either(anonymous: TestClient, token: str) -> None:
    response = anonymous.post("/logout", headers={"X-CSRF-Token": derive(token, "csrf")})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "..%2F..%2F..%2Foutside.txt",
        "%2e%2e/%2e%2e/%2e%2e/%2e%2e/outside.txt",
        "x/..%2F..%2F..%2F..%2F..%2Foutside.txt",
        "%2Fetc%2Fpasswd",
        "..%5C..%5Coutside.txt",
    ],
)
def test_a_path_outside_the_projects_evidence_is_refused(
    browser: TestClient, project: Seeded, path: str
) -> None:
    response = browser.get(f"/p/{project_key(project.root)}/files/{path}")
    assert response.status_code == 400
    assert response.text == "refused: a path outside the project's run evidence\n"


def test_a_symlink_out_of_the_evidence_is_refused(browser: TestClient, project: Seeded) -> None:
    runs = project.root / ".nightcrew" / "runs"
    (runs / "escape.txt").symlink_to(project.root.parent / "outside.txt")
    response = browser.get(f"/p/{project_key(project.root)}/files/escape.txt")
    assert response.status_code == 400 and "neighbour" not in response.text
    assert "outside the project's run evidence" in response.text


def test_an_evidence_file_is_served_as_text(browser: TestClient, project: Seeded) -> None:
    path = f"{project.run.id}/batch-1/attempt-1/tests.log"
    response = browser.get(f"/p/{project_key(project.root)}/files/{path}")
    assert response.status_code == 200 and response.text == "1 passed\n"
    assert response.headers["content-type"].startswith("text/plain")
    missing = browser.get(f"/p/{project_key(project.root)}/files/{project.run.id}/nope.log")
    assert missing.status_code == 404


def test_only_registered_projects_are_served(browser: TestClient, project: Seeded) -> None:
    assert browser.get("/p/000000000000/").status_code == 404
    assert browser.get("/p/000000000000/files/x.log").status_code == 404


def test_without_a_token_loopback_still_checks_host_origin_and_csrf(
    token: str, project: Seeded
) -> None:
    with client_for(Policy(allowed_hosts("127.0.0.1"), None, token)) as client:
        assert client.get("/").status_code == 200
        assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
        assert client.get("/", headers={"Origin": "http://evil.example"}).status_code == 403
        assert client.post("/logout").status_code == 403


# ---- the token file and hosts ---------------------------------------------------------


def test_the_token_is_made_once_private_and_kept(tmp_path: Path) -> None:
    token, made = load_token(tmp_path)
    path = tmp_path / TOKEN_FILE
    assert made and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(tmp_path) == (token, False)
    path.chmod(0o644)
    assert load_token(tmp_path)[0] == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # made private again
    renewed, made = load_token(tmp_path, renew=True)
    assert made and renewed != token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [TOKEN_FILE]


def test_a_damaged_token_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / TOKEN_FILE).write_text("short\n")
    with pytest.raises(BadInput, match="damaged: start with --new-token"):
        load_token(tmp_path)


def test_host_headers_are_split_from_their_ports() -> None:
    assert split_host("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert split_host("[::1]:80") == ("::1", 80)
    assert split_host("LocalHost.") == ("localhost", None)
    assert split_host("::1") == ("::1", None)
    assert "evil.example" not in allowed_hosts("127.0.0.1")
    assert "my-laptop.tailnet" in allowed_hosts("127.0.0.1", ["My-Laptop.tailnet"])
    assert os.uname().nodename.lower() in allowed_hosts("0.0.0.0")
