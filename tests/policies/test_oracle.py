"""The compiled index against a plain Python suffix-walk oracle over ALL real UT1 lists: zero disagreements.

The oracle reads the UT1 files itself (one entry per line, lower-cased, "#" comments and blanks skipped, runs of
"/" merged) into
a dict {domain: set of lists} and walks `a.b.c`, `b.c`, `c` in it. The index must give the same lists for
every listed domain, a subdomain of each, its parent, and near-misses (`xexample.com`, `example.comx`), and
the same for simple `urls` entries (path prefixes at "/" boundaries).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from classgate.policies.index.table import DomainIndex, IndexInput, build_index, host_suffixes
from classgate.policies.lists import read_list
from classgate.policies.model import Source

_SIMPLE_URL = re.compile(r"([a-z0-9._-]+)((?:/[a-z0-9._~-]+)+)/?")
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")


def _oracle_entries(ut1: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    domains: dict[str, set[str]] = defaultdict(set)
    urls: dict[str, set[str]] = defaultdict(set)
    for folder in sorted(p for p in ut1.iterdir() if p.is_dir()):
        name = f"ut1/{folder.name}"
        if (folder / "domains").is_file():
            for line in (folder / "domains").read_text(encoding="utf-8").splitlines():
                entry = line.strip().lower().lstrip(".")
                if entry and not entry.startswith("#"):
                    domains[entry].add(name)
        if (folder / "urls").is_file():
            for line in (folder / "urls").read_text(encoding="utf-8").splitlines():
                # Empty segments are merged, as servers (and policies.canonical) read them.
                m = _SIMPLE_URL.fullmatch(re.sub(r"/{2,}", "/", line.strip().lower()))
                if m and "/./" not in m.group(0) + "/" and "/../" not in m.group(0) + "/":
                    urls[m.group(1) + m.group(2)].add(name)
    return domains, urls


def _oracle_suffixes(host: str) -> list[str]:
    if _IPV4.fullmatch(host):
        return [host]
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _oracle_host(domains: dict[str, set[str]], host: str) -> set[tuple[str, frozenset[str]]]:
    return {(s, frozenset(domains[s])) for s in _oracle_suffixes(host) if s in domains}


def _index_host(index: DomainIndex, host: str) -> set[tuple[str, frozenset[str]]]:
    # lookup_host is what the engine calls per host; host_hits is the plain walk: both must agree with the oracle.
    hits, _ = index.lookup_host(host)
    assert sorted(hits) == sorted(index.host_hits(host_suffixes(host)))
    return {(s, frozenset(index.lists[i] for i in index.list_sets[sid])) for s, sid in hits}


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_index_agrees_with_suffix_walk_oracle(ut1_dir: Path) -> None:
    started = time.monotonic()
    source = Source("ut1", "ut1", ut1_dir)
    inputs = []
    for folder in sorted(p for p in ut1_dir.iterdir() if p.is_dir()):
        if any((folder / f).is_file() for f in ("domains", "urls")):
            data = read_list(source, folder.name)
            inputs.append(IndexInput(data.name, data.domains, data.urls))
    index = DomainIndex(build_index(inputs))
    assert len(index.lists) > 64  # more lists than one 64-bit mask word: the multi-word path is exercised
    domains, urls = _oracle_entries(ut1_dir)
    assert len(domains) > 500_000

    disagreements = []
    checked = 0
    for domain in domains:
        queries = [domain, "www." + domain, "x" + domain, domain + "x"]
        if "." in domain and not _IPV4.fullmatch(domain):
            queries.append(domain.split(".", 1)[1])
        for q in queries:
            checked += 1
            if _index_host(index, q) != _oracle_host(domains, q):
                disagreements.append(q)
    assert not disagreements[:20], f"{len(disagreements)} of {checked} hosts disagree"

    url_checked = 0
    for entry in urls:
        host, _, path = entry.partition("/")
        for q_host, q_path, should in (
            (host, "/" + path, True),
            ("www." + host, "/" + path + "/deeper/page.html", True),
            (host, "/" + path + "x", False),
            (host, "/" + path.rsplit("/", 1)[0] + "-other", False),
        ):
            url_checked += 1
            got = {(k, frozenset(index.lists[i] for i in index.list_sets[sid]))
                   for k, sid in index.url_hits(index.lookup_host(q_host)[1], q_path, "")}
            expected = set()
            segments = q_path.lower().strip("/").split("/")
            for s in _oracle_suffixes(q_host):
                for n in range(1, len(segments) + 1):
                    key = s + "/" + "/".join(segments[:n])
                    if key in urls:
                        expected.add((key, frozenset(urls[key])))
            if got != expected or (should and not got):
                disagreements.append(f"{q_host}{q_path}")
    assert not disagreements[:20], f"{len(disagreements)} of {url_checked} URLs disagree"
    assert url_checked > 50_000
    assert time.monotonic() - started < 90
