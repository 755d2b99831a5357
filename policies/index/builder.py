"""Compiling lists into the index file, piece by piece, in a bounded amount of memory.

A list's entries arrive in pieces (a few hundred thousand lines at a time, see build.py); each piece is
hashed at once and only its 8-byte hashes are kept, sorted, deduplicated and cut into RUNS runs by the hash's
top bits. Writing takes one run at a time: merge its pieces, group equal keys, write the keys. Since the
runs are ranges of hash values, the keys come out in one sorted order with no global sort, and the peak is
the hashes (8 bytes an entry) plus one run's working arrays, instead of every entry as a Python string
(983 MiB for the 6.1M-entry benchmark before, 159 MiB now: docs/performance.md, "Compile memory"). The
bytes are those of the first, whole-in-memory builder: tests/policies/test_index_builder.py compares them.
"""

from __future__ import annotations

import io
import json
import operator
from collections.abc import Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import BinaryIO

import numpy as np

from classgate.policies.atomicfile import atomic_output
from classgate.policies.errors import Problem
from classgate.policies.index.layout import HEADER, MAGIC, Offsets, align, dir_bits_for, hash_bytes, key_hash

RUN_BITS = 4  # 16 runs; the directory has at least 2**4 buckets, so a run is a whole number of buckets
RUNS = 1 << RUN_BITS
_RUN_SHIFT = np.uint64(64 - RUN_BITS)
_RUN_STARTS = np.arange(1, RUNS, dtype=np.uint64) << _RUN_SHIFT
MAX_SETS = 0xFFFF  # a set id is a uint16


class IndexBuilder:
    """Lists in, index bytes out. add_list, then add (any number of pieces) and add_junk for each list."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._junk_lines: list[int] = []
        self._problems: list[list[Problem]] = []
        # Per run: (list id, sorted unique hashes of one piece that fall in the run).
        self._runs: list[list[tuple[int, np.ndarray]]] = [[] for _ in range(RUNS)]
        self._url_hosts: set[str] = set()
        self._url_tail_max = 0  # the longest path (+ query) of any URL entry: no longer request prefix can match
        self._single_label = False  # any entry a single label ("com", "localhost")

    def add_list(self, name: str) -> int:
        """A new list; its id (lists are numbered in the order they are added)."""
        self._names.append(name)
        self._junk_lines.append(0)
        self._problems.append([])
        return len(self._names) - 1

    def add(self, list_id: int, domains: Sequence[str], urls: Sequence[str] = ()) -> None:
        """A piece of a list's canonical entries: hashed now; the strings are not kept."""
        if not self._single_label and not all(map(operator.contains, domains, repeat("."))):
            self._single_label = True
        for url in urls:
            host, slash, tail = url.partition("/")
            if slash:
                self._url_hosts.add(host)
                self._url_tail_max = max(self._url_tail_max, len(tail) + 1)
        hashes = np.fromiter(map(hash_bytes, map(str.encode, chain(domains, urls))), dtype=np.uint64,
                             count=len(domains) + len(urls))
        hashes.sort()  # sort + neighbour compare: far faster than np.unique's hash path on millions
        if hashes.size > 1:
            hashes = hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))]
        for run, part in zip(self._runs, np.split(hashes, np.searchsorted(hashes, _RUN_STARTS))):
            if part.size:
                run.append((list_id, part))

    def add_junk(self, list_id: int, junk_lines: int, problems: Sequence[Problem]) -> None:
        """The lines a list's reader skipped (recorded in the index, shown as the policy's warnings)."""
        self._junk_lines[list_id] += junk_lines
        self._problems[list_id].extend(problems)

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        self.write(out)
        return out.getvalue()

    def write_file(self, path: Path) -> None:
        """Write atomically: a worker never maps a half-written index."""
        with atomic_output(path) as out:
            self.write(out)

    def write(self, out: BinaryIO) -> None:
        """Write the index to `out` (seekable and readable: the keys are read back for the directory)."""
        n_lists = len(self._names)
        if n_lists > MAX_SETS and any(self._runs):
            raise ValueError("more than 65535 distinct combinations of lists")
        base = out.tell()
        out.write(bytes(align(HEADER.size)))  # the header, written last when the offsets are known
        counts = np.zeros(n_lists, dtype=np.int64)
        run_sizes: list[int] = []
        run_sets: list[np.ndarray] = []
        run_multi: list[np.ndarray] = []
        masks: list[np.ndarray] = []
        for pieces in self._runs:
            keys, ids = _merge(pieces)
            counts += np.bincount(ids, minlength=n_lists)
            unique_keys, set_ids, multi, multi_masks = _group(keys, ids, n_lists)
            out.write(unique_keys.astype("<u8").tobytes())
            run_sizes.append(int(unique_keys.size))
            run_sets.append(set_ids)
            run_multi.append(multi)
            masks.append(multi_masks)
        n = sum(run_sizes)
        table = _number_sets(n_lists, run_sets, run_multi, masks) if n else []
        dir_bits = dir_bits_for(n)
        url_hashes = np.unique(np.fromiter((key_hash(h) for h in self._url_hosts), dtype=np.uint64,
                                           count=len(self._url_hosts)))
        offsets = Offsets.of(n, int(url_hashes.size), dir_bits)
        for set_ids in run_sets:
            out.write(set_ids.astype("<u2").tobytes())
        _pad(out, base + offsets.dir)
        out.write(_directory(out, base + offsets.keys, run_sizes, dir_bits).astype("<u4").tobytes())
        _pad(out, base + offsets.url)
        out.write(url_hashes.astype("<u8").tobytes())
        out.write(json.dumps(self._meta(table, counts)).encode())
        out.seek(base)
        out.write(HEADER.pack(MAGIC, dir_bits, 0, n, url_hashes.size, offsets.keys, offsets.sets, offsets.dir,
                              offsets.url, offsets.meta))
        out.seek(0, io.SEEK_END)

    def _meta(self, table: list[list[int]], counts: np.ndarray) -> dict:
        return {
            # Whether any entry is a single label ("com", "localhost"): if none, lookups skip the last suffix.
            "single_label": self._single_label or any("." not in h for h in self._url_hosts),
            "url_tail_max": self._url_tail_max,
            "lists": self._names,
            "sets": table,
            "counts": counts.tolist(),
            "junk_lines": self._junk_lines,
            "problems": [[p.file, p.line, p.col, p.message, p.severity] for ps in self._problems for p in ps],
        }


def _merge(pieces: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One run's (key, list id) pairs, sorted by key then list, each pair once."""
    if not pieces:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint32)
    keys = np.concatenate([part for _, part in pieces])
    ids = np.repeat(np.array([list_id for list_id, _ in pieces], dtype=np.uint32),
                    [part.size for _, part in pieces])
    order = np.lexsort((ids, keys))
    keys, ids = keys[order], ids[order]
    if keys.size > 1:  # a list's pieces may share keys (duplicates far apart in one file)
        new = np.concatenate(([True], (keys[1:] != keys[:-1]) | (ids[1:] != ids[:-1])))
        keys, ids = keys[new], ids[new]
    return keys, ids


def _group(keys: np.ndarray, ids: np.ndarray, n_lists: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique keys; for each, its list id when one list holds it (most keys); for the keys several lists
    hold, their positions and one bit mask of lists each (one uint64 word per 64 lists)."""
    words = (n_lists + 63) // 64
    if keys.size == 0:
        return keys, np.zeros(0, np.uint16), np.zeros(0, np.int64), np.zeros((0, words), np.uint64)
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    counts = np.diff(np.append(starts, keys.size))
    set_ids = ids[starts].astype(np.uint16)  # singleton sets come first, one per list: set id == list id
    multi = np.flatnonzero(counts > 1)
    masks = np.zeros((multi.size, words), dtype=np.uint64)
    if multi.size:
        in_multi = np.repeat(counts > 1, counts)
        sub_ids = ids[in_multi].astype(np.uint64)
        sub_starts = np.concatenate(([0], np.cumsum(counts[multi])[:-1]))
        for w in range(words):
            bits = np.where(sub_ids // 64 == w, np.uint64(1) << (sub_ids % np.uint64(64)), np.uint64(0))
            masks[:, w] = np.bitwise_or.reduceat(bits, sub_starts)
    return keys[starts], set_ids, multi, masks


def _number_sets(n_lists: int, run_sets: list[np.ndarray], run_multi: list[np.ndarray],
                 masks: list[np.ndarray]) -> list[list[int]]:
    """The list-set table: one singleton per list, then every distinct combination of lists in the order
    of its mask; the keys several lists hold get their combination's id (in run_sets, in place)."""
    table: list[list[int]] = [[i] for i in range(n_lists)]
    all_masks = np.concatenate(masks)
    if not all_masks.shape[0]:
        return table
    # A few hundred combinations at most, so the per-combination loop is cheap.
    combos, inverse = np.unique(all_masks, axis=0, return_inverse=True)
    for row in combos.tolist():
        table.append([w * 64 + b for w, word in enumerate(row) for b in range(64) if word >> b & 1])
    if len(table) > MAX_SETS:
        raise ValueError("more than 65535 distinct combinations of lists")
    set_of = (n_lists + inverse.reshape(-1)).astype(np.uint16)
    start = 0
    for set_ids, multi in zip(run_sets, run_multi):
        set_ids[multi] = set_of[start : start + multi.size]
        start += multi.size
    return table


def _directory(out: BinaryIO, keys_at: int, run_sizes: list[int], dir_bits: int) -> np.ndarray:
    """First key position per top-bits bucket; a run covers 2**(dir_bits - RUN_BITS) whole buckets, so each
    run's keys, read back from `out`, fill their own slice."""
    directory = np.empty(2**dir_bits + 1, dtype=np.uint32)
    per_run = 1 << (dir_bits - RUN_BITS)
    shift = np.uint64(64 - dir_bits)
    here = out.tell()
    position = 0
    for run, size in enumerate(run_sizes):
        out.seek(keys_at + 8 * position)
        keys = np.frombuffer(out.read(8 * size), dtype="<u8")
        buckets = (keys >> shift).astype(np.int64)
        first = run * per_run
        directory[first : first + per_run] = position + np.searchsorted(
            buckets, np.arange(first, first + per_run, dtype=np.int64), side="left")
        position += size
    directory[-1] = position
    out.seek(here)
    return directory


def _pad(out: BinaryIO, to: int) -> None:
    out.write(bytes(to - out.tell()))
