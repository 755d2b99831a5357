"""TOTP as a second factor of teacher accounts: the RFCs' own test vectors, the window, replays, the CLI."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import CliRunner

from classgate.agent.cli import main
from classgate.agent.teachers.accounts import Accounts
from classgate.agent.teachers.totp import accepted_step, code_at, hotp, new_secret, provisioning_uri

RFC_KEY = b"12345678901234567890"  # RFC 4226 appendix D and RFC 6238 appendix B (SHA-1)
RFC_SECRET = base64.b32encode(RFC_KEY).decode().rstrip("=")


@pytest.mark.parametrize(
    ("counter", "code"),
    list(enumerate(["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
                    "520489"])),
)
def test_hotp_rfc4226_vectors(counter: int, code: str) -> None:
    assert hotp(RFC_KEY, counter) == code


@pytest.mark.parametrize(
    ("ts", "code"),
    [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"),
     (2000000000, "69279037"), (20000000000, "65353130")],
)
def test_totp_rfc6238_vectors(ts: int, code: str) -> None:
    assert hotp(RFC_KEY, ts // 30, digits=8) == code
    assert code_at(RFC_SECRET, ts) == code[-6:]  # the 6 digits authenticator apps show


NOW = 1_800_000_015.0  # 15 s into a step


@pytest.mark.parametrize(
    ("made_at", "last_step", "accepted"),
    [
        (NOW, -1, True),
        (NOW - 30, -1, True),  # the step before (a phone's clock a little behind)
        (NOW + 30, -1, True),
        (NOW - 60, -1, False),  # two steps off: too old
        (NOW + 60, -1, False),
        (NOW, int(NOW // 30), False),  # this step was used already: a replay
        (NOW - 30, int(NOW // 30) - 1, False),
        (NOW, int(NOW // 30) - 1, True),
    ],
)
def test_window_and_replay(made_at: float, last_step: int, accepted: bool) -> None:
    secret = new_secret()
    step = accepted_step(secret, code_at(secret, made_at), NOW, last_step)
    assert (step is not None) == accepted
    if accepted:
        assert step == int(made_at // 30)


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef"])
def test_malformed_codes(code: str) -> None:
    assert accepted_step(new_secret(), code, NOW) is None


def test_account_with_totp_needs_the_code_once(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path)
    account, password = accounts.add("lan", ("students",), totp=True)
    secret = account.totp_secret
    assert secret is not None and len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    assert accounts.verify("lan", password, now=NOW) is None  # no code
    assert accounts.verify("lan", password, "000000" if code_at(secret, NOW) != "000000" else "111111",
                           now=NOW) is None
    assert accounts.verify("lan", "wrong", code_at(secret, NOW), now=NOW) is None
    assert accounts.verify("lan", password, code_at(secret, NOW), now=NOW) is not None
    assert accounts.verify("lan", password, code_at(secret, NOW), now=NOW + 1) is None  # the same code again
    assert accounts.verify("lan", password, code_at(secret, NOW + 30), now=NOW + 30) is not None
    _, new_password = accounts.reset("lan")
    renewed = accounts.get("lan")
    assert renewed is not None and renewed.totp_secret not in (None, secret)
    assert accounts.verify("lan", new_password, code_at(secret, NOW + 60), now=NOW + 60) is None  # old phone


def test_provisioning_uri() -> None:
    uri = urlparse(provisioning_uri("lan.nguyen", RFC_SECRET))
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/classgate%3Alan.nguyen")
    assert parse_qs(uri.query) == {"secret": [RFC_SECRET], "issuer": ["classgate"], "algorithm": ["SHA1"],
                                   "digits": ["6"], "period": ["30"]}


def test_cli_add_with_totp(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["teachers", "add", "hieu", "--admin", "--totp", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    secret = re.search(r"^TOTP secret: ([A-Z2-7]+)$", result.stdout, re.MULTILINE)
    assert secret and f"otpauth://totp/classgate%3Ahieu?secret={secret.group(1)}&" in result.stdout
    listed = CliRunner().invoke(main, ["teachers", "list", "--state-dir", str(tmp_path)])
    assert "hieu" in listed.stdout and "admin (all groups)  +TOTP" in listed.stdout


def _pbm_of_terminal_qr(text: str, scale: int = 6) -> str:
    """The QR code the CLI drew with half-block characters, as a PBM image (a filled half is a light module)."""
    rows: list[list[int]] = []
    for line in text.splitlines():
        rows.append([1 if ch in "█▀" else 0 for ch in line])
        rows.append([1 if ch in "█▄" else 0 for ch in line])
    out = [f"P1\n{len(rows[0]) * scale} {len(rows) * scale}"]
    for row in rows:
        pixels = " ".join("0" if light else "1" for light in row for _ in range(scale))
        out.extend([pixels] * scale)
    return "\n".join(out) + "\n"


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (Debian zbar-tools, .ci/install) is missing")
def test_cli_qr_code_scans_to_the_uri(tmp_path: Path) -> None:
    """A real decoder (zbar) reads the terminal QR code back to the otpauth:// URI printed above it."""
    result = CliRunner().invoke(main, ["teachers", "add", "hieu", "--admin", "--totp", "--state-dir", str(tmp_path)])
    uri = re.search(r"^authenticator app: (\S+)$", result.stdout, re.MULTILINE)
    assert uri, result.output
    blocks = "\n".join(line for line in result.stdout.splitlines() if line and set(line) <= set("█▀▄ "))
    image = tmp_path / "qr.pbm"
    image.write_text(_pbm_of_terminal_qr(blocks), encoding="ascii")
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(image)], capture_output=True, text=True, timeout=30,
                             check=False)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.strip() == uri.group(1)
