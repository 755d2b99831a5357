"""Which files make up a list, and reading one list in its source's format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from classgate.policies.errors import Problem
from classgate.policies.lists import ListData
from classgate.policies.lists.formats import adblock_token, hosts_tokens
from classgate.policies.lists.lines import add_domain_file, add_url_lines, read_pieces, split_lines
from classgate.policies.model import Source
from classgate.policies.vocabulary import LIST_FORMATS

# UT1 ships English names as symlinks to French folders; copies often lose the links.
UT1_ALIASES = {
    "ads": "publicite",
    "aggressive": "agressif",
    "drugs": "drogue",
    "mail": "forums",
    "porn": "adult",
    "proxy": "redirector",
    "violence": "agressif",
}
UT1_FILES = ("domains", "urls")


def ut1_folder(source: Source, list_name: str) -> Path:
    folder = source.path / list_name
    if not folder.is_dir() and list_name in UT1_ALIASES:
        folder = source.path / UT1_ALIASES[list_name]
    return folder


def list_files(source: Source, list_name: str | None) -> tuple[Path, ...]:
    """The files a list is read from; raises FileNotFoundError naming what is missing."""
    if source.format == "ut1":
        if not list_name:
            raise FileNotFoundError(f"a ut1 source needs a list name: {source.name}/<list>")
        folder = ut1_folder(source, list_name)
        files = tuple(folder / f for f in UT1_FILES if (folder / f).is_file())
        if not files:
            raise FileNotFoundError(f"no {' or '.join(UT1_FILES)} file in {folder}")
        return files
    if not source.path.is_file():
        raise FileNotFoundError(f"no such list file: {source.path}")
    return (source.path,)


def read_list(source: Source, list_name: str | None = None, *, piece_bytes: int | None = None,
              on_piece: Callable[[ListData], None] | None = None) -> ListData:
    """Read one list: `list_name` is the UT1 folder for ut1 sources, None for single-file sources.

    With `on_piece`, files are read in pieces of about `piece_bytes` (whole lines) and each piece's entries
    are handed to `on_piece` and then dropped, so a 5M-line list never sits in memory as 5M strings (the
    index compiler); junk counts and problems are the same as a whole read's."""
    name = f"{source.name}/{list_name}" if list_name else source.name
    files = list_files(source, list_name)
    data = ListData(name=name, files=files)
    for path in files:
        junk_before = data.junk_lines
        try:
            for first_line, raw in read_pieces(path, piece_bytes if on_piece else None):
                _add_piece(data, source.format, path, raw, first_line)
                if on_piece is not None:
                    on_piece(data)
                    data.domains.clear()
                    data.urls.clear()
        except OSError as exc:
            raise FileNotFoundError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if source.format not in LIST_FORMATS:  # the document validator lets none through
            data.problems.append(Problem(str(path), 0, 0, f"unknown list format {source.format!r}"))
        data.close_file(path, junk_before)
    return data


def _add_piece(data: ListData, fmt: str, path: Path, raw: bytes, first_line: int) -> None:
    if fmt == "ut1" and path.name == "urls":
        add_url_lines(data, path, split_lines(raw), first_line)
    elif fmt in ("ut1", "domains"):
        add_domain_file(data, path, raw, first_line)
    elif fmt == "hosts":
        _add_hosts(data, path, split_lines(raw), first_line)
    elif fmt == "adblock":
        _add_adblock(data, path, split_lines(raw), first_line)


def _add_hosts(data: ListData, path: Path, lines: list[str], first_line: int) -> None:
    # A hosts line may name several hosts; flatten to one pseudo-line per host, keeping line numbers.
    for number, line in enumerate(lines, first_line):
        for token in hosts_tokens(line):
            _one(data, path, number, token)


def _add_adblock(data: ListData, path: Path, lines: list[str], first_line: int) -> None:
    for number, line in enumerate(lines, first_line):
        kind, value = adblock_token(line)
        if kind == "domain":
            _one(data, path, number, value)
        elif kind == "url":
            from classgate.policies.lists.lines import url_key

            key = url_key(value)
            if key is None:
                data.junk(path, number, f"not a host/path rule: {line.strip()[:80]!r}")
            else:
                data.urls.append(key)
        elif kind == "junk":
            data.junk(path, number, value)


def _one(data: ListData, path: Path, number: int, token: str) -> None:
    from classgate.policies.lists.lines import _add_domain

    _add_domain(data, path, number, token)
