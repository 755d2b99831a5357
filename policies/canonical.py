"""The canonical form of a destination: what every decision and every list entry is compared on.

Hosts follow the WHATWG URL Standard's host parser (the web-platform-tests data is the oracle in
tests/engine/test_wpt_hosts.py), so a filter cannot be talked round by spelling the same host in
another way: `EXAMPLE.com`, `ex%61mple.com`, Unicode vs punycode, `http://2130706433/`, `[0:0::1]`.
We differ in one thing browsers keep: a trailing dot is dropped (`example.com.` resolves to the same site),
and a host with an empty last label after that (`example.com..`) is an error, so a block.

Paths are normalised the way servers read them: backslashes are slashes, dot segments are resolved,
percent-encoded unreserved characters are decoded and other escapes upper-cased. Case is kept here;
the index compares paths lower-cased, as squidGuard does for UT1 `urls`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from policies.errors import UrlError
from policies.idna_uts46 import domain_to_ascii

SPECIAL_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}

# WHATWG "forbidden domain code points": any of these left after IDNA processing means failure.
_FORBIDDEN_DOMAIN = frozenset("\x00\t\n\r #/:<>?@[\\]^|%\x7f") | frozenset(chr(c) for c in range(0x20))
_ASCII_FAST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_HEX = "0123456789abcdefABCDEF"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# WHATWG path percent-encode set (C0, space, " # < > ? ` { } and non-ASCII), plus "%" handled apart.
_PATH_ENCODE = frozenset('\x20"#<>?`{}\x7f') | frozenset(chr(c) for c in range(0x20))
_C0_SPACE = "".join(chr(c) for c in range(0x21))
# The common case, already canonical but for case: http(s), plain host, path without "%" or dot segments,
# query of characters the standard leaves alone. Everything else takes the full parser below.
_FAST_URL = re.compile(
    r"((?i:https?))://((?:[A-Za-z0-9_-]+\.)*[A-Za-z][A-Za-z0-9_-]*)(?::([0-9]{1,5}))?"
    r"(/[A-Za-z0-9\-._~!$&()*+,;=:@/]*)?(?:\?([!$%&()*+,\-./0-9:;=?@A-Z\[\\\]^_`a-z{|}~]*))?(?:#.*)?",
    re.DOTALL,
)
_QUERY_ENCODE = frozenset("\x20\"#<>'\x7f") | frozenset(chr(c) for c in range(0x20))


class CanonicalUrl(NamedTuple):  # a tuple: built once per request, so construction cost matters
    scheme: str
    host: str  # canonical host; IPv6 in brackets, e.g. "[::1]"
    port: int  # the effective port (the scheme's default when none is given)
    path: str  # starts with "/", dot segments resolved, case kept
    query: str  # without "?", "" when absent
    text: str  # scheme://host[:port]/path[?query]; userinfo and fragment are dropped

    @property
    def host_path(self) -> str:
        """`host/path` lower-cased in the path: the key UT1 `urls` entries are compared on."""
        return self.host + self.path.lower()


def canonical_host(raw: str) -> str:
    """The canonical form of a host name or IP literal; raises UrlError when it is not a valid host."""
    if not isinstance(raw, str):
        raise UrlError(f"host must be text, not {type(raw).__name__}")
    text = raw.strip(" \t\r\n\f")
    if not text:
        raise UrlError("empty host")
    if text.startswith("[") or (":" in text and text.count(":") >= 2):
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        if text.startswith("[") and not text.endswith("]"):
            raise UrlError(f"unterminated IPv6 literal: {raw!r}")
        return "[" + _serialise_ipv6(_parse_ipv6(inner, raw)) + "]"
    return _parse_domain(text, raw)


def _parse_domain(text: str, raw: str) -> str:
    lowered = text.lower()
    # Fast path (the overwhelming case): plain lower-case ASCII labels need no IDNA work.
    if _ASCII_FAST.fullmatch(lowered):
        ascii_host = lowered
    else:
        # Undecodable bytes become U+FFFD, which IDNA then refuses: an error, as the standard says.
        decoded = _percent_decode(text).decode("utf-8", errors="replace")
        try:
            ascii_host = domain_to_ascii(decoded)
        except UrlError as exc:
            raise UrlError(f"invalid host {raw!r}: {exc}") from None
        if not ascii_host:
            raise UrlError(f"empty host: {raw!r}")
        bad = next((c for c in ascii_host if c in _FORBIDDEN_DOMAIN), None)
        if bad is not None:
            raise UrlError(f"forbidden character {bad!r} in host {raw!r}")
    # One trailing dot is the DNS root ("example.com." is example.com); more would leave an empty last label,
    # which no resolver accepts: an error (and a block), so that stripping never turns "0.." into an address.
    host = ascii_host.removesuffix(".")
    if not host or host.endswith("."):
        raise UrlError(f"empty label at the end of host {raw!r}")
    if _ends_in_number(host):
        return _parse_ipv4(host, raw)
    return host


def _percent_decode(text: str) -> bytes:
    data = text.encode("utf-8")
    if b"%" not in data:
        return data
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x25 and i + 2 < n and chr(data[i + 1]) in _HEX and chr(data[i + 2]) in _HEX:
            out.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return bytes(out)


# ---------------------------------------------------------------- IPv4 (WHATWG "ends in a number")

def _ends_in_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    if last and last.isascii() and last.isdigit():
        return True
    return last[:2] in ("0x", "0X") and all(c in _HEX for c in last[2:])


def _ipv4_number(part: str, raw: str) -> int:
    if not part:
        raise UrlError(f"empty IPv4 part in {raw!r}")
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if part == "":
        return 0
    digits = {10: "0123456789", 8: "01234567", 16: _HEX}[base]
    if not all(c in digits for c in part):
        raise UrlError(f"invalid IPv4 number {part!r} in {raw!r}")
    return int(part, base)


def _parse_ipv4(host: str, raw: str) -> str:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise UrlError(f"IPv4 address with more than four parts: {raw!r}")
    numbers = [_ipv4_number(p, raw) for p in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise UrlError(f"IPv4 address out of range: {raw!r}")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n * 256 ** (3 - i)
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


# ---------------------------------------------------------------- IPv6 (WHATWG IPv6 parser)

def _parse_ipv6(text: str, raw: str) -> list[int]:
    def fail(why: str) -> UrlError:
        return UrlError(f"invalid IPv6 address {raw!r}: {why}")

    address = [0] * 8
    piece, compress, i, n = 0, None, 0, len(text)
    if text[:1] == ":":
        if text[1:2] != ":":
            raise fail("leading single colon")
        i, piece = 2, 1
        compress = piece
    while i < n:
        if piece == 8:
            raise fail("too many pieces")
        if text[i] == ":":
            if compress is not None:
                raise fail("two '::'")
            i += 1
            piece += 1
            compress = piece
            continue
        value = length = 0
        while length < 4 and i < n and text[i] in _HEX:
            value = value * 16 + int(text[i], 16)
            i += 1
            length += 1
        if i < n and text[i] == ".":
            if length == 0:
                raise fail("empty IPv4 part")
            i -= length
            if piece > 6:
                raise fail("IPv4 part too late")
            seen = 0
            while i < n:
                v4: int | None = None
                if seen > 0:
                    if text[i] == "." and seen < 4:
                        i += 1
                    else:
                        raise fail("bad embedded IPv4")
                if i >= n or not text[i].isdigit() or not text[i].isascii():
                    raise fail("bad embedded IPv4")
                while i < n and text[i].isascii() and text[i].isdigit():
                    d = int(text[i])
                    if v4 is None:
                        v4 = d
                    elif v4 == 0:
                        raise fail("leading zero in embedded IPv4")
                    else:
                        v4 = v4 * 10 + d
                    if v4 > 255:
                        raise fail("embedded IPv4 out of range")
                    i += 1
                address[piece] = address[piece] * 0x100 + (v4 or 0)
                seen += 1
                if seen in (2, 4):
                    piece += 1
            if seen != 4:
                raise fail("embedded IPv4 too short")
            break
        if i < n and text[i] == ":":
            i += 1
            if i >= n:
                raise fail("trailing colon")
        elif i < n:
            raise fail(f"unexpected {text[i]!r}")
        address[piece] = value
        piece += 1
    if compress is not None:
        swaps, piece = piece - compress, 7
        while piece != 0 and swaps > 0:
            j = compress + swaps - 1
            address[piece], address[j] = address[j], address[piece]
            piece -= 1
            swaps -= 1
    elif piece != 8:
        raise fail("too few pieces")
    return address


def _serialise_ipv6(address: list[int]) -> str:
    best_start, best_len, start = -1, 1, None
    for i in range(9):
        if i < 8 and address[i] == 0:
            start = i if start is None else start
        elif start is not None:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = None
    if best_start < 0:
        return ":".join(f"{p:x}" for p in address)
    head = ":".join(f"{p:x}" for p in address[:best_start])
    tail = ":".join(f"{p:x}" for p in address[best_start + best_len :])
    return f"{head}::{tail}"


# ---------------------------------------------------------------- URLs

def canonical_url(url: str) -> CanonicalUrl:
    """Parse an absolute http(s)/ws(s)/ftp URL, or a scheme-less `host/path` (read as http)."""
    if not isinstance(url, str):
        raise UrlError(f"URL must be text, not {type(url).__name__}")
    m = _FAST_URL.fullmatch(url)
    if m is not None:
        scheme, host, port_text, path, query = m.groups()
        # The regex already required a host whose last label starts with a letter (never an IPv4 number).
        if not port_text and (not path or "/." not in path):
            scheme = scheme.lower()
            host = host.lower()
            path = path or "/"
            if query:
                return CanonicalUrl(scheme, host, SPECIAL_PORTS[scheme], path, query,
                                    f"{scheme}://{host}{path}?{query}")
            return CanonicalUrl(scheme, host, SPECIAL_PORTS[scheme], path, "", f"{scheme}://{host}{path}")
        fast = _fast_url(m)
        if fast is not None:
            return fast
    text = url.strip(_C0_SPACE).translate(_TAB_NEWLINE)
    if not text:
        raise UrlError("empty URL")
    m = _SCHEME.match(text)
    scheme = "http"
    rest = text
    if m and (text[m.end() : m.end() + 2] in ("//", "\\\\", "/\\", "\\/") or m.group(1).lower() in SPECIAL_PORTS):
        scheme = m.group(1).lower()
        rest = text[m.end() :]
        if scheme not in SPECIAL_PORTS:
            raise UrlError(f"unsupported scheme {scheme!r}")
    elif m and not re.match(r"[0-9]*(?:[/\\?#]|$)", text[m.end() :]):
        # "mailto:x@example.com" is a scheme, not host "mailto" with a port: never read it as http.
        raise UrlError(f"unsupported scheme {m.group(1).lower()!r}")
    rest = rest.lstrip("/\\")
    end = len(rest)
    for sep in "/\\?#":
        k = rest.find(sep)
        if 0 <= k < end:
            end = k
    authority, tail = rest[:end], rest[end:]
    authority = authority.rpartition("@")[2]  # userinfo never counts as the host
    host_text, port_text = _split_port(authority)
    if not host_text:
        raise UrlError(f"no host in URL {url!r}")
    host = canonical_host_for_url(host_text)
    default_port = SPECIAL_PORTS[scheme]
    port = default_port
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()):
            raise UrlError(f"invalid port {port_text!r} in {url!r}")
        port = int(port_text)
        if port > 65535:
            raise UrlError(f"port out of range in {url!r}")
    tail = tail.partition("#")[0]
    path_text, has_query, query_text = tail.partition("?")
    path = normalise_path(path_text)
    query = _encode(query_text, _QUERY_ENCODE) if has_query else ""
    port_part = "" if port == default_port else f":{port}"
    text_out = f"{scheme}://{host}{port_part}{path}" + (f"?{query}" if query else "")
    return CanonicalUrl(scheme, host, port, path, query, text_out)


def _fast_url(m: re.Match[str]) -> CanonicalUrl | None:
    scheme, host, port_text, path, query = m.groups()
    scheme = scheme.lower()
    host = host.lower()
    if path and "/." in path:
        return None
    default_port = SPECIAL_PORTS[scheme]
    port = int(port_text) if port_text else default_port
    if port > 65535:
        return None
    path = path or "/"
    query = query or ""
    port_part = "" if port == default_port else f":{port}"
    text = f"{scheme}://{host}{port_part}{path}?{query}" if query else f"{scheme}://{host}{port_part}{path}"
    return CanonicalUrl(scheme, host, port, path, query, text)


def canonical_host_for_url(host_text: str) -> str:
    """Host as it appears inside a URL: bare IPv6 without brackets is not allowed there."""
    if (":" in host_text and not host_text.startswith("[")) or host_text != host_text.strip():
        raise UrlError(f"invalid host {host_text!r}")
    return canonical_host(host_text)


def _split_port(authority: str) -> tuple[str, str]:
    inside = False
    for i, c in enumerate(authority):
        if c == "[":
            inside = True
        elif c == "]":
            inside = False
        elif c == ":" and not inside:
            return authority[:i], authority[i + 1 :]
    return authority, ""


def normalise_path(raw: str) -> str:
    """Resolve dot segments and normalise escapes; `raw` is the path part of a URL (may be empty)."""
    segments = raw.replace("\\", "/").split("/")
    if segments and segments[0] == "":
        segments = segments[1:]
    out: list[str] = []
    for i, seg in enumerate(segments):
        seg = _normalise_escapes(_encode(seg, _PATH_ENCODE))
        last = i == len(segments) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def _encode(text: str, encode_set: frozenset[str]) -> str:
    if text.isascii() and not any(c in encode_set for c in text):
        return text
    parts = []
    for c in text:
        if c in encode_set or not c.isascii():
            parts.append("".join(f"%{b:02X}" for b in c.encode("utf-8", errors="surrogatepass")))
        else:
            parts.append(c)
    return "".join(parts)


def _normalise_escapes(seg: str) -> str:
    if "%" not in seg:
        return seg
    out, i, n = [], 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "%" and i + 2 < n and seg[i + 1] in _HEX and seg[i + 2] in _HEX:
            ch = chr(int(seg[i + 1 : i + 3], 16))
            out.append(ch if ch in _UNRESERVED else "%" + seg[i + 1 : i + 3].upper())
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


def is_ip_literal(host: str) -> bool:
    """True for a canonical IPv4 dotted quad or a bracketed IPv6 literal."""
    return host.startswith("[") or _ends_in_number(host)


__all__ = ["CanonicalUrl", "UrlError", "canonical_host", "canonical_url", "is_ip_literal", "normalise_path"]
