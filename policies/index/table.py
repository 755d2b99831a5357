"""The compiled domain/URL index: sorted 64-bit hashes, one small "list-set" id per hash, memory-mappable.

The file's layout is in layout.py; builder.py writes it, DomainIndex here reads it in place.

A key is a canonical host ("example.com": the domain and every subdomain) or a URL prefix
("example.com/dir", "example.com/?q=1"): hosts contain no "/" so the two never meet. A 64-bit hash has a
false-positive chance of about n/2**64 per probe (3e-13 for 6M keys): accepted, as squidGuard's own hashing
trade-offs are. About 10-12 bytes per key instead of ~117 for a Python set of strings.
"""

from __future__ import annotations

import bisect
import json
import mmap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from classgate.policies.atomicfile import atomic_write
from classgate.policies.errors import Problem
from classgate.policies.index.builder import IndexBuilder
from classgate.policies.index.layout import HEADER, MAGIC
from classgate.policies.index.layout import hash_bytes as _hash


@dataclass(frozen=True)
class IndexInput:
    """One list to index: its name and its canonical entries."""

    name: str
    domains: Sequence[str]
    urls: Sequence[str] = ()
    junk_lines: int = 0
    problems: Sequence[Problem] = ()


def build_index(lists: Sequence[IndexInput]) -> bytes:
    """Compile lists into the index file's bytes (all in memory: for small lists and tests)."""
    builder = IndexBuilder()
    for lst in lists:
        list_id = builder.add_list(lst.name)
        builder.add(list_id, lst.domains, lst.urls)
        builder.add_junk(list_id, lst.junk_lines, lst.problems)
    return builder.to_bytes()


def write_index(data: bytes, path: Path) -> None:
    """Write atomically: a worker never maps a half-written index."""
    atomic_write(path, data)


class IndexFormatError(ValueError):
    """An index file that is not ours or is damaged (it is then rebuilt from the lists)."""


class DomainIndex:
    """Read side: lookups straight on the mapped bytes; nothing is copied per key."""

    def __init__(self, buffer: bytes | mmap.mmap, nbytes: int | None = None, path: Path | None = None):
        self._buffer = buffer  # keeps the mapping alive
        self.path = path  # the file it is mapped from; None when built in memory
        view = memoryview(buffer)
        if len(view) < HEADER.size:
            raise IndexFormatError("index file too short")
        magic, dir_bits, _, n, m, off_keys, off_sets, off_dir, off_url, off_meta = HEADER.unpack_from(view)
        if magic != MAGIC or off_meta > len(view):
            raise IndexFormatError("not a classgate index (or an older format)")
        self.nbytes = len(view)
        self._keys = view[off_keys : off_keys + 8 * n].cast("Q")
        self._sets = view[off_sets : off_sets + 2 * n].cast("H")
        self._dir = view[off_dir : off_dir + 4 * (2**dir_bits + 1)].cast("I")
        self._shift = 64 - dir_bits
        url_hashes = view[off_url : off_url + 8 * m].cast("Q")
        self.url_hosts = frozenset(url_hashes)  # small (tens of thousands): a set is the fastest probe
        try:
            meta = json.loads(bytes(view[off_meta:]))
        except ValueError as exc:
            raise IndexFormatError(f"damaged index metadata: {exc}") from None
        self.lists: tuple[str, ...] = tuple(meta["lists"])
        self.list_sets: tuple[frozenset[int], ...] = tuple(frozenset(s) for s in meta["sets"])
        self.counts: tuple[int, ...] = tuple(meta["counts"])
        self.junk_lines: tuple[int, ...] = tuple(meta["junk_lines"])
        self.problems = [Problem(*p) for p in meta["problems"]]
        self.size = n
        self.single_label = bool(meta.get("single_label", True))
        # None (an index from before this was recorded): every prefix is probed.
        tail_max = meta.get("url_tail_max")
        self.url_tail_max: int | None = int(tail_max) if tail_max is not None else None

    @classmethod
    def open(cls, path: Path) -> DomainIndex:
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(mapped, path=Path(path))

    def find(self, key: str) -> int:
        """The list-set id of `key`, or -1."""
        return self.find_hash(_hash(key.encode()))

    def find_hash(self, h: int) -> int:
        b = h >> self._shift
        lo, hi = self._dir[b], self._dir[b + 1]
        if lo == hi:
            return -1
        keys = self._keys
        i = bisect.bisect_left(keys, h, lo, hi)
        if i < hi and keys[i] == h:
            return self._sets[i]
        return -1

    def host_hits(self, suffixes: Sequence[str]) -> list[tuple[str, int]]:
        """(suffix, list-set id) for each suffix of a host held by some list."""
        if not self.single_label and len(suffixes) > 1:
            suffixes = suffixes[:-1]  # no list holds a bare TLD: one probe fewer for most hosts
        hits = []
        for s in suffixes:
            sid = self.find_hash(_hash(s.encode()))
            if sid >= 0:
                hits.append((s, sid))
        return hits

    def lookup_host(self, host: str) -> tuple[list[tuple[str, int]], list[str]]:
        """Both host lookups in one pass, each suffix hashed once: (suffix, list-set id) hits, and the
        suffixes that have URL entries. The per-request hot path when the host is not in a cache, so it is
        written out flat (same walk as host_suffixes)."""
        keys, sets, directory, shift = self._keys, self._sets, self._dir, self._shift
        url_hosts = self.url_hosts
        hits: list[tuple[str, int]] = []
        with_urls: list[str] = []
        last = host[-1:]
        single = last == "]" or (last.isdigit() and host.replace(".", "").isdigit())  # IP literal: itself only
        start = 0
        while True:
            suffix = host[start:] if start else host
            h = _hash(suffix.encode())
            b = h >> shift
            lo, hi = directory[b], directory[b + 1]
            if lo != hi:
                i = bisect.bisect_left(keys, h, lo, hi)
                if i < hi and keys[i] == h:
                    hits.append((suffix, sets[i]))
            if url_hosts and h in url_hosts:
                with_urls.append(suffix)
            if single:
                break
            dot = host.find(".", start)
            if dot < 0:
                break
            start = dot + 1
            if not self.single_label and host.find(".", start) < 0:
                break  # no list holds a bare TLD: one probe fewer for most hosts
        return hits, with_urls

    def url_hosts_of(self, suffixes: Iterable[str]) -> list[str]:
        """The suffixes of a host that have URL entries (usually none)."""
        if not self.url_hosts:
            return []
        return [s for s in suffixes if _hash(s.encode()) in self.url_hosts]

    def url_hits(self, url_hosts: Iterable[str], path: str, query: str) -> list[tuple[str, int]]:
        """(entry, list-set id) for each URL entry matching: host suffix + path prefix at a segment boundary,
        or the whole path with a query prefix (at "&" boundaries) for entries written with "?"."""
        lowered = path.lower()
        trimmed = lowered.rstrip("/")
        # Only prefixes no longer than the longest entry can match: the work per request is bounded by the
        # entries' length, not the URL's (a URL of 40,000 segments is 40,000 prefixes of up to 80 KB each).
        limit = self.url_tail_max if self.url_tail_max is not None else len(trimmed) + len(query) + 2
        prefixes = []
        pos = trimmed.find("/", 1)
        while pos != -1 and pos <= limit:
            prefixes.append(trimmed[:pos])
            pos = trimmed.find("/", pos + 1)
        if trimmed and len(trimmed) <= limit:
            prefixes.append(trimmed)
        base = (trimmed or "/") + "?"
        queries = [base] if len(base) <= limit else []
        if query and len(base) < limit:
            amp = query.find("&")
            while amp != -1 and len(base) + amp <= limit:
                queries.append(base + query[:amp])
                amp = query.find("&", amp + 1)
            if len(base) + len(query) <= limit:
                queries.append(base + query)
        hits = []
        for host in url_hosts:
            for tail in prefixes + queries:
                key = host + tail
                sid = self.find_hash(_hash(key.encode()))
                if sid >= 0:
                    hits.append((key, sid))
        return hits


def host_suffixes(host: str) -> list[str]:
    """`a.b.c` -> [a.b.c, b.c, c]; IP literals only match themselves."""
    last = host[-1:]
    if last == "]" or (last.isdigit() and host.replace(".", "").isdigit()):
        return [host]
    out = [host]
    pos = host.find(".")
    while pos >= 0:
        out.append(host[pos + 1 :])
        pos = host.find(".", pos + 1)
    return out
