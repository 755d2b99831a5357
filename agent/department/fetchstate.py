"""What the last fetch of a list left behind: the server's validators and the hashes of what was installed.

Kept next to the list, in a small JSON file that is never part of a bundle (only `domains`/`urls` files of a
ut1 list and the file of a single-file source are published):

    lists/hostsvn/gambling/.domain.txt.fetch.json    beside a single-file source
    lists/ut1/gambling/.fetch.json                   inside a ut1 list's folder (swapped in with it)

The validators are sent again only when the list on disk is still, byte for byte, what that fetch installed:
a list edited or replaced by hand is fetched whole, never "not modified" against a copy the server never sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from classgate.agent.department.conditional import Validators

FORMAT = 1


@dataclass(frozen=True)
class DownloadState:
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class ListState:
    downloads: dict[str, DownloadState] = field(default_factory=dict)  # download name -> its validators
    content: dict[str, str] = field(default_factory=dict)  # installed file name -> sha256
    entries: int = 0
    fetched: str = ""  # UTC, ISO 8601

    def validators(self, name: str, url: str) -> Validators:
        """The validators for a download, if the last fetch got it from the same address."""
        known = self.downloads.get(name)
        if known is None or known.url != url:
            return Validators()
        return Validators(known.etag, known.last_modified)

    def to_bytes(self) -> bytes:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1, sort_keys=True).encode() + b"\n"


def state_path(target: Path, is_folder: bool) -> Path:
    return target / ".fetch.json" if is_folder else target.with_name(f".{target.name}.fetch.json")


def load_state(path: Path) -> ListState | None:
    """The recorded state, or None when there is none or it cannot be read (then the list is fetched whole)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            return None
        downloads = {name: DownloadState(**value) for name, value in raw["downloads"].items()}
        return ListState(downloads, dict(raw["content"]), int(raw["entries"]), str(raw["fetched"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def sha256_of(files: dict[str, Path]) -> dict[str, str]:
    out = {}
    for name, path in files.items():
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
        out[name] = digest.hexdigest()
    return out
