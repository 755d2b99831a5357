"""The console's HTTPS certificate, issued by the school CA the devices already trust, kept and renewed.

`STATE/console/server.pem` (certificate, then the CA's) and `server-key.pem` (mode 0600). Issued for
`VALID_DAYS` (browsers refuse server certificates valid for more than 398 days) and issued again when fewer
than `RENEW_DAYS` are left, when the names wanted are not all in it, or when the school CA is not its issuer
(a CA made anew): checked at start and every `CHECK_SECONDS` by the server (server.py), which loads the new
one into its TLS context without a restart.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from classgate.policies.atomicfile import atomic_write
from classgate.proxy.ca import CaError, ensure_ca

FOLDER: Final = "console"
VALID_DAYS: Final = 200
RENEW_DAYS: Final = 30
CHECK_SECONDS: Final = 12 * 3600.0
KEY_MODE: Final = 0o600


class CertificateError(Exception):
    """The console's certificate cannot be made or read (says which file and why)."""


@dataclass(frozen=True)
class ServerCertificate:
    cert_file: Path
    key_file: Path
    certificate: x509.Certificate
    issued: bool  # made just now


def certificate_names(listen_host: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """What the certificate names: the listening address (unless a wildcard), this host's name, localhost and
    loopback, and the names the admin adds (the console's name in the school's DNS)."""
    names = [*extra, socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    if listen_host not in ("0.0.0.0", "::", ""):
        names.insert(0, listen_host)
    return tuple(dict.fromkeys(n.strip().lower().strip("[]") for n in names if n.strip()))


def ensure_certificate(state_dir: Path, names: tuple[str, ...], *,
                       now: dt.datetime | None = None) -> ServerCertificate:
    """The console's certificate in `state_dir`, issued (again) by the school CA when it must be."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        ca = ensure_ca(state_dir)
        ca_key = serialization.load_pem_private_key(ca.key_file.read_bytes(), password=None)
    except (CaError, OSError, ValueError) as exc:
        raise CertificateError(f"cannot use the school CA in {state_dir / 'ca'}: {exc}") from None
    folder = Path(state_dir) / FOLDER
    cert_file, key_file = folder / "server.pem", folder / "server-key.pem"
    current = _read(cert_file) if key_file.exists() else None
    if current is not None and not _needs_new(current, ca.certificate, names, now):
        return ServerCertificate(cert_file, key_file, current, False)
    if not isinstance(ca_key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CertificateError(f"{ca.key_file}: the school CA's key is of a kind that cannot sign here")
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _issue(key, ca.certificate, ca_key, names, now)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), KEY_MODE)
        atomic_write(cert_file, certificate.public_bytes(serialization.Encoding.PEM) + ca.pem(), 0o644)
        os.chmod(key_file, KEY_MODE)
    except OSError as exc:
        raise CertificateError(f"cannot write the console's certificate in {folder}: {exc.strerror or exc}") \
            from None
    return ServerCertificate(cert_file, key_file, certificate, True)


def _read(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError, IndexError):
        return None  # absent or torn: issued again


def _needs_new(cert: x509.Certificate, ca: x509.Certificate, names: tuple[str, ...], now: dt.datetime) -> bool:
    if cert.issuer != ca.subject:
        return True
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - any failure means "not the school CA's"
        return True
    if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_DAYS):
        return True
    return not set(names) <= set(_names_in(cert))


def _names_in(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(a) for a in san.get_values_for_type(x509.IPAddress))]


def _issue(key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, ca_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
           names: tuple[str, ...], now: dt.datetime) -> x509.Certificate:
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "classgate console")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))  # a device's clock a little behind
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
