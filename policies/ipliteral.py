"""IP literals in hosts, as the WHATWG URL Standard reads them: IPv4 in decimal, hex, octal and short forms
("ends in a number": `2130706433`, `0x7f.1`, `0177.0.0.1` are all 127.0.0.1) and IPv6 with compression and
embedded IPv4, serialised in the standard's one canonical spelling.
"""

from __future__ import annotations

from classgate.policies.errors import UrlError

_HEX = "0123456789abcdefABCDEF"


def ends_in_number(host: str) -> bool:
    """WHATWG "ends in a number": such a host must parse as IPv4 (or the URL is invalid)."""
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


def parse_ipv4(host: str, raw: str) -> str:
    """The dotted-quad form of an IPv4 host in any of its spellings; raises UrlError (naming `raw`)."""
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


def parse_ipv6(text: str, raw: str) -> list[int]:
    """The eight 16-bit pieces of an IPv6 address (without brackets); raises UrlError (naming `raw`)."""
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


def serialise_ipv6(address: list[int]) -> str:
    """Lower-case hex, the first longest run of two or more zero pieces compressed to "::"."""
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
