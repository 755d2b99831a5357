"""List readers: each format with comments, blank lines, CRLF, duplicates and junk (junk is a warning)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classgate.policies.lists import MAX_WARNINGS_PER_FILE, ListData, read_list
from classgate.policies.lists.lines import add_domain_file, add_domain_lines
from classgate.policies.lists.read import list_files
from classgate.policies.model import Source


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("fmt", "content", "domains", "urls", "junk_lines"),
    [
        ("domains", "example.com\n# comment\n\nEXAMPLE.org.\n", ["example.com", "example.org"], [], []),
        ("domains", "a.com\r\nb.com\r\n", ["a.com", "b.com"], [], []),
        ("domains", "a.com\na.com\n", ["a.com", "a.com"], [], []),  # duplicates are dropped by the index
        ("domains", "*.wild.com\n.dot.com\n", ["wild.com", "dot.com"], [], []),
        ("domains", "good.com\nnot a domain\nhttp://x.com/y\nbad<.com\n", ["good.com"], [], [2, 3, 4]),
        ("domains", "1.2.3.4\n0x7f.1\n", ["1.2.3.4", "127.0.0.1"], [], []),
        ("domains", "bücher.de  # inline comment\n", ["xn--bcher-kva.de"], [], []),
        ("domains", b"ok.com\n\xff\xfe.com\n", ["ok.com"], [], [2]),
        ("hosts", "127.0.0.1 localhost\n0.0.0.0 ads.example.com tracker.example.com # x\n::1 ip6-localhost\n",
         ["ads.example.com", "tracker.example.com"], [], []),
        ("hosts", "0.0.0.0 a.com\r\nnot-an-ip b.com\n# c\n\nbare.example.com\n", ["a.com", "bare.example.com"], [],
         [2]),
        ("hosts", "0.0.0.0 a.com\n0.0.0.0 bad..<>\n", ["a.com"], [], [2]),
        ("adblock", "[Adblock Plus 2.0]\n! comment\n||ads.example.com^\n||Track.Example.org^|\n",
         ["ads.example.com", "track.example.org"], [], []),
        ("adblock", "||example.com/banners/\n", [], ["example.com/banners"], []),
        ("adblock", "||a.com^\n@@||b.com^\n||c.com^$third-party\n/banner/*\nexample.com##.ad\n", ["a.com"], [],
         [2, 3, 4, 5]),
    ],
)
def test_single_file_formats(tmp_path: Path, fmt: str, content: str | bytes, domains: list[str], urls: list[str],
                             junk_lines: list[int]) -> None:
    path = _write(tmp_path / "list.txt", content)
    data = read_list(Source("src", fmt, path))  # type: ignore[arg-type]
    assert data.domains == domains
    assert data.urls == urls
    assert data.junk_lines == len(junk_lines)
    assert [p.line for p in data.problems] == junk_lines
    assert all(p.severity == "warning" and p.file == str(path) for p in data.problems)


@pytest.mark.parametrize(
    ("urls_file", "expected", "junk"),
    [
        ("example.com/games\n", ["example.com/games"], 0),
        ("Example.COM/Games/\n", ["example.com/games"], 0),
        ("example.com/a/../b\n", ["example.com/b"], 0),
        ("example.com/%7Efoo\n", ["example.com/~foo"], 0),
        ("example.com/\n", ["example.com"], 0),  # a whole site written as a URL: a domain entry
        ("example.com/index.php?\nexample.com/?v=1\n", ["example.com/index.php?", "example.com/?v=1"], 0),
        ("ok.com/x\nhttp://with-scheme.com/y\n:::/bad\n", ["ok.com/x", "with-scheme.com/y"], 1),
    ],
)
def test_ut1_urls(tmp_path: Path, urls_file: str, expected: list[str], junk: int) -> None:
    _write(tmp_path / "ut1" / "cat" / "urls", urls_file)
    data = read_list(Source("ut1", "ut1", tmp_path / "ut1"), "cat")
    assert data.urls == expected
    assert data.junk_lines == junk


def test_ut1_alias_falls_back_to_the_french_folder(tmp_path: Path) -> None:
    _write(tmp_path / "ut1" / "publicite" / "domains", "ads.example.com\n")
    data = read_list(Source("ut1", "ut1", tmp_path / "ut1"), "ads")
    assert data.domains == ["ads.example.com"]


def test_missing_list_is_an_error_naming_the_folder(tmp_path: Path) -> None:
    (tmp_path / "ut1").mkdir()
    with pytest.raises(FileNotFoundError, match="nope"):
        list_files(Source("ut1", "ut1", tmp_path / "ut1"), "nope")


def test_junk_warnings_are_capped_but_counted(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.txt", "bad domain\n" * 100 + "ok.com\n")
    data = read_list(Source("src", "domains", path))
    assert data.junk_lines == 100
    assert len(data.problems) == MAX_WARNINGS_PER_FILE + 1
    assert "80 more junk lines" in data.problems[-1].message
    assert data.domains == ["ok.com"]


@pytest.mark.slow
def test_every_real_ut1_category_loads(ut1_dir: Path) -> None:
    source = Source("ut1", "ut1", ut1_dir)
    loaded = 0
    for folder in sorted(p for p in ut1_dir.iterdir() if p.is_dir()):
        if not any((folder / f).is_file() for f in ("domains", "urls")):
            continue
        data = read_list(source, folder.name)
        lines = sum(
            1
            for f in ("domains", "urls")
            if (folder / f).is_file()
            for ln in (folder / f).read_text(encoding="utf-8", errors="replace").splitlines()
            if ln.strip() and not ln.startswith("#")
        )
        # Every content line is either an entry or counted as junk: nothing silently dropped.
        assert len(data.domains) + len(data.urls) + data.junk_lines == lines, folder.name
        assert all(p.severity == "warning" for p in data.problems)
        loaded += 1
    assert loaded >= 60
    gambling = read_list(source, "gambling")
    assert len(gambling.domains) > 30000
    assert "1.0.0.1" in read_list(source, "doh").domains  # UT1 domains lines may be IPv4 literals


_line = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_-]{0,8}(\.[a-z0-9_-]{1,8}){0,3}\.[a-z][a-z0-9]{0,4}", fullmatch=True),
    st.from_regex(r"[0-9a-zA-Z._\-]{0,12}", fullmatch=True),
    st.sampled_from(["", "#c", "1.2.3.4", "0x7f.1", "a..b", ".a.com", "a.com.", "1001games.com", "A.COM"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, min_size=1, max_size=12))
def test_whole_file_fast_path_agrees_with_line_by_line(lines: list[str]) -> None:
    raw = ("\n".join(lines) + "\n").encode()
    fast = ListData("x")
    add_domain_file(fast, Path("f"), raw)
    slow = ListData("x")
    add_domain_lines(slow, Path("f"), lines)
    # Order may differ (the per-line path appends the lines it had to look at last): the index does not care.
    assert (sorted(fast.domains), fast.junk_lines) == (sorted(slow.domains), slow.junk_lines)
