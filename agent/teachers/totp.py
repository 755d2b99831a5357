"""Time-based one-time passwords (RFC 6238, over RFC 4226's HOTP): the second factor of a teacher's sign-in.

Standard parameters, which every authenticator app uses: HMAC-SHA1, 6 digits, 30-second steps. A code is
accepted in the step it was made for or the one before or after (a phone's clock a little off), and only
once: the caller keeps the last step accepted and refuses it and every earlier one (a code seen over a
shoulder cannot be replayed).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
import urllib.parse
from typing import Final

STEP: Final = 30
DIGITS: Final = 6
SECRET_BYTES: Final = 20  # 160 bits, RFC 4226's recommendation for HMAC-SHA1
WINDOW: Final = 1  # steps either side accepted


def new_secret() -> str:
    """A random secret, in the base32 spelling authenticator apps take."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    text = secret.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 section 5.3: HMAC of the counter, dynamically truncated to `digits` decimal digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def code_at(secret: str, ts: float) -> str:
    """The code an authenticator shows at unix time `ts`."""
    return hotp(_key(secret), int(ts // STEP))


def accepted_step(secret: str, code: str, now: float, last_step: int = -1) -> int | None:
    """The step `code` belongs to when it is valid at `now` and newer than `last_step`, else None."""
    given = code.strip().replace(" ", "")
    if len(given) != DIGITS or not given.isdigit():
        return None
    key = _key(secret)
    current = int(now // STEP)
    matched = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # Every candidate is compared (constant work whatever matches), each in constant time.
        if hmac.compare_digest(hotp(key, step), given) and step > last_step:
            matched = step
    return matched


def provisioning_uri(account: str, secret: str, issuer: str = "classgate") -> str:
    """The otpauth:// URI an authenticator app reads (typed in, or as a QR code)."""
    label = urllib.parse.quote(f"{issuer}:{account}")
    query = urllib.parse.urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1",
                                    "digits": DIGITS, "period": STEP})
    return f"otpauth://totp/{label}?{query}"


__all__ = ["accepted_step", "code_at", "hotp", "new_secret", "provisioning_uri"]
