"""`classgate lists fetch ut1`: download UT1 category archives and unpack them safely.

Each category is `<url>/<category>.tar.gz` holding `<category>/domains`, `<category>/urls`, ... The archive
comes from outside, so unpacking trusts nothing in it:
  - only regular files, only at `<category>/<name>` (no absolute paths, `..`, links, devices, sub-folders),
  - caps on the archive size, the number of members, each file and the total unpacked size
    (a gzip bomb stops at the cap, not at the disk's end),
  - unpacked into a temporary folder and swapped in with a rename, so a failed fetch leaves the old lists.
The lists are then published with `classgate department publish`, which validates them.

This is the one-off form (`classgate lists fetch ut1 DIR`); a policy's ut1 source with a `url` is fetched by
agent/department/listfetch.py, which uses `unpack` and `swap_in` from here, with conditional requests and
the shrink guard on top.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions

from classgate.agent.department.errors import DepartmentError
from classgate.agent.sync.transport import CappedFetcher, Limits

DEFAULT_URL = "https://dsi.ut-capitole.fr/blacklists/download"
# Categories a school filter usually blocks (see the UT1 site for all of them).
DEFAULT_CATEGORIES = ("adult", "agressif", "dating", "drogue", "gambling", "hacking", "malware", "mixed_adult",
                      "phishing", "redirector", "vpn", "warez")
CATEGORY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Caps:
    archive_bytes: int = 200 * 1024 * 1024  # adult.tar.gz is ~50 MB today
    members: int = 64
    file_bytes: int = 512 * 1024 * 1024
    total_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    category: str
    files: tuple[str, ...]
    archive_bytes: int
    unpacked_bytes: int


def parse_categories(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_CATEGORIES
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    bad = [n for n in names if not CATEGORY_NAME.match(n)]
    if bad or not names:
        raise DepartmentError(f"bad category name(s): {', '.join(bad) or '(none given)'}")
    return names


def fetch_categories(dest: Path, categories: tuple[str, ...], url: str = DEFAULT_URL, caps: Caps = Caps(),
                     limits: Limits | None = None) -> list[Fetched]:
    """Fetch every category; stops at the first failure (categories done so far stay updated)."""
    dest.mkdir(parents=True, exist_ok=True)
    fetcher = CappedFetcher(limits or Limits(max_bytes=caps.archive_bytes))
    return [fetch_category(dest, name, url, caps, fetcher) for name in categories]


def fetch_category(dest: Path, category: str, url: str, caps: Caps, fetcher: CappedFetcher) -> Fetched:
    archive_url = f"{url.rstrip('/')}/{category}.tar.gz"
    with tempfile.TemporaryDirectory(prefix=f".{category}.", dir=dest) as work:
        archive = Path(work) / "archive.tar.gz"
        try:
            with fetcher.download_file(archive_url, caps.archive_bytes) as data, open(archive, "wb") as out:
                shutil.copyfileobj(data, out)
        except exceptions.DownloadError as e:
            raise DepartmentError(f"{category}: download from {archive_url} failed: {e}") from None
        unpacked = Path(work) / "unpacked"
        files, total = unpack(archive, unpacked, category, caps)
        swap_in(unpacked / category, dest / category)
        return Fetched(category, tuple(files), archive.stat().st_size, total)


def unpack(archive: Path, out: Path, category: str, caps: Caps) -> tuple[list[str], int]:
    """Unpack `<category>/<file>` members only; DepartmentError on anything else or past a cap."""
    files: list[str] = []
    total = 0
    (out / category).mkdir(parents=True)
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for count, member in enumerate(tar, start=1):
                if count > caps.members:
                    raise DepartmentError(f"{category}: more than {caps.members} files in the archive")
                name = member.name.removeprefix("./").rstrip("/")
                if member.isdir() and name == category:
                    continue
                parts = name.split("/")
                if (not member.isfile() or len(parts) != 2 or parts[0] != category
                        or not FILE_NAME.match(parts[1])):
                    raise DepartmentError(f"{category}: refusing archive member {member.name!r} "
                                          "(only regular files <category>/<name> are accepted)")
                written = _copy_capped(tar, member, out / category / parts[1], caps.file_bytes,
                                       caps.total_bytes - total)
                total += written
                files.append(parts[1])
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DepartmentError(f"{category}: not a readable tar.gz archive ({e})") from None
    if "domains" not in files and "urls" not in files:
        raise DepartmentError(f"{category}: the archive has neither domains nor urls")
    return files, total


def _copy_capped(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, file_cap: int, left: int) -> int:
    # The header's size can lie in a crafted archive: count the bytes actually read.
    source = tar.extractfile(member)
    if source is None:
        raise DepartmentError(f"{member.name}: unreadable")
    written = 0
    with source, open(dest, "xb") as out:
        while chunk := source.read(1024 * 1024):
            written += len(chunk)
            if written > file_cap or written > left:
                raise DepartmentError(f"{member.name}: larger than the size cap "
                                      f"({min(file_cap, left)} bytes left)")
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())  # on disk before the folder is swapped in by rename
    os.chmod(dest, 0o644)
    return written


def swap_in(new: Path, current: Path) -> None:
    """Replace the category folder with two renames; the old one is removed only after."""
    old = current.with_name(f".{current.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        os.replace(current, old)
    os.replace(new, current)
    with contextlib.suppress(OSError):
        shutil.rmtree(old)
