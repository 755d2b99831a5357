"""The "continue" cookie and the warn page's form token: sign, verify, expiry, tampering; the key file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from classgate.proxy.warn_token import (
    FORM_TOKEN_SECONDS,
    KEY_BYTES,
    KEY_FILE,
    ContinueTokens,
    StudentKeyError,
    derive,
    load_or_create_key,
)

KEY = bytes(range(32))
NOW = 1_795_400_000  # 2026-11-23, in Unix seconds
SITE, CLIENT = "social.test", "10.0.3.7"


def tampered(value: str, index: int) -> str:
    """`value` with one character changed at `index` (counted from the end when negative)."""
    chars = list(value)
    chars[index] = "B" if chars[index] != "B" else "C"
    return "".join(chars)


tokens = ContinueTokens(KEY)
COOKIE = tokens.cookie(SITE, CLIENT, NOW + 900)
FORM_MAC = tokens.form_token(SITE, CLIENT, NOW + 900).split(".")[1]


@pytest.mark.parametrize(
    ("case", "value", "site", "client", "now", "valid"),
    [
        ("as issued", COOKIE, SITE, CLIENT, NOW, True),
        ("one second before expiry", COOKIE, SITE, CLIENT, NOW + 899, True),
        ("at expiry", COOKIE, SITE, CLIENT, NOW + 900, False),
        ("after expiry", COOKIE, SITE, CLIENT, NOW + 10_000, False),
        ("another site", COOKIE, "games.test", CLIENT, NOW, False),
        ("a parent of the site", COOKIE, "test", CLIENT, NOW, False),
        ("another device", COOKIE, SITE, "10.0.3.8", NOW, False),
        ("expiry moved later", COOKIE.replace(str(NOW + 900), str(NOW + 90_000)), SITE, CLIENT, NOW + 1000, False),
        ("mac changed", tampered(COOKIE, -1), SITE, CLIENT, NOW, False),
        ("mac cut short", COOKIE[:-4], SITE, CLIENT, NOW, False),
        ("another key", ContinueTokens(bytes(32)).cookie(SITE, CLIENT, NOW + 900), SITE, CLIENT, NOW, False),
        ("another version", "v2" + COOKIE[2:], SITE, CLIENT, NOW, False),
        ("empty", "", SITE, CLIENT, NOW, False),
        ("garbage", "v1.x.y", SITE, CLIENT, NOW, False),
        ("a huge expiry", f"v1.{'9' * 40}.AAAA", SITE, CLIENT, NOW, False),
        ("the form token's mac", f"v1.{NOW + 900}.{FORM_MAC}", SITE, CLIENT, NOW, False),
    ],
)
def test_cookie(case, value, site, client, now, valid):
    assert tokens.cookie_valid(value, site, client, now) is valid, case


FORM = tokens.form_token(SITE, CLIENT, NOW)


@pytest.mark.parametrize(
    ("case", "token", "site", "client", "now", "valid"),
    [
        ("as issued", FORM, SITE, CLIENT, NOW, True),
        ("an hour later", FORM, SITE, CLIENT, NOW + FORM_TOKEN_SECONDS, True),
        ("too old", FORM, SITE, CLIENT, NOW + FORM_TOKEN_SECONDS + 1, False),
        ("clock set back a little", FORM, SITE, CLIENT, NOW - 30, True),
        ("from the future", FORM, SITE, CLIENT, NOW - 3600, False),
        ("another site", FORM, "games.test", CLIENT, NOW, False),
        ("another device", FORM, SITE, "10.0.3.8", NOW, False),
        ("issue time changed", f"{NOW + 5}.{FORM.split('.')[1]}", SITE, CLIENT, NOW + 5, False),
        ("mac changed", tampered(FORM, -2), SITE, CLIENT, NOW, False),
        ("the cookie's mac", f"{NOW}.{tokens.cookie(SITE, CLIENT, NOW).split('.')[2]}", SITE, CLIENT, NOW, False),
        ("empty", "", SITE, CLIENT, NOW, False),
    ],
)
def test_form_token(case, token, site, client, now, valid):
    assert tokens.form_token_valid(token, site, client, now) is valid, case


def test_cookie_says_nothing_about_the_device():
    assert CLIENT not in COOKIE and "10.0" not in COOKIE and SITE not in COOKIE


def test_derived_keys_differ_by_purpose():
    assert len({derive(KEY, b"warn-cookie"), derive(KEY, b"warn-form"), derive(KEY, b"ask-code"), KEY}) == 4


def test_key_is_made_once_private_and_kept(tmp_path):
    first = load_or_create_key(tmp_path)
    path = tmp_path / KEY_FILE
    assert len(first) == KEY_BYTES and path.read_bytes() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_key(tmp_path) == first  # a restart keeps every "continue" valid
    assert "keys hidden" in repr(ContinueTokens(first)) and first.hex() not in repr(ContinueTokens(first))


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"short", "holds 5 bytes, not 32"), (b"", "holds 0 bytes")],
)
def test_a_damaged_key_file_stops_the_start(tmp_path, content, message):
    (tmp_path / KEY_FILE).write_bytes(content)
    with pytest.raises(StudentKeyError, match=message):
        load_or_create_key(tmp_path)


def test_an_unwritable_state_dir_says_so(tmp_path):
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    with pytest.raises(StudentKeyError, match="cannot"):
        load_or_create_key(target)


def test_workers_starting_together_all_get_the_one_key(tmp_path):
    """Every worker of a new gateway makes the key at once: all must end up with the same one."""
    script = ("import sys; from pathlib import Path; from classgate.proxy.warn_token import load_or_create_key; "
              "print(load_or_create_key(Path(sys.argv[1])).hex())")
    for attempt in range(3):  # three fresh state dirs: three chances for the workers to collide
        state = tmp_path / f"state{attempt}"
        state.mkdir()
        workers = [subprocess.Popen([sys.executable, "-c", script, str(state)], stdout=subprocess.PIPE, text=True)
                   for _ in range(6)]
        keys = {w.communicate(timeout=60)[0].strip() for w in workers}
        assert keys == {(state / KEY_FILE).read_bytes().hex()}
        assert sorted(p.name for p in state.iterdir()) == [KEY_FILE]  # no draft left behind
