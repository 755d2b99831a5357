"""The school CA: created on first start in the state directory, exported for devices to trust.

The CA directory is mitmproxy's `confdir` (mitmproxy reads `mitmproxy-ca.pem` from it), so the
files keep mitmproxy's names. We create it ourselves, before mitmproxy starts, to give it a name a
student or teacher recognises in their certificate store ("classgate school CA") and to check that
the private key is readable by its owner only.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy import certs

BASENAME = "mitmproxy"  # mitmproxy looks for <confdir>/mitmproxy-ca.pem
CA_ORGANIZATION = "classgate"
CA_COMMON_NAME = "classgate school CA"
KEY_SIZE = 2048


class CaError(Exception):
    """The CA cannot be created or read (permissions, corrupt file...)."""


@dataclass(frozen=True)
class SchoolCa:
    directory: Path  # the mitmproxy confdir
    key_file: Path  # private key + certificate, mode 0600
    cert_file: Path  # the certificate alone (PEM)
    certificate: x509.Certificate
    created: bool = False  # made just now: every device must install it (again)

    @property
    def name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(names[0].value) if names else CA_COMMON_NAME

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def sha256_fingerprint(self) -> str:
        return fingerprint(self.certificate)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 as AA:BB:..., the way certificate dialogs on phones and desktops show it."""
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def ca_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "ca"


def ca_common_name(school: str | None) -> str:
    """The name devices show for the CA: "classgate school CA", or "<school> (classgate school CA)"."""
    school = (school or "").strip()
    if any(ord(c) < 0x20 for c in school):
        raise CaError("the CA name cannot hold control characters")
    if len(school) > 40:  # a certificate's common name is at most 64 characters
        raise CaError(f"the CA name is {len(school)} characters; at most 40 fit (e.g. an abbreviation)")
    return f"{school} ({CA_COMMON_NAME})" if school else CA_COMMON_NAME


def ensure_ca(state_dir: Path, school: str | None = None) -> SchoolCa:
    """The school CA in `state_dir`/ca, created if absent (named after `school` if given); raises CaError.

    An existing CA is never replaced or renamed: devices trust it."""
    directory = ca_dir(state_dir)
    key_file = directory / f"{BASENAME}-ca.pem"
    cert_file = directory / f"{BASENAME}-ca-cert.pem"
    created = False
    try:
        if not key_file.exists():
            common_name = ca_common_name(school)
            directory.mkdir(parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
            created = True
            try:
                certs.CertStore.create_store(
                    directory, BASENAME, KEY_SIZE, organization=CA_ORGANIZATION, cn=common_name
                )
            except TypeError:  # a mitmproxy without the naming arguments: its default name
                certs.CertStore.create_store(directory, BASENAME, KEY_SIZE)
        # mitmproxy writes the key under a 077 umask; keep it that way even if someone copied it in.
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            os.chmod(key_file, 0o600)
        certificate = x509.load_pem_x509_certificates(key_file.read_bytes())[0]
        if not cert_file.exists():
            cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    except (OSError, ValueError) as e:
        raise CaError(f"cannot use the school CA in {directory}: {e}") from e
    return SchoolCa(directory, key_file, cert_file, certificate, created)
