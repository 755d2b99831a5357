"""The canonical form of a destination: what every decision and every list entry is compared on.

Hosts follow the WHATWG URL Standard's host parser (the web-platform-tests data is the oracle in
tests/engine/test_wpt_hosts.py), so a filter cannot be talked round by spelling the same host in
another way: `EXAMPLE.com`, `ex%61mple.com`, Unicode vs punycode, `http://2130706433/`, `[0:0::1]`.
We differ where a browser keeps a spelling that reaches the same destination: a trailing dot is dropped
(`example.com.` resolves to the same site; a host with an empty last label after that, `example.com..`, is an
error, so a block), and an IPv6 address that stands for an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`,
IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) is that IPv4 address, for lists and rules alike.

Paths are normalised the way the most permissive common server reads them, so that no spelling moves a
path out of a `urls` entry's reach: backslashes and encoded slashes (`%2F`, `%5C`) are slashes, empty
segments are merged (nginx reads `//secret` as `/secret`), dot segments are resolved (after the decoding,
so `..%2F` counts), percent-encoded unreserved characters are decoded and other escapes upper-cased. Case
is kept here; the index compares paths lower-cased, as squidGuard does for UT1 `urls`. The decision is made
on this form; the request is forwarded as the client wrote it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from classgate.policies.errors import UrlError
from classgate.policies.idna_uts46 import domain_to_ascii
from classgate.policies.ipliteral import ends_in_number, parse_ipv4, parse_ipv6, serialise_ipv6

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
# The common case: http(s)://host/path?query that is canonical already. A tail (path and query) with none of
# these characters, and no dot segment, is left as it is by the full parser below, so it can be kept as is.
_TAIL_NEEDS_WORK = re.compile(r"[^A-Za-z0-9\-._~!$&()*+,;=:@/?\[\]^|]")
_HOST_SIMPLE = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_QUERY_ENCODE = frozenset("\x20\"#<>'\x7f") | frozenset(chr(c) for c in range(0x20))


def _encode_pattern(chars: frozenset[str]) -> re.Pattern[str]:
    """Matches one character to percent-encode: one of `chars`, or any non-ASCII one."""
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "\u0080-\U0010ffff]")


_PATH_ENCODE_RE = _encode_pattern(_PATH_ENCODE)
_QUERY_ENCODE_RE = _encode_pattern(_QUERY_ENCODE)
_ESCAPE = re.compile("%[0-9A-Fa-f]{2}")
# Every spelling of an escape -> its normal form: the unreserved character itself, else upper-case hex.
_ESCAPES = {f"%{a}{b}": (chr(int(a + b, 16)) if chr(int(a + b, 16)) in _UNRESERVED else f"%{a}{b}".upper())
            for a in _HEX for b in _HEX}


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
        pieces = parse_ipv6(inner, raw)
        embedded = embedded_ipv4(pieces)
        if embedded is not None:
            return embedded
        return "[" + serialise_ipv6(pieces) + "]"
    return _parse_domain(text, raw)


def embedded_ipv4(pieces: list[int]) -> str | None:
    """The dotted IPv4 address an IPv6 address (eight 16-bit pieces) stands for, or None.

    IPv4-mapped ::ffff:0:0/96 (a dual-stack socket's view of an IPv4 peer), IPv4-compatible ::/96 (except
    :: and ::1) and the NAT64 well-known prefix 64:ff9b::/96 all reach the IPv4 address in their last 32 bits."""
    head = pieces[:6]
    mapped = head == [0, 0, 0, 0, 0, 0xFFFF]
    compatible = head == [0] * 6 and (pieces[6] or pieces[7] > 1)
    nat64 = head == [0x64, 0xFF9B, 0, 0, 0, 0]
    if not (mapped or compatible or nat64):
        return None
    return f"{pieces[6] >> 8}.{pieces[6] & 0xFF}.{pieces[7] >> 8}.{pieces[7] & 0xFF}"


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
    if ends_in_number(host):
        return parse_ipv4(host, raw)
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


# ---------------------------------------------------------------- URLs

def canonical_url(url: str) -> CanonicalUrl:
    """Parse an absolute http(s)/ws(s)/ftp URL, or a scheme-less `host/path` (read as http)."""
    if not isinstance(url, str):
        raise UrlError(f"URL must be text, not {type(url).__name__}")
    return _already_canonical(url) or _canonical_url_full(url)


def _canonical_url_full(url: str) -> CanonicalUrl:
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
    query = _encode(query_text, _QUERY_ENCODE_RE) if has_query else ""
    port_part = "" if port == default_port else f":{port}"
    text_out = f"{scheme}://{host}{port_part}{path}" + (f"?{query}" if query else "")
    return CanonicalUrl(scheme, host, port, path, query, text_out)


def _already_canonical(url: str) -> CanonicalUrl | None:
    """Most URLs a proxy sees: a lower-case name host, no port or userinfo, a plain path. None = use the
    full parser (which gives the same answer for these, only slower: tests check that it agrees)."""
    if url.startswith("https://"):
        scheme, rest = "https", url[8:]
    elif url.startswith("http://"):
        scheme, rest = "http", url[7:]
    else:
        return None
    slash = rest.find("/")
    if slash < 0:
        host, tail = rest, "/"
    else:
        host, tail = rest[:slash], rest[slash:]
    # A lower-case ASCII name whose last label starts with a letter: never an IPv4 number, never a port.
    if not is_plain_host(host):
        return None
    if "?" in host or _TAIL_NEEDS_WORK.search(tail) or "/." in tail or "//" in tail.partition("?")[0]:
        return None
    path, _, query = tail.partition("?")
    if not path:
        path = "/"
    if not path.startswith("/"):
        return None  # "http://host?q" is handled (and given its "/") by the full parser
    text = f"{scheme}://{host}{path}?{query}" if query else f"{scheme}://{host}{path}"
    return CanonicalUrl(scheme, host, SPECIAL_PORTS[scheme], path, query, text)


def is_plain_host(text: str) -> bool:
    """True when `text` is a canonical host already (lower-case ASCII labels, the last starting with a
    letter: never an IPv4 number); canonical_host() would return it unchanged."""
    return _HOST_SIMPLE.fullmatch(text) is not None and "a" <= text[text.rfind(".") + 1] <= "z"


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


_ENCODED_SLASH = re.compile(r"%(?:2[Ff]|5[Cc])")


def normalise_path(raw: str) -> str:
    """Slashes (also encoded ones) merged, dot segments resolved, escapes normalised; `raw` is the path part
    of a URL (may be empty). A trailing slash is kept: `/dir/` and `/dir` are not the same resource."""
    if "%" in raw:
        raw = _ENCODED_SLASH.sub("/", raw)
    # Escapes are normalised on the whole path at once (neither step can make a slash, so this equals doing it
    # per segment), and before dot segments are looked for: `%2e%2E` is `..`.
    raw = _normalise_escapes(_encode(raw, _PATH_ENCODE_RE))
    segments = raw.replace("\\", "/").split("/")
    if segments and segments[0] == "":
        segments = segments[1:]
    # Empty segments are merged ("//a///b" is "/a/b"), except a final one: the trailing slash.
    segments = [s for s in segments[:-1] if s] + segments[-1:]
    out: list[str] = []
    for i, seg in enumerate(segments):
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


def _encode(text: str, encode_set: re.Pattern[str]) -> str:
    if text.isascii() and encode_set.search(text) is None:
        return text
    # One regex pass, not a Python loop per character: a client controls the length (up to the URL cap).
    return encode_set.sub(_percent_encoded, text)


def _percent_encoded(m: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in m.group().encode("utf-8", errors="surrogatepass"))


def _normalise_escapes(seg: str) -> str:
    """Each `%XX` escape as its unreserved character, else with upper-case hex digits."""
    if "%" not in seg:
        return seg
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], seg)


def is_ip_literal(host: str) -> bool:
    """True for a canonical IPv4 dotted quad or a bracketed IPv6 literal."""
    return host.startswith("[") or ends_in_number(host)


__all__ = ["CanonicalUrl", "UrlError", "canonical_host", "canonical_url", "is_ip_literal", "is_plain_host",
           "normalise_path"]
