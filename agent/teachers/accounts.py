"""Teacher accounts: who may act on which groups, with a password kept as a memory-hard hash.

`<state>/teachers.json` (mode 0600, written atomically): per account its groups, whether it is an admin,
and the password's scrypt hash with its own random salt and the scrypt parameters it was made with (so the
cost can be raised later without breaking old hashes). A password is made by classgate, shown once, and
marked to be changed at the first sign-in (the web console asks). Verifying runs scrypt even for an unknown
name and compares in constant time, so neither timing nor the answer tells which names exist. An account
may also have a TOTP secret (agent/teachers/totp.py, `teachers add --totp`): then a sign-in needs the code
of the moment too, each code once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from classgate.agent.teachers.totp import accepted_step, new_secret
from classgate.policies.atomicfile import atomic_write
from classgate.policies.filelock import exclusive_lock

FILE: Final = "teachers.json"
LOCK_FILE: Final = "teachers.lock"
FORMAT: Final = 1
FILE_MODE: Final = 0o600  # password hashes: the gateway's user only
NAME_PATTERN: Final = r"[a-z0-9][a-z0-9._-]{0,31}"
# scrypt cost: N=2^15, r=8 is 32 MiB and ~0.1 s per check on a school's small gateway: slow for a guesser
# with a stolen file, quick enough for a sign-in. OWASP's password storage sheet lists N=2^17 as a minimum for
# servers with memory to spare; a gateway is not one, and the web console rate-limits sign-ins besides.
SCRYPT_N: Final = 2**15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
_KEY_BYTES: Final = 32
_PASSWORD_BYTES: Final = 12  # 16 characters of base64url: ~96 bits


class AccountError(Exception):
    """An account operation that cannot be done as asked: says what to change."""


@dataclass(frozen=True)
class PasswordHash:
    salt: bytes
    key: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def __repr__(self) -> str:  # never a hash in a log line or a traceback
        return "PasswordHash(...)"


@dataclass(frozen=True)
class Account:
    """A teacher (or an admin, who acts on every group)."""

    name: str
    groups: tuple[str, ...]
    admin: bool = False
    must_change_password: bool = True
    created: float = 0.0
    password: PasswordHash = field(default=PasswordHash(b"", b""), repr=False, compare=False)
    totp_secret: str | None = field(default=None, repr=False, compare=False)  # base32; None: password only
    totp_step: int = -1  # the last TOTP step accepted: that code and older ones are refused


def hash_password(password: str, salt: bytes | None = None, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> PasswordHash:
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=_KEY_BYTES)
    return PasswordHash(salt, key, n, r, p)


def password_matches(password: str, stored: PasswordHash) -> bool:
    """Constant-time comparison of `password`'s hash (with the stored salt and cost) to the stored one."""
    candidate = hash_password(password, stored.salt, n=stored.n, r=stored.r, p=stored.p)
    return hmac.compare_digest(candidate.key, stored.key)


def new_password() -> str:
    return secrets.token_urlsafe(_PASSWORD_BYTES)


# Compared against when a name is unknown, so an unknown name costs the same scrypt as a known one.
_NOBODY = PasswordHash(b"classgate-nobody", b"\0" * _KEY_BYTES)


class Accounts:
    """The teacher accounts of one state dir (what the CLI and the web console call)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / FILE
        self._lock_path = Path(state_dir) / LOCK_FILE

    def add(self, name: str, groups: tuple[str, ...], *, admin: bool = False,
            totp: bool = False) -> tuple[Account, str]:
        """A new account and its one-time password (shown once; only its hash is kept); `totp`: with a TOTP
        secret (`account.totp_secret`, for the teacher's authenticator app)."""
        check_name(name)
        if not groups and not admin:
            raise AccountError(f"teacher {name!r} needs at least one group (--groups G1,G2) or --admin")
        with exclusive_lock(self._lock_path, FILE_MODE, error=AccountError):
            accounts = self._read()
            if name in accounts:
                raise AccountError(f"teacher {name!r} exists already; `classgate teachers reset {name}` gives "
                                   "a new password")
            password = new_password()
            account = Account(name, tuple(dict.fromkeys(groups)), admin, True, time.time(), hash_password(password),
                              totp_secret=new_secret() if totp else None)
            accounts[name] = account
            self._write(accounts)
        return account, password

    def reset(self, name: str) -> tuple[Account, str]:
        """A new one-time password for `name` (the old one stops working), and a new TOTP secret if it had one
        (a lost phone)."""
        password = new_password()
        account = self._change(name, lambda a: replace(a, must_change_password=True, password=hash_password(password),
                                                       totp_secret=new_secret() if a.totp_secret else None,
                                                       totp_step=-1))
        return account, password

    def set_password(self, name: str, password: str) -> Account:
        """The teacher's own password (the console's "change password"), at least 10 characters."""
        if len(password) < 10:
            raise AccountError("a password has at least 10 characters")
        return self._change(name, lambda a: replace(a, must_change_password=False, password=hash_password(password)))

    def remove(self, name: str) -> Account:
        with exclusive_lock(self._lock_path, FILE_MODE, error=AccountError):
            accounts = self._read()
            account = accounts.pop(name, None)
            if account is None:
                raise AccountError(self._unknown(name, accounts))
            self._write(accounts)
        return account

    def get(self, name: str) -> Account | None:
        return self._read().get(name)

    def list(self) -> list[Account]:
        return sorted(self._read().values(), key=lambda a: a.name)

    def verify(self, name: str, password: str, code: str | None = None, *, now: float | None = None) -> Account | None:
        """The account when `password` is its password (and, for an account with TOTP, `code` is the code of
        the moment, not used before), else None: the same scrypt cost either way."""
        account = self._read().get(name)
        ok = password_matches(password, account.password if account is not None else _NOBODY)
        if not ok or account is None:
            return None
        if account.totp_secret is None:
            return account
        return self._accept_code(name, code or "", time.time() if now is None else now)

    def _accept_code(self, name: str, code: str, now: float) -> Account | None:
        # Under the lock, on the file as it is now: two sign-ins with one code cannot both pass.
        with exclusive_lock(self._lock_path, FILE_MODE, error=AccountError):
            accounts = self._read()
            account = accounts.get(name)
            if account is None or account.totp_secret is None:
                return None
            step = accepted_step(account.totp_secret, code, now, account.totp_step)
            if step is None:
                return None
            accounts[name] = account = replace(account, totp_step=step)
            self._write(accounts)
        return account

    # -- the file ------------------------------------------------------------------------------
    def _change(self, name: str, change: Callable[[Account], Account]) -> Account:
        with exclusive_lock(self._lock_path, FILE_MODE, error=AccountError):
            accounts = self._read()
            if name not in accounts:
                raise AccountError(self._unknown(name, accounts))
            accounts[name] = account = change(accounts[name])
            self._write(accounts)
        return account

    @staticmethod
    def _unknown(name: str, accounts: dict[str, Account]) -> str:
        return f"no teacher {name!r} (teachers: {', '.join(sorted(accounts)) or 'none yet'})"

    def _read(self) -> dict[str, Account]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise AccountError(f"{self.path}: cannot be read: {exc}") from None
        try:
            if data.get("classgate_teachers") != FORMAT:
                raise AccountError(f"{self.path}: not a teachers file of format {FORMAT}")
            return {name: _account(name, record) for name, record in data["teachers"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AccountError(f"{self.path}: broken record: {exc}") from None

    def _write(self, accounts: dict[str, Account]) -> None:
        body = {"classgate_teachers": FORMAT, "teachers": {n: _record(a) for n, a in sorted(accounts.items())}}
        try:
            atomic_write(self.path, (json.dumps(body, indent=1) + "\n").encode(), FILE_MODE)
        except OSError as exc:
            raise AccountError(f"{self.path}: cannot write: {exc.strerror or exc}") from None


def check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise AccountError(f"{name!r} is not a teacher name: use lower-case letters, digits, . _ - "
                           "(at most 32, starting with a letter or digit), e.g. lan.nguyen")


def _record(account: Account) -> dict[str, Any]:
    h = account.password
    return {"groups": list(account.groups), "admin": account.admin,
            "must_change_password": account.must_change_password, "created": account.created,
            "scrypt": {"salt": h.salt.hex(), "key": h.key.hex(), "n": h.n, "r": h.r, "p": h.p},
            "totp": {"secret": account.totp_secret, "last_step": account.totp_step} if account.totp_secret else None}


def _account(name: str, record: dict[str, Any]) -> Account:
    s = record["scrypt"]
    totp = record.get("totp")
    return Account(name, tuple(str(g) for g in record["groups"]), bool(record["admin"]),
                   bool(record["must_change_password"]), float(record["created"]),
                   PasswordHash(bytes.fromhex(s["salt"]), bytes.fromhex(s["key"]), int(s["n"]), int(s["r"]),
                                int(s["p"])),
                   totp_secret=str(totp["secret"]) if totp else None, totp_step=int(totp["last_step"]) if totp else -1)
