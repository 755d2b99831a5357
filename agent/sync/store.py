"""Installed bundles on the gateway: staged, then renamed into place; `current` swapped atomically.

    sync/
      metadata/        python-tuf's trusted metadata (root_history/, timestamp.json ...)
      cache/           python-tuf's verified target downloads (reused when a list did not change)
      bundles/v<N>/    an installed bundle: targets.json (signed), bundle.json, files/<policy and lists>
      current          symlink -> bundles/v<N>   (what the gateway enforces)
      previous         symlink -> bundles/v<M>   (kept for the admin's rollback; pruned beyond that)

Every bundle is re-verified when loaded (agent.sync.verify.verify_installed): a corrupted or tampered file
on disk makes the store fall back to the next verified bundle, newest first.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from classgate.agent.sync.errors import NoBundleError, SyncError
from classgate.agent.sync.verify import MANIFEST_TARGET, VerifiedBundle, verify_installed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    """A bundle on disk that verified; `policy_path` is what the proxy loads."""

    bundle: VerifiedBundle
    path: Path

    @property
    def version(self) -> int:
        return self.bundle.version

    @property
    def policy_path(self) -> Path:
        return self.path / "files" / self.bundle.policy


@dataclass(frozen=True)
class Staged:
    bundle: VerifiedBundle
    path: Path  # a temporary folder with the final layout, not yet in bundles/

    @property
    def policy_path(self) -> Path:
        return self.path / "files" / self.bundle.policy


class BundleStore:
    def __init__(self, sync_dir: Path, trust_root: bytes):
        self.sync_dir = sync_dir
        self.trust_root = trust_root
        self.bundles_dir = sync_dir / "bundles"

    # --- one writer ----------------------------------------------------------------------------------

    def acquire(self) -> int:
        """Block until this process is the only one changing the sync folder (a cron `classgate sync`
        next to `classgate run --sync-from` on the same state dir); returns the lock's fd."""
        self.sync_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.sync_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    @staticmethod
    def release(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    # --- reading -----------------------------------------------------------------------------------

    def load(self) -> tuple[Installed, list[str]]:
        """The newest bundle on disk that re-verifies, `current` first; plus a note per bundle skipped.

        Raises NoBundleError when none verifies.
        """
        notes: list[str] = []
        for candidate in self._candidates():
            try:
                bundle = verify_installed(candidate, self.trust_root, self.sync_dir / "metadata")
            except SyncError as e:
                notes.append(f"installed bundle {candidate.name} does not verify ({e.reason}: {e}); skipped")
                log.error("%s", notes[-1])
                continue
            return Installed(bundle, candidate), notes
        raise NoBundleError("no verified bundle on disk" + (": " + "; ".join(notes) if notes else ""))

    def _candidates(self) -> list[Path]:
        ordered: list[Path] = []
        for link in ("current", "previous"):
            target = self.sync_dir / link
            if target.is_symlink() and target.resolve().is_dir():
                ordered.append(target.resolve())
        if self.bundles_dir.is_dir():
            others = [p for p in self.bundles_dir.iterdir() if p.is_dir() and _version_of(p) is not None]
            ordered += sorted(others, key=lambda p: _version_of(p) or 0, reverse=True)
        unique: list[Path] = []
        for p in ordered:
            if p not in unique:
                unique.append(p)
        return unique

    # --- writing -----------------------------------------------------------------------------------

    def stage(self, bundle: VerifiedBundle) -> Staged:
        """Copy a verified bundle into a temporary folder with its final layout (for validation)."""
        self.bundles_dir.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f".v{bundle.version}.", dir=self.bundles_dir))
        try:
            _write(path / "targets.json", bundle.targets_metadata)
            _write(path / MANIFEST_TARGET, bundle.manifest)
            for rel, source in bundle.files.items():
                # Copies, not links: python-tuf overwrites cache files in place on the next download.
                dest = path / "files" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
                with open(dest, "rb") as f:
                    os.fsync(f.fileno())
        except OSError as e:
            self.discard(Staged(bundle, path))
            raise SyncError("install", f"staging bundle {bundle.version}: {e}") from e
        return Staged(bundle, path)

    def discard(self, staged: Staged) -> None:
        shutil.rmtree(staged.path, ignore_errors=True)

    def commit(self, staged: Staged) -> Installed:
        """Rename the staged folder to bundles/v<N>, then point `current` at it (previous kept)."""
        final = self.bundles_dir / f"v{staged.bundle.version}"
        try:
            if final.exists():  # a corrupted copy of the same version: replace it
                trash = Path(tempfile.mkdtemp(prefix=".trash.", dir=self.bundles_dir))
                os.replace(final, trash / final.name)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(staged.path, final)
            old = self._link_target("current")
            self._set_link("current", final)
            if old is not None and old != final:
                self._set_link("previous", old)
            _fsync_dir(self.sync_dir)
        except OSError as e:
            raise SyncError("install", f"installing bundle {staged.bundle.version}: {e}") from e
        self._prune()
        return Installed(staged.bundle, final)

    def point_current(self, path: Path) -> None:
        """Put `current` back on an installed bundle (after the proxy refused to activate a new one)."""
        newer = self._link_target("current")
        self._set_link("current", path)
        if newer is not None and newer != path:
            self._set_link("previous", newer)

    def _link_target(self, name: str) -> Path | None:
        link = self.sync_dir / name
        return link.resolve() if link.is_symlink() else None

    def _set_link(self, name: str, target: Path) -> None:
        tmp = self.sync_dir / f".{name}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.path.relpath(target, self.sync_dir), tmp)
        os.replace(tmp, self.sync_dir / name)  # rename(2) over the old link: atomic

    def _prune(self) -> None:
        keep = {self._link_target("current"), self._link_target("previous")}
        for p in self.bundles_dir.iterdir():
            if p.is_dir() and p.resolve() not in keep and (
                p.name.startswith((".trash.", ".v")) or _version_of(p)  # leftovers of an interrupted run
            ):
                shutil.rmtree(p, ignore_errors=True)

    def prune_cache(self, keep: VerifiedBundle) -> None:
        """Drop cached downloads the current bundle no longer uses (old list versions)."""
        cache = self.sync_dir / "cache"
        used = {p.resolve() for p in keep.files.values()}
        if cache.is_dir():
            for p in cache.iterdir():
                if p.is_file() and p.resolve() not in used and p.name != MANIFEST_TARGET:
                    with contextlib.suppress(OSError):
                        p.unlink()


def _version_of(path: Path) -> int | None:
    name = path.name
    return int(name[1:]) if name.startswith("v") and name[1:].isdigit() else None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
