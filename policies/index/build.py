"""Building (or finding in the cache) the compiled index for everything a policy's rules can look up.

Lists included by categories keep their own names ("ut1/gambling") so a decision can say which list
matched; a category's inline entries become the list "category:<name>" and a rule's `domains`/`urls`
become "rule:<position>". The cache file is named by a digest of every list file's bytes and every inline
entry, so a changed list can never be served from a stale index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import xxhash

from classgate.policies.errors import PolicyError, Problem
from classgate.policies.index.builder import IndexBuilder
from classgate.policies.index.layout import MAGIC
from classgate.policies.index.table import DomainIndex, IndexFormatError
from classgate.policies.lists import READER_VERSION, ListData, list_files, read_list
from classgate.policies.lists.lines import url_key
from classgate.policies.model import Document

log = logging.getLogger("classgate.policy")

# Lists are read this many bytes at a time (about 300,000 lines of a domains file): a piece's strings are
# what reading holds besides the hashes, instead of a whole 5M-line list's (300 MiB).
PIECE_BYTES = 4 << 20


@dataclass(frozen=True)
class ListRef:
    """A list to index: read from disk (source, list_name) or given inline (domains, urls)."""

    name: str
    source: str | None = None
    list_name: str | None = None
    domains: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


def included_list_files(doc: Document, *, missing: str = "raise") -> list[Path]:
    """Every list file the document's categories include, in order (the files a compile reads).

    `missing`: "raise" (FileNotFoundError naming the category) or "keep" (where the list was, so a file
    watcher notices it coming back). An include of an unknown source raises KeyError in both modes."""
    out: list[Path] = []
    for category in doc.categories.values():
        for include in category.include:
            source_name, _, list_name = include.partition("/")
            source = doc.sources.get(source_name)
            if source is None:
                raise KeyError(f"category {category.name}: unknown source {source_name!r}")
            try:
                out.extend(list_files(source, list_name or None))
            except OSError as exc:
                if missing == "raise":
                    raise FileNotFoundError(f"category {category.name}: {exc}") from None
                out.append(source.path / list_name if list_name else source.path)
    return out


def plan_lists(doc: Document, *, check_files: bool = True
               ) -> tuple[list[ListRef], dict[str, tuple[str, ...]], list[Problem]]:
    """The lists to index and, for each list name, the categories it feeds; problems for bad includes.

    `check_files` False: do not look at the list files (an index compiled from them earlier is used)."""
    refs: dict[str, ListRef] = {}
    categories_of: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for cat in doc.categories.values():
        for include in cat.include:
            src_name, _, list_name = include.partition("/")
            source = doc.sources.get(src_name)
            if source is None:
                problems.append(Problem.at(cat.pos, f"category {cat.name!r}: unknown source {src_name!r}"))
                continue
            try:
                if check_files:
                    list_files(source, list_name or None)
            except FileNotFoundError as exc:
                problems.append(Problem.at(cat.pos, f"category {cat.name!r}: include {include!r}: {exc}"))
                continue
            refs.setdefault(include, ListRef(include, src_name, list_name or None))
            categories_of.setdefault(include, []).append(cat.name)
        if cat.domains or cat.urls:
            name = f"category:{cat.name}"
            refs[name] = ListRef(name, domains=cat.domains, urls=cat.urls)
            categories_of.setdefault(name, []).append(cat.name)
    for position, rule in enumerate(doc.rules):
        if rule.domains or rule.urls:
            name = f"rule:{position}"
            refs[name] = ListRef(name, domains=rule.domains, urls=rule.urls)
    return list(refs.values()), {k: tuple(v) for k, v in categories_of.items()}, problems


def content_digest(doc: Document, refs: list[ListRef]) -> str:
    """Digest of every list's name and bytes (and inline entries), in order: names the cached index."""
    h = xxhash.xxh3_128(MAGIC + f"\0reader{READER_VERSION}".encode())
    for ref in refs:
        h.update(f"\0list\0{ref.name}\0".encode())
        if ref.source is not None:
            for path in list_files(doc.sources[ref.source], ref.list_name):
                h.update(f"\0file\0{path.name}\0".encode())
                with open(path, "rb") as f:  # in blocks: a 5M-line list is 75 MiB
                    while block := f.read(PIECE_BYTES):
                        h.update(block)
        else:
            h.update("\n".join(ref.domains).encode())
            h.update(b"\0urls\0")
            h.update("\n".join(ref.urls).encode())
    return h.hexdigest()


def _read_into(builder: IndexBuilder, doc: Document, ref: ListRef) -> None:
    list_id = builder.add_list(ref.name)
    if ref.source is not None:
        def take(piece: ListData) -> None:
            builder.add(list_id, piece.domains, piece.urls)

        data = read_list(doc.sources[ref.source], ref.list_name, piece_bytes=PIECE_BYTES, on_piece=take)
        builder.add_junk(list_id, data.junk_lines, data.problems)
        return
    urls: list[str] = []
    domains = list(ref.domains)
    for text in ref.urls:
        key = url_key(text)
        if key is not None:
            (urls if "/" in key else domains).append(key)
    builder.add(list_id, domains, urls)


def _build(doc: Document, refs: list[ListRef]) -> IndexBuilder:
    builder = IndexBuilder()
    try:
        for ref in refs:
            _read_into(builder, doc, ref)
    except OSError as exc:
        raise PolicyError([Problem(getattr(exc, "filename", None) or "<lists>", 0, 0,
                                   f"cannot read list: {exc}")]) from None
    return builder


def load_index(doc: Document, refs: list[ListRef], digest: str, cache_dir: Path | None) -> tuple[DomainIndex, bool]:
    """The compiled index: mapped from cache_dir when it holds this digest, else built (and cached)."""
    if cache_dir is None:
        return DomainIndex(_build(doc, refs).to_bytes()), False
    path = cache_dir / f"index-{digest}.cgidx"
    if path.is_file():
        try:
            return DomainIndex.open(path), True
        except (IndexFormatError, OSError, ValueError) as exc:
            log.warning("rebuilding damaged cached index %s: %s", path, exc)
    builder = _build(doc, refs)
    try:
        builder.write_file(path)
        _prune(cache_dir, keep=path)
        return DomainIndex.open(path), False
    except OSError as exc:  # a read-only or full cache dir costs speed next time, not correctness now
        log.warning("cannot cache the compiled index in %s: %s", cache_dir, exc)
        return DomainIndex(builder.to_bytes()), False


KEEP_INDEXES = 4  # the current one plus a few recent: a reload back to the previous lists stays instant


def _prune(cache_dir: Path, keep: Path) -> None:
    """Delete all but the newest few cached indexes. Safe while other workers still map an old one: on
    POSIX an unlinked file stays readable through existing mappings."""
    try:
        found = sorted(cache_dir.glob("index-*.cgidx"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in [p for p in found if p != keep][KEEP_INDEXES - 1 :]:
        old.unlink(missing_ok=True)
