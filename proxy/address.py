"""Listening addresses as admins write them: the one HOST:PORT parser of the gateway's options."""

from __future__ import annotations

from typing import NamedTuple


class Address(NamedTuple):
    host: str  # a name or an IP, IPv6 without brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(spec: str, default_host: str = "127.0.0.1") -> Address:
    """"HOST:PORT", ":PORT", "PORT" or "[v6]:PORT" -> Address; raises ValueError saying what is wrong."""
    spec = spec.strip()
    if not spec:
        raise ValueError("empty address: write HOST:PORT, e.g. 127.0.0.1:8080")
    if spec.startswith("["):
        host, sep, port = spec[1:].partition("]:")
        if not sep:
            raise ValueError(f"{spec!r}: expected [IPv6]:PORT")
    elif spec.count(":") > 1:
        raise ValueError(f"{spec!r}: write an IPv6 address in brackets, e.g. [::1]:8080")
    elif ":" in spec:
        host, _, port = spec.rpartition(":")
    else:
        host, port = "", spec
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{spec!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{spec!r}: the port must be between 0 and 65535")
    return Address(host or default_host, number)
