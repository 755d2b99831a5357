"""Serve the school CA and install steps on a plain-HTTP page, e.g. http://classgate.ca/.

Devices that do not trust the CA yet can only reach it over plain HTTP, through the proxy. The page
comes before the filter in the addon chain, so it is reachable even when a policy blocks by default.
mitmproxy's own onboarding app (mitm.it) is switched off by `classgate run`.
"""

from __future__ import annotations

import html
import string
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy import ctx, exceptions, http
from mitmproxy.addonmanager import Loader

from classgate.policies.canonical import canonical_host
from classgate.policies.errors import UrlError
from classgate.proxy.blockpage import choose_language
from classgate.proxy.ca import fingerprint

DEFAULT_HOST = "classgate.ca"
CERT_NAME = "mitmproxy-ca-cert.pem"


def _template(language: str) -> string.Template:
    text = resources.files("classgate.proxy").joinpath(f"templates/ca_{language}.html").read_text(encoding="utf-8")
    return string.Template(text)


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else "classgate"


def is_host(name: str, host: str) -> bool:
    """True when `name` as a client wrote it is `host` (canonical): `CLASSGATE.CA.` or `classgate%2Eca` too,
    so no spelling sends a request for the gateway's own page to the Internet host of that name."""
    candidate = name.lower().rstrip(".")
    if candidate == host:
        return True
    if candidate.isascii() and "%" not in candidate:
        return False  # the fast answer for every other request: a plain name that is not ours
    try:
        return canonical_host(name) == host
    except UrlError:
        return False


class CaPage:
    def __init__(self) -> None:
        self._cert: x509.Certificate | None = None
        self._cert_path: Path | None = None
        self.host = DEFAULT_HOST.lower()

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "classgate_ca_host",
            str,
            DEFAULT_HOST,
            "Host name whose plain-HTTP requests get the school CA and install steps (empty = off).",
        )

    def configure(self, updated: set[str]) -> None:
        if "classgate_ca_host" in updated:
            raw = ctx.options.classgate_ca_host
            try:
                self.host = canonical_host(raw) if raw else ""  # cached: compared on every request
            except UrlError as e:
                raise exceptions.OptionsError(f"classgate_ca_host: {e}") from None

    def _certificate(self) -> x509.Certificate:
        path = Path(ctx.options.confdir).expanduser() / CERT_NAME
        if self._cert is None or path != self._cert_path:
            self._cert = x509.load_pem_x509_certificate(path.read_bytes())
            self._cert_path = path
        return self._cert

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        host = self.host
        if not host or flow.response or flow.error or not flow.live:
            return
        # Host header, not pretty_host: this runs on every request and pretty_host is costly.
        authority = flow.request.host_header or flow.request.host
        name = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
        if not is_host(name, host):
            return
        try:
            cert = self._certificate()
        except (OSError, ValueError):
            flow.response = http.Response.make(503, b"The school CA is not available yet.\n")
            return
        path = flow.request.path.split("?", 1)[0]
        if path == "/classgate-ca.pem":
            flow.response = http.Response.make(
                200,
                cert.public_bytes(serialization.Encoding.PEM),
                {
                    "Content-Type": "application/x-x509-ca-cert",
                    "Content-Disposition": 'attachment; filename="classgate-ca.pem"',
                },
            )
        elif path in ("/classgate-ca.crt", "/classgate-ca.cer", "/classgate-ca.der"):
            flow.response = http.Response.make(
                200,
                cert.public_bytes(serialization.Encoding.DER),
                {
                    "Content-Type": "application/x-x509-ca-cert",
                    "Content-Disposition": f'attachment; filename="classgate-ca{path[-4:]}"',
                },
            )
        elif path == "/":
            lang = flow.request.query.get("lang") or ""
            if lang not in ("vi", "en"):
                lang = choose_language(flow.request.headers.get("accept-language"), "vi")
            body = _template(lang).substitute(
                name=html.escape(common_name(cert)), fingerprint=html.escape(fingerprint(cert))
            )
            flow.response = http.Response.make(
                200, body.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
            )
        else:
            flow.response = http.Response.make(404, b"Not found\n", {"Content-Type": "text/plain"})
