"""Secret detection by file name and content.

Fake secrets are assembled at run time so this file itself holds none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nightcrew import secrets
from nightcrew.secrets import SecretFinding, find_secrets

PRIVATE_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow\n-----END RSA " + "PRIVATE KEY-----\n"
OPENSSH_KEY = "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\n"
SK_KEY = "sk-" + "ant-api03-" + "Ab1" * 10
OPENAI_KEY = "sk-" + "proj-" + "x9Y" * 8
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
GH_TOKEN = "ghp" + "_" + "a1B2" * 9


def put(root: Path, rel: str, data: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.local",
        ".env.production",
        "config/.env",
        "server.pem",
        "tls.KEY",
        "id_rsa",
        "id_rsa_backup",
        "id_ed25519",
        "id_ecdsa",
        "id_dsa",
    ],
)
def test_secret_file_names(tmp_path: Path, name: str) -> None:
    put(tmp_path, name, "harmless\n")
    assert find_secrets(tmp_path, [name]) == [SecretFinding(name, "looks like a secrets file")]


@pytest.mark.parametrize(
    "name",
    [
        ".env.example",
        ".env.sample",
        ".env.template",
        "id_rsa.pub",
        "id_ed25519.pub",
        "environment.py",
        "keys.txt",
        "my.env.py",
        "README.md",
    ],
)
def test_harmless_file_names(tmp_path: Path, name: str) -> None:
    put(tmp_path, name, "harmless\n")
    assert find_secrets(tmp_path, [name]) == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (PRIVATE_KEY, "private key block"),
        (OPENSSH_KEY, "private key block"),
        (f'API_KEY = "{SK_KEY}"\n', "API key"),
        (f"OPENAI_API_KEY={OPENAI_KEY}\n", "API key"),
        (f"aws_access_key_id = {AWS_KEY}\n", "AWS access key"),
        (f"token: {GH_TOKEN}\n", "GitHub token"),
    ],
)
def test_secret_contents(tmp_path: Path, content: str, reason: str) -> None:
    put(tmp_path, "src/settings.py", "# settings\n\n" + content)
    findings = find_secrets(tmp_path, ["src/settings.py"])
    assert len(findings) == 1
    assert findings[0].path == "src/settings.py"
    assert reason in findings[0].reason
    assert "(line 3)" in findings[0].reason


def test_reason_never_quotes_the_secret(tmp_path: Path) -> None:
    put(tmp_path, "a.py", f"k = '{SK_KEY}'\n")
    (finding,) = find_secrets(tmp_path, ["a.py"])
    assert SK_KEY not in finding.reason
    assert SK_KEY[:8] not in finding.reason


@pytest.mark.parametrize(
    "content",
    [
        "task-scheduler-configuration-values = 1\n",  # kebab-case, no digit
        "desk-" + "a1" * 15 + "\n",  # "sk-" inside a longer word
        "sk-short1\n",
        "AKIA" + "SHORT12\n",
        "ghp" + "_" + "tooShort123\n",
        "-----BEGIN PUBLIC KEY-----\n",
        "-----BEGIN CERTIFICATE-----\n",
    ],
)
def test_harmless_contents(tmp_path: Path, content: str) -> None:
    put(tmp_path, "a.py", content)
    assert find_secrets(tmp_path, ["a.py"]) == []


def test_deleted_binary_and_directory_paths_are_skipped(tmp_path: Path) -> None:
    put(tmp_path, "blob.bin", b"\x00\x01" + AWS_KEY.encode() + b"\x00")
    (tmp_path / "somedir").mkdir()
    findings = find_secrets(tmp_path, ["gone.py", "gone.env", ".env", "blob.bin", "somedir"])
    assert findings == []


def test_binary_secret_file_name_is_still_flagged(tmp_path: Path) -> None:
    put(tmp_path, "cert.pem", b"\x00\x01\x02")
    assert [f.path for f in find_secrets(tmp_path, ["cert.pem"])] == ["cert.pem"]


def test_only_the_first_megabyte_is_read(tmp_path: Path) -> None:
    filler = "x" * 79 + "\n"
    lines = secrets.MAX_SCAN_BYTES // len(filler) + 1
    put(tmp_path, "late.txt", filler * lines + AWS_KEY + "\n")
    put(tmp_path, "early.txt", AWS_KEY + "\n" + filler * lines)
    assert [f.path for f in find_secrets(tmp_path, ["late.txt", "early.txt"])] == ["early.txt"]


def test_one_finding_per_path_in_path_order(tmp_path: Path) -> None:
    put(tmp_path, "z.py", f"{AWS_KEY}\n{GH_TOKEN}\n")
    put(tmp_path, "a/.env", f"{SK_KEY}\n")
    findings = find_secrets(tmp_path, ["z.py", "a/.env", "z.py"])
    assert findings == [
        SecretFinding("a/.env", "looks like a secrets file"),
        SecretFinding("z.py", "contains what looks like an AWS access key id (line 1)"),
    ]


def test_symlink_is_judged_by_name_only(tmp_path: Path) -> None:
    put(tmp_path, "outside.txt", PRIVATE_KEY)
    (tmp_path / "link.txt").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "id_rsa").symlink_to(tmp_path / "missing-target")
    assert [f.path for f in find_secrets(tmp_path, ["link.txt", "id_rsa"])] == ["id_rsa"]
