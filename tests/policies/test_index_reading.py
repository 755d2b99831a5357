"""The compiler reads lists in pieces (read_list with on_piece): the same entries, junk counts and warnings
(with their line numbers) as a whole read, however the pieces fall."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from classgate.policies.lists import ListData, read_list
from classgate.policies.model import Source

JUNK_MANY = "".join(f"junk line {i}!\n" if i % 3 else f"ok{i}.example\n" for i in range(90))


@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        ("domains", "example.com\n# comment\n\nEXAMPLE.org.\nnot a domain\n1.2.3.4\n0x7f.1\n"),
        ("domains", "a.com\r\nb.com\r\nbad<.com\r\nc.com"),  # CRLF, no final line end
        ("domains", "a.com\rb.com\rbad<.com\r"),  # CR-only line ends
        ("domains", "clean.example\nalso.clean.example\n" * 40),  # the whole-piece fast path
        ("domains", JUNK_MANY),  # more junk than the 20 warnings shown per file, across many pieces
        ("domains", b"ok.com\n\xc3\xbcber.de\n\xff\xfe.com\n"),  # a UTF-8 sequence must not be cut
        ("domains", "x" * 300 + ".example\nshort.example\n"),  # a line longer than a piece
        ("hosts", "127.0.0.1 localhost\n0.0.0.0 ads.example.com tracker.example.com\nnot-an-ip b.com\n"),
        ("adblock", "! comment\n||ads.example.com^\n@@||b.com^\n||example.com/banners/\n||c.com^$third-party\n"),
    ],
)
@pytest.mark.parametrize("piece_bytes", [1, 7, 64, 4096])
def test_pieces_read_like_a_whole_read(tmp_path: Path, fmt: str, content: str | bytes, piece_bytes: int) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    source = Source("src", fmt, path)  # type: ignore[arg-type]
    whole = read_list(source)
    domains: Counter[str] = Counter()
    urls: Counter[str] = Counter()
    pieces = 0

    def take(piece: ListData) -> None:
        nonlocal pieces
        pieces += 1
        domains.update(piece.domains)
        urls.update(piece.urls)

    pieced = read_list(source, piece_bytes=piece_bytes, on_piece=take)
    assert (domains, urls) == (Counter(whole.domains), Counter(whole.urls))
    assert (pieced.junk_lines, pieced.problems) == (whole.junk_lines, whole.problems)
    assert pieced.domains == [] and pieced.urls == []  # handed over, not kept
    if piece_bytes < 64 and "\n" in str(content):
        assert pieces > 1


def test_ut1_folder_in_pieces_counts_each_file(tmp_path: Path) -> None:
    folder = tmp_path / "ut1" / "cat"
    folder.mkdir(parents=True)
    (folder / "domains").write_text(JUNK_MANY)
    (folder / "urls").write_text("example.com/a\nbad url\n" * 30)
    source = Source("ut1", "ut1", tmp_path / "ut1")
    whole = read_list(source, "cat")
    pieced = read_list(source, "cat", piece_bytes=32, on_piece=lambda piece: None)
    assert (pieced.junk_lines, pieced.problems) == (whole.junk_lines, whole.problems)
    assert [p.message for p in whole.problems if p.line == 0] == ["40 more junk lines skipped", "10 more junk lines skipped"]
