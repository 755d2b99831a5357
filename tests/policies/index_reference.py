"""The index file built the plain way, as a reference for the compiler: sets, dicts and sorted(), no numpy.

It writes what layout.py describes, with the choices of the first builder (commit 5b124a6, which held every
entry in memory and sorted them all at once; its output is the format's definition): one singleton list-set
per list first, then every combination of lists that some key has, ordered by its bit mask read as
uint64 words (lists 0-63 first); an empty index has no list-sets at all.
"""

from __future__ import annotations

import bisect
import json
import struct
from collections.abc import Sequence
from itertools import chain

from classgate.policies.index.layout import HEADER, MAGIC, Offsets, dir_bits_for, key_hash
from classgate.policies.index.table import IndexInput

_WORD = (1 << 64) - 1


def reference_index(lists: Sequence[IndexInput]) -> bytes:
    holders: dict[int, set[int]] = {}
    counts = []
    url_hosts: set[str] = set()
    tail_max = 0
    for list_id, lst in enumerate(lists):
        hashes = {key_hash(entry) for entry in chain(lst.domains, lst.urls)}
        counts.append(len(hashes))
        for h in hashes:
            holders.setdefault(h, set()).add(list_id)
        for url in lst.urls:
            host, slash, tail = url.partition("/")
            if slash:
                url_hosts.add(host)
                tail_max = max(tail_max, len(tail) + 1)
    words = (len(lists) + 63) // 64

    def mask_words(ids: set[int]) -> tuple[int, ...]:
        mask = sum(1 << i for i in ids)
        return tuple(mask >> (64 * w) & _WORD for w in range(words))

    keys = sorted(holders)
    combos = sorted({mask_words(ids) for ids in holders.values() if len(ids) > 1})
    table = [[i] for i in range(len(lists))] + [
        [w * 64 + b for w, word in enumerate(combo) for b in range(64) if word >> b & 1] for combo in combos
    ] if keys else []
    set_of_combo = {combo: len(lists) + i for i, combo in enumerate(combos)}
    sets = [next(iter(holders[h])) if len(holders[h]) == 1 else set_of_combo[mask_words(holders[h])]
            for h in keys]
    dir_bits = dir_bits_for(len(keys))
    directory = [bisect.bisect_left(keys, j << (64 - dir_bits)) for j in range(2**dir_bits)] + [len(keys)]
    url_hashes = sorted({key_hash(h) for h in url_hosts})
    meta = {
        "single_label": any("." not in d for lst in lists for d in lst.domains)
        or any("." not in h for h in url_hosts),
        "url_tail_max": tail_max,
        "lists": [lst.name for lst in lists],
        "sets": table,
        "counts": counts,
        "junk_lines": [lst.junk_lines for lst in lists],
        "problems": [[p.file, p.line, p.col, p.message, p.severity] for lst in lists for p in lst.problems],
    }
    at = Offsets.of(len(keys), len(url_hashes), dir_bits)
    out = bytearray(at.meta)
    HEADER.pack_into(out, 0, MAGIC, dir_bits, 0, len(keys), len(url_hashes), at.keys, at.sets, at.dir, at.url,
                     at.meta)
    struct.pack_into(f"<{len(keys)}Q", out, at.keys, *keys)
    struct.pack_into(f"<{len(sets)}H", out, at.sets, *sets)
    struct.pack_into(f"<{len(directory)}I", out, at.dir, *directory)
    struct.pack_into(f"<{len(url_hashes)}Q", out, at.url, *url_hashes)
    return bytes(out) + json.dumps(meta).encode()
