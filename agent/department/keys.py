"""The Department's signing keys: ed25519, one PEM file per key, 0600, one folder per role.

Layout under the keys folder (`DIR/keys` unless `--keys` says otherwise):

    root/<keyid>.pem       OFFLINE: only needed to change keys (a new root version)
    targets/<keyid>.pem    OFFLINE: only needed to publish a new bundle
    snapshot/<keyid>.pem   ONLINE: the refresh timer signs with it
    timestamp/<keyid>.pem  ONLINE: the refresh timer signs with it
    retired/               keys replaced by `rotate-key`, kept until the admin destroys them

Private keys are never printed, logged or put in a repr; only key ids are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey

from classgate.agent.department.errors import DepartmentError

ROLES = ("root", "targets", "snapshot", "timestamp")
OFFLINE_ROLES = ("root", "targets")
ONLINE_ROLES = ("snapshot", "timestamp")


@dataclass(frozen=True)
class KeyPair:
    """A signing key as the repository code uses it: public key (with its id) and a signer."""

    public: SSlibKey
    signer: CryptoSigner

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def __repr__(self) -> str:  # never show key material
        return f"KeyPair(keyid={self.keyid[:12]}...)"


def generate() -> tuple[KeyPair, bytes]:
    """A fresh ed25519 key and its private PEM (PKCS#8, unencrypted: see docs/sync.md key custody)."""
    private = Ed25519PrivateKey.generate()
    public = SSlibKey.from_crypto(private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyPair(public, CryptoSigner(private, public)), pem


def write_private(folder: Path, pair: KeyPair, pem: bytes) -> Path:
    """Write a private key 0600 in a 0700 folder, created without a window where others could read it."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    path = folder / f"{pair.keyid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.chmod(path, 0o600)  # umask could have narrowed it; never widened
    return path


def load_role_keys(keys_dir: Path, role: str, wanted: set[str]) -> list[KeyPair]:
    """The private keys of `role` found in `keys_dir/role` whose ids are in `wanted` (the role's keys in root)."""
    folder = keys_dir / role
    pairs: list[KeyPair] = []
    if not folder.is_dir():
        return pairs
    for path in sorted(folder.glob("*.pem")):
        if path.stem not in wanted:
            continue
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as e:
            raise DepartmentError(f"{path}: not a readable unencrypted PEM private key ({e})") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise DepartmentError(f"{path}: not an ed25519 key")
        public = SSlibKey.from_crypto(private.public_key())
        if public.keyid != path.stem:
            raise DepartmentError(f"{path}: the file name does not match the key id {public.keyid}")
        pairs.append(KeyPair(public, CryptoSigner(private, public)))
    return pairs


def retire(keys_dir: Path, role: str, keyid: str) -> Path | None:
    """Move a replaced private key to keys/retired/ (the admin destroys it once the rotation is out)."""
    source = keys_dir / role / f"{keyid}.pem"
    if not source.exists():
        return None
    target_dir = keys_dir / "retired"
    target_dir.mkdir(exist_ok=True, mode=0o700)
    target = target_dir / f"{role}-{keyid}.pem"
    os.replace(source, target)
    return target
