"""The compiled index: lookups by list, list-sets, URL prefixes, the file format, size per entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from classgate.policies.index.table import (
    DomainIndex,
    IndexFormatError,
    IndexInput,
    build_index,
    host_suffixes,
    write_index,
)


@pytest.mark.parametrize(
    ("host", "suffixes"),
    [
        ("a.b.example.com", ["a.b.example.com", "b.example.com", "example.com", "com"]),
        ("localhost", ["localhost"]),
        ("127.0.0.1", ["127.0.0.1"]),
        ("[::1]", ["[::1]"]),
        ("1.2.3.example", ["1.2.3.example", "2.3.example", "3.example", "example"]),
    ],
)
def test_host_suffixes(host: str, suffixes: list[str]) -> None:
    assert host_suffixes(host) == suffixes


def _lists_of(index: DomainIndex, sid: int) -> set[str]:
    return {index.lists[i] for i in index.list_sets[sid]}


@pytest.fixture(scope="module")
def index() -> DomainIndex:
    return DomainIndex(build_index([
        IndexInput("a", ["shared.example", "only-a.example", "1.2.3.4"], ["site.example/dir", "site.example/?v=1"]),
        IndexInput("b", ["shared.example", "only-b.example", "only-b.example"], []),
        IndexInput("c", [], ["site.example/dir/sub", "other.example"]),
    ]))


@pytest.mark.parametrize(
    ("key", "lists"),
    [
        ("shared.example", {"a", "b"}),
        ("only-a.example", {"a"}),
        ("only-b.example", {"b"}),
        ("1.2.3.4", {"a"}),
        ("other.example", {"c"}),  # a `urls` entry without a path is a whole site
        ("nothere.example", None),
        ("site.example", None),
    ],
)
def test_find(index: DomainIndex, key: str, lists: set[str] | None) -> None:
    sid = index.find(key)
    assert (None if sid < 0 else _lists_of(index, sid)) == lists


@pytest.mark.parametrize(
    ("host", "path", "query", "expected"),
    [
        ("site.example", "/dir", "", {("site.example/dir", "a")}),
        ("www.site.example", "/DIR/x", "", {("site.example/dir", "a")}),
        ("site.example", "/dir/sub/page", "", {("site.example/dir", "a"), ("site.example/dir/sub", "c")}),
        ("site.example", "/directory", "", set()),
        ("site.example", "/", "v=1", {("site.example/?v=1", "a")}),
        ("site.example", "/", "v=1&w=2", {("site.example/?v=1", "a")}),
        ("site.example", "/", "v=12", set()),
        ("elsewhere.example", "/dir", "", set()),
    ],
)
def test_url_hits(index: DomainIndex, host: str, path: str, query: str, expected: set) -> None:
    hits = index.url_hits(index.url_hosts_of(host_suffixes(host)), path, query)
    assert {(k, lst) for k, sid in hits for lst in _lists_of(index, sid)} == expected


def test_file_roundtrip_and_damage(tmp_path: Path) -> None:
    data = build_index([IndexInput("x", [f"d{i}.example" for i in range(1000)])])
    path = tmp_path / "i.cgidx"
    write_index(data, path)
    mapped = DomainIndex.open(path)
    assert mapped.size == 1000 and mapped.find("d999.example") >= 0 and mapped.find("d1000.example") < 0
    assert [p.name for p in tmp_path.iterdir()] == ["i.cgidx"]  # no temp file left behind
    for damaged in (b"", b"garbage" * 20, data[:40]):
        with pytest.raises(IndexFormatError):
            DomainIndex(damaged)


def test_empty_index() -> None:
    index = DomainIndex(build_index([IndexInput("empty", [])]))
    assert index.size == 0 and index.find("example.com") == -1
    assert index.host_hits(["example.com", "com"]) == []


def test_bytes_per_entry_is_small() -> None:
    n = 300_000
    data = build_index([IndexInput("big", [f"host{i}.example{i % 97}.com" for i in range(n)])])
    assert len(data) / n <= 16


@pytest.mark.parametrize(
    ("entries", "host", "hits"),
    [
        (["example.com"], "a.b.example.com", ["example.com"]),
        (["example.com", "b.example.com"], "a.b.example.com", ["b.example.com", "example.com"]),
        (["com"], "a.example.com", ["com"]),  # a bare TLD entry: the walk must not skip the last label
        (["example.com", "localhost"], "localhost", ["localhost"]),
        (["1.2.3.4", "3.4"], "1.2.3.4", ["1.2.3.4"]),  # IP literals match only themselves
        (["[::1]"], "[::1]", ["[::1]"]),
    ],
)
def test_lookup_host_agrees_with_the_plain_walk(entries: list[str], host: str, hits: list[str]) -> None:
    index = DomainIndex(build_index([IndexInput("l", entries)]))
    found, _ = index.lookup_host(host)
    assert [s for s, _ in found] == hits
    assert sorted(found) == sorted(index.host_hits(host_suffixes(host)))
