"""Who may talk to the dashboard, checked on every request before any route.

The dashboard shows what agents did in your projects (and later steers
them), so a page from another site must never reach it, not even on
loopback. Each request passes, in order:

1. **Host** is the bound address or a loopback name (no DNS rebinding: a
   hostile name resolving to 127.0.0.1 is refused).
2. **Sec-Fetch-Site**, when the browser sends it, is ``same-origin`` or
   ``none`` (typed, bookmarked); ``cross-site`` and ``same-site`` (another
   port of this host) are refused.
3. **Origin**, when present, is this very origin (the scheme and Host the
   request came to).
4. **The token**: ``?token=`` (exchanged for an HttpOnly, SameSite=Strict
   cookie, then a redirect to the same address without it), the cookie, or
   ``Authorization: Bearer``. Static files and the event streams too.
5. **CSRF**: a request that changes state (any method but GET/HEAD) carries
   ``X-CSRF-Token``, which only the dashboard's own pages know.

A refusal is one short line of text with a 4xx status: never data. The
token lives in ``NIGHTCREW_HOME/dashboard-token`` (0600), created at the
first start; the cookie and the CSRF token are derived from it, so
``--new-token`` makes every old URL, cookie and page worthless at once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from nightcrew.core.errors import BadInput

TOKEN_FILE = "dashboard-token"
COOKIE = "nightcrew_dashboard"
CSRF_HEADER = "x-csrf-token"
COOKIE_DAYS = 30
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_SAFE_FETCH_SITES = frozenset({"same-origin", "none"})
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_TOKEN_BYTES = 32

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Every response says: no framing, no sniffing, no referrer (a URL may carry the
# token), scripts and styles from this origin only.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        b" connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
)


# ---- the token ----------------------------------------------------------------------


def load_token(home: Path, *, renew: bool = False) -> tuple[str, bool]:
    """The dashboard's token, and whether it was made now. Created at the
    first start (or with ``renew``) with mode 0600; a file others may read is
    made private again."""
    path = home / TOKEN_FILE
    home.mkdir(parents=True, exist_ok=True)
    if renew or not path.exists():
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        fresh = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        os.replace(fresh, path)
        return token, True
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
        token = path.read_text().strip()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the dashboard token: {exc.strerror}") from exc
    if len(token) < _TOKEN_BYTES:
        raise BadInput(f"{path}: the dashboard token is damaged: start with --new-token")
    return token, False


def derive(token: str, purpose: str) -> str:
    """A value only the token's holder can make: the cookie, the CSRF token."""
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()


# ---- hosts ----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a request's Host may carry: loopback names, the bound address,
    and for a wildcard bind this machine's names and addresses."""
    names = set(_LOOPBACK_NAMES)
    names.add(host.strip("[]").lower())
    if is_wildcard(host):
        import socket  # noqa: PLC0415 - only for a wildcard bind

        import psutil  # noqa: PLC0415

        names.update({socket.gethostname().lower(), socket.getfqdn().lower()})
        for addresses in psutil.net_if_addrs().values():
            for a in addresses:
                if a.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(a.address.split("%")[0].lower())
    names.update(e.strip("[]").lower() for e in extra)
    names.discard("")
    return frozenset(names)


def split_host(value: str) -> tuple[str, int | None]:
    """``"[::1]:8765"`` → ``("::1", 8765)``; a bad port is None."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


# ---- the guard ------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """What the guard checks against."""

    hosts: frozenset[str]
    token: str | None  # None: no token asked (only ever on loopback)
    secret: str  # the token the cookie and CSRF token derive from (kept even without one)

    @property
    def cookie_value(self) -> str:
        return derive(self.secret, "cookie")

    @property
    def csrf_token(self) -> str:
        return derive(self.secret, "csrf")


class Guard:
    """ASGI middleware: the checks of this module's docstring, then the app."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # none are served
            return
        if scope["type"] != "http":
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query:
            await self._exchange(scope, send, query)
            return
        await self.app(scope, receive, _with_headers(send, SECURITY_HEADERS))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host, _ = split_host(headers.get("host", ""))
        if host not in self.policy.hosts:
            return 400, "refused: this Host is not the dashboard's address"
        site = headers.get("sec-fetch-site")
        if site is not None and site not in _SAFE_FETCH_SITES:
            return 403, "refused: a request from another site"
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, headers.get("host", ""), scope):
            return 403, "refused: a request from another origin"
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query:
            if self.policy.token is None or not _equal(query["token"], self.policy.token):
                return 401, (
                    "refused: this token is not the dashboard's (--new-token changes it):"
                    " open the URL `nightcrew serve` printed"
                )
            return None
        if self.policy.token is not None and not self._authenticated(headers):
            return 401, "refused: no token: open the URL `nightcrew serve` printed"
        if scope["method"] not in _SAFE_METHODS and not _equal(
            headers.get(CSRF_HEADER, ""), self.policy.csrf_token
        ):
            return 403, "refused: no CSRF token (send X-CSRF-Token from the dashboard's page)"
        return None

    def _authenticated(self, headers: dict[str, str]) -> bool:
        assert self.policy.token is not None
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer ") and _equal(bearer[7:].strip(), self.policy.token):
            return True
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except CookieError:  # a garbled Cookie header is no cookie
            return False
        morsel = cookies.get(COOKIE)
        return morsel is not None and _equal(morsel.value, self.policy.cookie_value)

    async def _exchange(self, scope: Scope, send: Send, query: dict[str, str]) -> None:
        """The token in the URL becomes the cookie; the browser is sent to the
        same address without it (so it leaves the address bar and history)."""
        if scope["method"] not in _SAFE_METHODS:
            await _refuse(send, 405, "refused: exchange the token with a GET")
            return
        rest = {k: v for k, v in query.items() if k != "token"}
        location = scope.get("root_path", "") + scope["path"]
        if rest:
            location += "?" + urlencode(rest)
        cookie = (
            f"{COOKIE}={self.policy.cookie_value}; Path=/; HttpOnly; SameSite=Strict;"
            f" Max-Age={COOKIE_DAYS * 86400}"
        )
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name; a repeated security header
    is kept joined, so it never matches what one value must equal."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _same_origin(origin: str, host_header: str, scope: Scope) -> bool:
    """``origin`` is the scheme, host and port this request came to."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    scheme = scope.get("scheme", "http")
    if parts.scheme != scheme or not parts.hostname:
        return False
    default = 443 if scheme == "https" else 80
    host, host_port = split_host(host_header)
    return parts.hostname.lower() == host and (port or default) == (host_port or default)


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _with_headers(send: Send, extra: tuple[tuple[bytes, bytes], ...]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return wrapped


async def _refuse(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
