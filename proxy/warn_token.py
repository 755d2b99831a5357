"""The signed values of warn-and-continue: the "continue" cookie and the warn page's form token.

Both are HMAC-SHA256 over what they are for, with keys derived from one secret kept in the state dir
(`student.key`, 0600, made on first start; every worker of a gateway reads the same one, so a cookie set by one
is honoured by all, and by the gateway after a restart). Neither value says anything about the device: the
client address is inside the MAC only, so a cookie copied to another device does not verify there, and there
is no list of students or devices anywhere.

- cookie `v1.<expiry>.<mac>`: mac over (site, client address, expiry); `site` is the registrable domain the
  warning was about, so one "continue" covers www. and m. of the same site and nothing else;
- form token `<issued>.<mac>`: mac over (site, client address, issued); accepted for `FORM_TOKEN_SECONDS`,
  so a "continue" cannot be posted by another page that never showed the warning (CSRF).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Final

from classgate.policies.atomicfile import atomic_write

KEY_FILE: Final = "student.key"
KEY_BYTES: Final = 32
COOKIE_NAME: Final = "classgate_continue"
FORM_TOKEN_SECONDS: Final = 3600  # a warn page left open in a tab still works for an hour
_MAC_BYTES: Final = 16  # 128 bits: forging one by guessing is out of reach


class StudentKeyError(Exception):
    """The state dir's student.key cannot be read or made."""


def load_or_create_key(state_dir: Path) -> bytes:
    """The gateway's secret for signing students' tokens: read from the state dir, made there on first use."""
    path = Path(state_dir) / KEY_FILE
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = _create_key(path)
    except OSError as e:
        raise StudentKeyError(f"cannot read {path}: {e.strerror or e}") from None
    if len(key) != KEY_BYTES:
        raise StudentKeyError(f"{path} holds {len(key)} bytes, not {KEY_BYTES}: delete it and restart "
                              "(every student is then warned again)")
    return key


def _create_key(path: Path) -> bytes:
    """A new key at `path`, unless another worker starting at the same moment made one first (then that one):
    written in full beside it, then linked into place, which fails if the name exists."""
    key = os.urandom(KEY_BYTES)
    draft = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    try:
        atomic_write(draft, key, mode=0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            key = path.read_bytes()
        finally:
            draft.unlink(missing_ok=True)
    except OSError as e:
        raise StudentKeyError(f"cannot write {path}: {e.strerror or e}") from None
    if len(key) != KEY_BYTES:
        raise StudentKeyError(f"{path} holds {len(key)} bytes, not {KEY_BYTES}")
    return key


def derive(key: bytes, purpose: bytes) -> bytes:
    """A key for one purpose, so that a value signed for one use is never valid for another."""
    return hmac.new(key, b"classgate/" + purpose, hashlib.sha256).digest()


def _mac(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "\0".join(parts).encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).rstrip(b"=").decode("ascii")


class ContinueTokens:
    """Issues and checks the cookie and the form token; `now` is always a Unix time in seconds."""

    def __init__(self, key: bytes) -> None:
        self._cookie_key = derive(key, b"warn-cookie")
        self._form_key = derive(key, b"warn-form")

    def __repr__(self) -> str:
        return "ContinueTokens(<keys hidden>)"

    def cookie(self, site: str, client: str, expires: int) -> str:
        return f"v1.{expires}.{_mac(self._cookie_key, site, client, str(expires))}"

    def cookie_valid(self, value: str, site: str, client: str, now: float) -> bool:
        """True for a cookie this gateway issued for this site and device that has not expired."""
        version, _, rest = value.partition(".")
        expires_text, _, mac = rest.partition(".")
        if version != "v1" or not expires_text.isdigit() or len(expires_text) > 12:
            return False
        expires = int(expires_text)
        if expires <= now:
            return False
        return hmac.compare_digest(mac, _mac(self._cookie_key, site, client, expires_text))

    def form_token(self, site: str, client: str, now: float) -> str:
        issued = str(int(now))
        return f"{issued}.{_mac(self._form_key, site, client, issued)}"

    def form_token_valid(self, token: str, site: str, client: str, now: float) -> bool:
        issued_text, _, mac = token.partition(".")
        if not issued_text.isdigit() or len(issued_text) > 12:
            return False
        age = now - int(issued_text)
        if not -60 <= age <= FORM_TOKEN_SECONDS:  # a minute of slack for a clock set back
            return False
        return hmac.compare_digest(mac, _mac(self._form_key, site, client, issued_text))
