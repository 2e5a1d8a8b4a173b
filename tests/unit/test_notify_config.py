"""The ``notify`` setting and ``--notify``: a URL Apprise cannot use is one
located error before anything runs, targets are shown with their secrets
masked, and no secret is stored with the run's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightcrew.config import load_settings
from nightcrew.config_notify import target
from nightcrew.core.errors import LocatedError


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text)
    return path


def error(root: Path, overrides: dict[str, object] | None = None) -> LocatedError:
    with pytest.raises(LocatedError) as raised:
        load_settings(root, overrides)
    return raised.value


def test_targets_from_the_file_and_the_command_line_add_up(tmp_path: Path) -> None:
    write(tmp_path, "nightcrew.toml", 'notify = ["json://127.0.0.1:9/", "ntfy://my-topic"]\n')
    settings = load_settings(tmp_path, {"notify": ("mailto://me:pw1234@example.com",)})
    assert settings.notify == (
        "json://127.0.0.1:9/",
        "ntfy://my-topic",
        "mailto://me:pw1234@example.com",
    )
    assert load_settings(tmp_path / "nowhere").notify == ()


def test_the_settings_stored_with_a_run_hold_no_notification_url(tmp_path: Path) -> None:
    write(tmp_path, "nightcrew.toml", 'notify = ["json://bob:hunter22@127.0.0.1:9/"]\n')
    snapshot = load_settings(tmp_path).snapshot()
    assert "notify" not in snapshot
    assert "hunter22" not in str(snapshot)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            'model = "m"\nnotify = [\n  "ntfy://ok",\n  "tgram://bad",\n]\n',
            4,
            "notify item 2: Apprise cannot use this tgram:// URL: Unparseable Telegram URL"
            " tgram://…",
        ),
        (
            'notify = ["foo://x"]\n',
            1,
            "notify item 1: 'foo://' is not a service Apprise knows"
            " (see https://appriseit.com/services/)",
        ),
        (
            '\nnotify = ["slack://x"]\n',
            2,
            "notify item 1: Apprise cannot use this slack:// URL: An invalid Slack (second)"
            " Token (None) was specified",
        ),
        ('notify = ["my-topic"]\n', 1, "notify item 1: is not a notification URL"),
        ('notify = [""]\n', 1, "notify item 1: is empty"),
        ('notify = "ntfy://t"\n', 1, "notify: must be a list"),
    ],
)
def test_a_url_apprise_cannot_use_names_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, "nightcrew.toml", text)
    located = error(tmp_path)
    assert str(located).startswith(f"{path}:{line}: {message}"), str(located)


def test_a_bad_url_in_pyproject_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pyproject.toml",
        '[tool.other]\nnotify = ["foo://x"]\n\n[tool.nightcrew]\nnotify = [\n  "foo://x",\n]\n',
    )
    assert str(error(tmp_path)).startswith(f"{path}:6: notify item 1: 'foo://'")


def test_a_bad_url_on_the_command_line_names_the_option_and_hides_the_url(tmp_path: Path) -> None:
    write(tmp_path, "nightcrew.toml", 'notify = ["ntfy://ok"]\n')
    located = error(tmp_path, {"notify": ("tgram://secrettoken",)})
    assert str(located).startswith("command line: --notify: Apprise cannot use this tgram:// URL")
    assert "secrettoken" not in str(located)


@pytest.mark.parametrize(
    ("url", "scheme", "shown", "hidden"),
    [
        ("json://127.0.0.1:9/", "json", "json://127.0.0.1:9/", ()),
        (
            "json://bob:hunter22@127.0.0.1:9/x",
            "json",
            "json://bob:****@127.0.0.1:9/x",
            ("hunter22",),
        ),
        (
            "tgram://123456789:AAbbCCddEEff/12315544/",
            "tgram",
            "tgram://1...f/12315544/",
            ("123456789", "AAbbCCddEEff"),
        ),
        (
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
            "slack",
            "slack://T...2/A...D/T...Q/%23general/",
            ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ"),
        ),
        (
            "json://127.0.0.1:9/?format=markdown",
            "json",
            "json://127.0.0.1:9/?format=markdown",
            (),
        ),
    ],
)
def test_a_target_is_shown_with_its_secrets_masked(
    url: str, scheme: str, shown: str, hidden: tuple[str, ...]
) -> None:
    found = target(url)
    assert (found.scheme, found.shown) == (scheme, shown)
    assert set(hidden) <= set(found.secrets)
    told = found.scrub(f"failed to reach {url} with {' and '.join(hidden)}")
    assert all(secret not in told for secret in hidden)
