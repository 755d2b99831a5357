"""ClientHellos with an Encrypted Client Hello extension of real structure (RFC 9849 section 5), for the tests.

Python's ssl module writes the ClientHello (SNI = the outer name); the `encrypted_client_hello` extension
(0xfe0d) is then appended by hand, in its outer form: HPKE suite (KDF HKDF-SHA256, AEAD AES-128-GCM), a
config id, the client's HPKE share (`enc`, 32 bytes for X25519) and the encrypted inner ClientHello (random
bytes here, as in GREASE ECH, which is indistinguishable by design; only the SNI tells them apart).
"""

from __future__ import annotations

import os
import struct

from tests.proxy.proxytest_tls import client_hello_bytes

ECH_EXTENSION = 0xFE0D
OUTER, INNER = 0, 1


def ech_body(kind: int = OUTER, config_id: int = 0x42, payload_size: int = 239) -> bytes:
    if kind == INNER:
        return bytes([INNER])
    enc = os.urandom(32)
    payload = os.urandom(payload_size)
    return (bytes([OUTER]) + struct.pack("!HH", 0x0001, 0x0001) + bytes([config_id])
            + struct.pack("!H", len(enc)) + enc + struct.pack("!H", len(payload)) + payload)


def python_client_hello(sni: str, *, max_tls12: bool = False) -> bytes:
    """The whole first TLS record (record header, handshake header, ClientHello) Python's ssl sends."""
    return client_hello_bytes(sni, max_tls12=max_tls12)


def with_extension(record: bytes, kind: int, body: bytes) -> bytes:
    """`record` (one TLS record holding a ClientHello) with one more extension at the end, lengths fixed."""
    assert record[0] == 0x16 and record[5] == 0x01
    hello = bytearray(record[9:9 + int.from_bytes(record[6:9], "big")])
    offset = 2 + 32  # legacy_version, random
    offset += 1 + hello[offset]  # session id
    offset += 2 + int.from_bytes(hello[offset:offset + 2], "big")  # cipher suites
    offset += 1 + hello[offset]  # compression methods
    extensions_length = int.from_bytes(hello[offset:offset + 2], "big")
    extension = struct.pack("!HH", kind, len(body)) + body
    hello[offset:offset + 2] = (extensions_length + len(extension)).to_bytes(2, "big")
    hello += extension
    handshake = b"\x01" + len(hello).to_bytes(3, "big") + bytes(hello)
    return record[:3] + len(handshake).to_bytes(2, "big") + handshake


def ech_client_hello(sni: str, *, kind: int = OUTER, max_tls12: bool = False) -> bytes:
    """A TLS record with a ClientHello for `sni` carrying the ECH extension."""
    return with_extension(python_client_hello(sni, max_tls12=max_tls12), ECH_EXTENSION, ech_body(kind))
