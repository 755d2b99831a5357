"""The index file's byte layout, shared by its writer (builder.py) and its reader (table.py).

Little-endian, every array 8-byte aligned, so several proxy workers can share one file's pages:

    header   magic "CGIDX002", dir_bits, counts and byte offsets (HEADER)
    keys     uint64[n]   xxh3_64 of each canonical key, sorted, unique
    sets     uint16[n]   index into the list-set table: which lists hold that key
    dir      uint32[2**dir_bits + 1]  first key position per top-bits bucket (narrows the bisect to a few)
    urlhosts uint64[m]   sorted hashes of hosts that have `urls` entries (so paths are only probed there)
    meta     JSON: list names, the list-set table, per-list counts, junk warnings
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import xxhash

MAGIC = b"CGIDX002"
HEADER = struct.Struct("<8sIIQQQQQQQ")  # magic, dir_bits, pad, n, m, off_keys, off_sets, off_dir, off_url, off_meta
hash_bytes = xxhash.xxh3_64_intdigest


def key_hash(key: str) -> int:
    return hash_bytes(key.encode())


def dir_bits_for(n: int) -> int:
    """About three keys per bucket: the bisect then touches one or two cache lines."""
    return max(4, min(24, int(n).bit_length() - 2))


def align(n: int) -> int:
    return (n + 7) & ~7


@dataclass(frozen=True)
class Offsets:
    """Where each region starts, from the number of keys (n), of URL hosts (m) and the directory's bits."""

    keys: int
    sets: int
    dir: int
    url: int
    meta: int

    @classmethod
    def of(cls, n: int, m: int, dir_bits: int) -> Offsets:
        keys = align(HEADER.size)
        sets = keys + 8 * n
        directory = align(sets + 2 * n)
        url = align(directory + 4 * (2**dir_bits + 1))
        return cls(keys, sets, directory, url, url + 8 * m)
