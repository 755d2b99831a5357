"""`classgate lists fetch ut1`: real archives from a real local server; unsafe archives are refused whole."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from classgate.agent.commands.lists import lists
from classgate.agent.department.errors import DepartmentError
from classgate.agent.department.ut1 import Caps, fetch_categories, parse_categories


def make_archive(path: Path, members: list[tuple[str, str, bytes]]) -> None:
    """members: (name, kind, data); kind is file | dir | symlink | hardlink | fifo."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            info.linkname = data.decode()
            tar.addfile(info)


GOOD = [("gambling", "dir", b""), ("gambling/domains", "file", b"casino.example\n"),
        ("gambling/urls", "file", b"casino.example/poker\n"), ("gambling/usage", "file", b"black\n")]


@pytest.fixture
def upstream(tmp_path, serve):
    folder = tmp_path / "upstream"
    folder.mkdir()
    make_archive(folder / "gambling.tar.gz", GOOD)
    make_archive(folder / "games.tar.gz", [("./games/domains", "file", b"game.example\n")])
    return folder, serve(folder)


def test_fetch_two_categories_with_the_cli(tmp_path, upstream):
    _, server = upstream
    dest = tmp_path / "ut1"
    result = CliRunner().invoke(lists, ["fetch", "ut1", str(dest), "--url", server.url, "--categories",
                                        "gambling,games"])
    assert result.exit_code == 0, result.output
    assert (dest / "gambling" / "domains").read_text() == "casino.example\n"
    assert (dest / "games" / "domains").read_text() == "game.example\n"
    assert "CC BY-SA 4.0" in result.output
    assert sorted(p.name for p in dest.iterdir()) == ["gambling", "games"]  # no temp folders left


@pytest.mark.parametrize(("members", "message"), [
    pytest.param([*GOOD, ("../evil", "file", b"x")], "refusing archive member '../evil'", id="dotdot"),
    pytest.param([*GOOD, ("gambling/../../evil", "file", b"x")], "refusing", id="dotdot-inside"),
    pytest.param([*GOOD, ("/etc/evil", "file", b"x")], "refusing", id="absolute"),
    pytest.param([*GOOD, ("gambling/link", "symlink", b"/etc/passwd")], "refusing", id="symlink"),
    pytest.param([*GOOD, ("gambling/hard", "hardlink", b"gambling/domains")], "refusing", id="hardlink"),
    pytest.param([*GOOD, ("gambling/fifo", "fifo", b"")], "refusing", id="fifo"),
    pytest.param([*GOOD, ("gambling/sub/domains", "file", b"x")], "refusing", id="subfolder"),
    pytest.param([*GOOD, ("other/domains", "file", b"x")], "refusing", id="other-category"),
    pytest.param([("gambling/usage", "file", b"black\n")], "neither domains nor urls", id="no-lists"),
    pytest.param([(f"gambling/f{i}", "file", b"x") for i in range(70)], "more than 64 files", id="too-many"),
    pytest.param([("gambling/domains", "file", b"x" * 5000)], "larger than the size cap", id="file-too-big"),
])
def test_unsafe_archive_is_refused_and_old_lists_stay(tmp_path, upstream, members, message):
    folder, server = upstream
    dest = tmp_path / "ut1"
    fetch_categories(dest, ("gambling",), server.url)
    make_archive(folder / "gambling.tar.gz", members)
    with pytest.raises(DepartmentError, match=message):
        fetch_categories(dest, ("gambling",), server.url, Caps(file_bytes=4096))
    assert (dest / "gambling" / "domains").read_text() == "casino.example\n"
    assert not (tmp_path / "evil").exists() and not Path("/etc/evil").exists()
    assert sorted(p.name for p in dest.iterdir()) == ["gambling"]


def test_gzip_bomb_stops_at_the_total_cap(tmp_path, upstream):
    folder, server = upstream
    make_archive(folder / "gambling.tar.gz", [("gambling/domains", "file", b"\0" * (8 * 1024 * 1024))])
    assert (folder / "gambling.tar.gz").stat().st_size < 64 * 1024
    with pytest.raises(DepartmentError, match="size cap"):
        fetch_categories(tmp_path / "ut1", ("gambling",), server.url, Caps(total_bytes=1024 * 1024))


@pytest.mark.parametrize(("behavior", "message"), [("500", "HTTP 500"), ("garbage", "not a readable tar.gz"),
                                                    ("html", "not a readable tar.gz"), ("endless", "cap")])
def test_bad_downloads(tmp_path, upstream, behavior, message):
    _, server = upstream
    server.on("gambling", behavior)
    with pytest.raises(DepartmentError, match=message):
        fetch_categories(tmp_path / "ut1", ("gambling",), server.url, Caps(archive_bytes=1024 * 1024))


def test_missing_category_is_a_clear_cli_error(tmp_path, upstream):
    _, server = upstream
    result = CliRunner().invoke(lists, ["fetch", "ut1", str(tmp_path / "ut1"), "--url", server.url,
                                        "--categories", "nosuch"])
    assert result.exit_code == 1 and "nosuch: download" in result.output and "HTTP 404" in result.output


@pytest.mark.parametrize(("text", "ok"), [(None, True), ("adult,gambling", True), ("a/b", False),
                                          ("../x", False), (" , ", False)])
def test_category_names(text, ok):
    if ok:
        assert parse_categories(text)
    else:
        with pytest.raises(DepartmentError):
            parse_categories(text)
