"""Turning list lines into canonical entries, fast: millions of clean lines take the regex path.

A clean line (lower-case ASCII labels whose last label starts with a letter, so it cannot be an IPv4
number) is already canonical; everything else goes through policies.canonical one by one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import compress
from pathlib import Path

from classgate.policies.canonical import canonical_host, canonical_url
from classgate.policies.errors import UrlError
from classgate.policies.lists import ListData

_CLEAN_DOMAIN = re.compile(r"(?:[a-z0-9_-]+\.)*[a-z][a-z0-9_-]*")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CLEAN_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")  # dotted quad without leading zeros: canonical


_ALLOWED = b"abcdefghijklmnopqrstuvwxyz0123456789._-\n"
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789\n", b"0000000000.")


def read_text(path: Path) -> bytes:
    """The file's bytes with CRLF/CR turned into LF."""
    return _to_lf(path.read_bytes())


def _to_lf(data: bytes) -> bytes:
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def read_pieces(path: Path, piece_bytes: int | None) -> Iterator[tuple[int, bytes]]:
    """The file as read_text gives it, in pieces of whole lines of about `piece_bytes` (None: one piece),
    each with the number of its first line. A piece ends just after a LF of the file, so a CRLF pair and a
    UTF-8 sequence are never split."""
    if piece_bytes is None:
        yield 1, read_text(path)
        return
    first_line = 1
    carry = b""
    with open(path, "rb") as f:
        while block := f.read(piece_bytes):
            block = carry + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:  # a line longer than a piece (or CR-only line ends): read on
                carry = block
                continue
            piece, carry = _to_lf(block[:cut]), block[cut:]
            yield first_line, piece
            first_line += piece.count(b"\n")
    if carry:
        yield first_line, _to_lf(carry)


def split_lines(data: bytes) -> list[str]:
    """Lines decoded as UTF-8 (undecodable bytes become U+FFFD: junk, not a crash)."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_lines(path: Path) -> list[str]:
    return split_lines(read_text(path))


def all_clean_domains(data: bytes) -> bool:
    """True when every line is already a canonical domain name: checked on the whole file at C speed, so a
    clean 5M-line file never goes through a per-line Python loop."""
    body = data[:-1] if data.endswith(b"\n") else data
    if not body or body.translate(None, _ALLOWED):
        return False
    # With newlines as dots and digits as "0": ".." is an empty label (or a blank line / leading or trailing
    # dot) and ".0" a label starting with a digit, which might make the line an IPv4 number ("ends in a
    # number"); such files (UT1 has IPs, and names like 1001cocktails.com) take the exact per-line path.
    zeroed = body.translate(_DIGITS_TO_ZERO)
    return b".." not in zeroed and b".0" not in zeroed and zeroed[:1] not in b".0" and zeroed[-1:] != b"."


def add_domain_file(data: ListData, path: Path, raw: bytes, first_line: int = 1) -> None:
    """A plain/UT1 domains file (or a piece of one, starting at line `first_line`): the whole-piece fast
    path, else line by line."""
    if all_clean_domains(raw):
        data.domains.extend(raw.decode("ascii").split())
        return
    add_domain_lines(data, path, split_lines(raw), first_line=first_line)


def add_domain_lines(data: ListData, path: Path, lines: list[str],
                     token: Callable[[str], str | None] | None = None, first_line: int = 1) -> None:
    """Add one domain per line. `token(line)` extracts the domain from a line of another format
    (None = comment/blank, "" = junk); without it each line is a domain (plain and UT1 files). The
    file's junk summary is the caller's, once every piece is in (ListData.close_file, as read_list does)."""
    if token is None:
        flags = list(map(_CLEAN_DOMAIN.fullmatch, lines))
        found = list(compress(lines, flags))
        data.domains.extend(found)
        if len(found) == len(lines):
            return
        ipv4 = _CLEAN_IPV4.fullmatch
        for number in [n for n, f in enumerate(flags, first_line) if f is None]:
            line = lines[number - first_line]
            if ipv4(line):
                data.domains.append(line)
            else:
                _add_domain(data, path, number, _plain_token(line))
    else:
        for number, line in enumerate(lines, first_line):
            _add_domain(data, path, number, token(line))


def _plain_token(line: str) -> str | None:
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    # "*.example.com" and ".example.com" in plain lists mean the domain and its subdomains, as every entry does.
    return text.removeprefix("*").lstrip(".") or "."


def _add_domain(data: ListData, path: Path, number: int, text: str | None) -> None:
    if text is None:
        return
    if not text or any(c in text for c in " /"):
        data.junk(path, number, f"not a domain: {text!r}")
        return
    try:
        data.domains.append(canonical_host(text))
    except UrlError as exc:
        data.junk(path, number, f"not a domain: {exc}")


def add_url_lines(data: ListData, path: Path, lines: list[str], first_line: int = 1) -> None:
    """UT1 `urls`: `host/path` per line, no scheme; kept as canonical host + lower-cased path prefix."""
    for number, line in enumerate(lines, first_line):
        text = line.split("#", 1)[0].strip() if "#" in line[:1] or " #" in line else line.strip()
        if not text:
            continue
        key = url_key(text)
        if key is None:
            data.junk(path, number, f"not a host/path URL: {text[:80]!r}")
        else:
            data.urls.append(key)


def url_key(text: str) -> str | None:
    """The index key of a URL prefix: "host/path" (no trailing slash) or "host/path?query"; None if junk."""
    if "://" in text[:12]:
        text = text.split("://", 1)[1]
    try:
        url = canonical_url("http://" + text.lstrip("/"))
    except UrlError:
        return None
    path = url.path.lower().rstrip("/")
    if url.query or text.endswith("?"):
        return f"{url.host}{path or '/'}?{url.query}"
    return url.host + path
