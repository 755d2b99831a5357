"""Is this request well-formed HTTP? Bytes a client controls must not mean one thing to the filter and
another to the server behind it.

mitmproxy forwards what an HTTP/2 client sends in `:method`, `:path`, `:authority` and header fields to an
HTTP/1.1 upstream as it is. A CR, LF or NUL there lets a client write a second request line or header the
filter never saw (`:method` = "GET /secret HTTP/1.1\\r\\nX:" with `:path` = "/ok" is decided as /ok and
served as /secret); a Host header carrying "?", "#", "\\" or spaces moves the path out of the filter's view.
Such requests are refused (400) before anything is decided. The grammar is RFC 9110/9112's, which HTTP/2
(RFC 9113 section 8.2.1) requires too.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

# What was wrong, as a bounded metric label (classgate_malformed_requests_total{part}).
MalformedPart = Literal["method", "target", "authority", "header_name", "header_value"]
MALFORMED_PARTS: Final[tuple[MalformedPart, ...]] = get_args(MalformedPart)

# RFC 9110 5.6.2 token (methods, header names).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A request target: visible ASCII only (RFC 9112 3.2: no whitespace, no controls, no raw non-ASCII).
_TARGET = re.compile(rb"[\x21-\x7e]+")
# RFC 9110 7.2 Host = uri-host [":" port], uri-host = IP-literal / IPv4address / reg-name; no userinfo.
_AUTHORITY = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]{0,5})?")
# Field values: no CR, LF or NUL (RFC 9110 5.5; RFC 9113 8.2.1 for HTTP/2).
_BAD_VALUE = re.compile(rb"[\r\n\x00]")


def malformed_part(method: bytes, target: bytes, authority: bytes, host_headers: list[bytes],
                   fields: list[tuple[bytes, bytes]]) -> MalformedPart | None:
    """The first part of a request that breaks the grammar, or None when the request is well-formed.

    `target` is the request target as sent (origin-form path, or absolute-form URL), `authority` the
    HTTP/2 `:authority` or the absolute-form authority (b"" when there is none), `host_headers` every Host
    header value, `fields` every header field (pseudo-headers excluded)."""
    if not _TOKEN.fullmatch(method):
        return "method"
    if method != b"CONNECT" and not _TARGET.fullmatch(target):
        return "target"
    if authority and not _AUTHORITY.fullmatch(authority):
        return "authority"
    if any(not _AUTHORITY.fullmatch(host) for host in host_headers):
        return "authority"
    for name, value in fields:
        if not _TOKEN.fullmatch(name):
            return "header_name"
        if _BAD_VALUE.search(value):
            return "header_value"
    return None
