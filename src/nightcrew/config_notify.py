"""Notification targets (the ``notify`` setting and ``--notify``): Apprise URLs,
checked before any agent starts and shown with their secrets masked.

A URL holds secrets (bot tokens, webhook keys, passwords), so nothing
nightcrew prints, stores or sends names it whole: people see Apprise's own
privacy form (:attr:`Target.shown`), events the scheme, and any text Apprise
wrote about a URL goes through :meth:`Target.scrub` first. Apprise is loaded
only when a project has targets: it brings some 260 service modules.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote

SERVICES_URL = "https://appriseit.com/services/"
_HIDDEN = "****"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PIECES = re.compile(r"[^/:@?&=#,;]+")
_MIN_SECRET = 3  # shorter pieces (ports, "v1") are not worth hiding and hide too much
_loaded: ModuleType | None = None
_loading = threading.Lock()


def apprise() -> ModuleType:
    """Apprise with every service module loaded, once. Some of them import
    modules the running Python deprecates (imghdr): that is Apprise's business,
    not a warning for the person running nightcrew, so it is not shown."""
    global _loaded  # noqa: PLW0603 - one load per process, shared by every thread
    with _loading:
        if _loaded is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import apprise as loaded  # noqa: PLC0415 - heavy: only when targets exist

                module: ModuleType = loaded  # used untyped, like every Apprise call here
                module.NotificationManager().load_modules()
            _loaded = module
        return _loaded


@dataclass(frozen=True)
class Target:
    """One notification target. ``url`` holds its secrets: it is given to
    Apprise and nowhere else."""

    url: str
    scheme: str  # as written: tgram, slack, json …
    shown: str  # Apprise's privacy form, secrets masked
    secrets: tuple[str, ...]  # the parts of ``url`` that ``shown`` hides

    def scrub(self, text: str) -> str:
        """``text`` (an error Apprise wrote) without the URL or its secrets."""
        return _hide(text, self.url, self.secrets, f"{self.scheme}://{_HIDDEN}")


class _Collect(logging.Handler):
    """Keeps what Apprise logs while it reads one URL (its only explanation)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def target(url: str) -> Target:
    """The target ``url`` names; ``ValueError`` (one sentence, no secret in it)
    when Apprise cannot use it."""
    text = url.strip()
    if not text:
        raise ValueError("is empty (give a notification URL, e.g. ntfy://my-topic)")
    found = _SCHEME.match(text)
    if found is None:
        raise ValueError(
            "is not a notification URL: expected SERVICE://…, e.g. ntfy://my-topic"
            f" (services: {SERVICES_URL})"
        )
    scheme = found.group(1).lower()
    module = apprise()
    if scheme not in module.NotificationManager():
        raise ValueError(f"'{scheme}://' is not a service Apprise knows (see {SERVICES_URL})")
    collect = _Collect()
    logger = logging.getLogger(module.LOGGER_NAME)
    logger.addHandler(collect)
    try:
        instance = module.Apprise.instantiate(text)
    finally:
        logger.removeHandler(collect)
    if instance is None:
        pieces = tuple(_PIECES.findall(text[found.end() :]))
        told = [_hide(r.getMessage(), text, pieces, f"{scheme}://…") for r in collect.records]
        why = f": {told[0].rstrip('.')}" if told else ""
        raise ValueError(f"Apprise cannot use this {scheme}:// URL{why}")
    private = str(instance.url(privacy=True))
    shown = _shown(text, private)
    secrets = tuple(
        piece
        for piece in dict.fromkeys(_PIECES.findall(text[found.end() :]))
        if len(piece) >= _MIN_SECRET and piece not in shown
    )
    return Target(url=text, scheme=scheme, shown=shown, secrets=secrets)


def targets(urls: tuple[str, ...] | list[str]) -> list[Target]:
    """Each URL's target, in order (each already checked by the settings)."""
    return [target(url) for url in urls]


def check(url: Any) -> str:
    """The settings' check of one ``notify`` entry (pydantic's after-validator)."""
    target(url)
    return str(url).strip()


def _shown(url: str, private: str) -> str:
    """Apprise's privacy form, with only the query options the person wrote:
    Apprise spells out every default, which says nothing about the target."""
    base, _, query = private.partition("?")
    written = {key for key, _ in parse_qsl(url.partition("?")[2], keep_blank_values=True)}
    kept = [
        f"{key}={value}"
        for key, value in parse_qsl(query, keep_blank_values=True)
        if key in written
    ]
    return f"{base}?{'&'.join(kept)}" if kept else base


def _hide(text: str, url: str, secrets: tuple[str, ...], instead: str) -> str:
    text = text.replace(url, instead)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < _MIN_SECRET:
            continue
        for form in {secret, unquote(secret)}:
            text = text.replace(form, _HIDDEN)
    return text
