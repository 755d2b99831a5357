"""Verification: python-tuf's ngclient on the network, and a re-check of an installed bundle offline.

`fetch_latest` runs the TUF client workflow (root chain, timestamp, snapshot, targets: signatures,
thresholds, versions, expiry, lengths, hashes) and returns a `VerifiedBundle`, a plain value object that
the store installs. Targets already in the cache with the right hash are not downloaded again.

`verify_installed` re-checks a bundle on disk without the network, at start-up: the root chain from the
install-time trust root, the bundle's signed targets metadata against it, and every file's length and
hash. Expiry is deliberately NOT checked there: a gateway cut off from the Department keeps enforcing its
last verified policy (the status and metrics show the expiry so someone notices).
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuf.api import exceptions
from tuf.api.metadata import Metadata, Root, TargetFile, Targets
from tuf.api.serialization import DeserializationError
from tuf.ngclient import Updater, UpdaterConfig

from classgate.agent.sync.errors import Reason, SyncError
from classgate.agent.sync.transport import CappedFetcher, DeadlineError, OversizedError, TruncatedError

MANIFEST_TARGET = "bundle.json"
MANIFEST_FORMAT = "classgate-bundle/1"
FILE_PREFIX = "policy/"
MAX_MANIFEST_FILES = 5000

# Metadata caps (bytes): far above what a classgate repository produces (targets.json for a bundle of
# 200 lists is ~40 KB), far below what would hurt a gateway.
UPDATER_CONFIG = UpdaterConfig(
    root_max_length=256 * 1024,
    timestamp_max_length=16 * 1024,
    snapshot_max_length=256 * 1024,
    targets_max_length=4 * 1024 * 1024,
    max_root_rotations=64,
)


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose every file was checked against metadata signed by the trusted keys."""

    version: int
    policy: str  # the policy file, relative to the bundle's root
    files: dict[str, Path]  # relative path -> verified local copy
    manifest: bytes
    targets_metadata: bytes  # the signed targets metadata that vouches for every file
    published: str = ""
    expires: dt.datetime | None = None  # earliest expiry of the trusted metadata at verification


def classify(error: BaseException) -> SyncError:
    """Map python-tuf / transport / OS errors onto our bounded reasons."""
    if isinstance(error, SyncError):
        return error
    checks: list[tuple[type[BaseException] | tuple[type[BaseException], ...], Reason]] = [
        ((OversizedError, exceptions.DownloadLengthMismatchError), "oversized"),
        (TruncatedError, "truncated"),
        ((DeadlineError, exceptions.SlowRetrievalError), "timeout"),
        (exceptions.DownloadHTTPError, "http_error"),
        (exceptions.DownloadError, "network"),
        (exceptions.ExpiredMetadataError, "expired"),
        (exceptions.BadVersionNumberError, "rollback"),
        (exceptions.UnsignedMetadataError, "bad_signature"),
        (exceptions.LengthOrHashMismatchError, "bad_hash"),
        ((DeserializationError, exceptions.RepositoryError, ValueError, KeyError), "bad_metadata"),
        (OSError, "install"),
    ]
    for types, reason in checks:
        if isinstance(error, types):
            return SyncError(reason, f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    return SyncError("internal", f"{type(error).__name__}: {error}")


def parse_manifest(data: bytes) -> dict[str, Any]:
    """The bundle manifest, checked for shape and for safe relative paths."""
    try:
        manifest = json.loads(data)
    except ValueError as e:
        raise SyncError("bad_bundle", f"bundle.json is not JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise SyncError("bad_bundle", f"bundle.json: not a {MANIFEST_FORMAT} manifest")
    version, files, policy = manifest.get("version"), manifest.get("files"), manifest.get("policy")
    if not isinstance(version, int) or version < 1:
        raise SyncError("bad_bundle", "bundle.json: version must be a positive integer")
    if not isinstance(files, list) or not 0 < len(files) <= MAX_MANIFEST_FILES:
        raise SyncError("bad_bundle", "bundle.json: files must be a non-empty list")
    for rel in files:
        if not isinstance(rel, str) or not _safe_relative(rel):
            raise SyncError("bad_bundle", f"bundle.json: unsafe file name {rel!r}")
    if policy not in files:
        raise SyncError("bad_bundle", "bundle.json: the policy file is not among the files")
    return manifest


def _safe_relative(rel: str) -> bool:
    return (bool(rel) and not rel.startswith("/") and "\\" not in rel and "\x00" not in rel
            and posixpath.normpath(rel) == rel and not rel.startswith("../") and rel != "..")


class Verifier:
    """The TUF client for one repository URL, its metadata and target cache under `sync_dir`."""

    def __init__(self, url: str, trust_root: bytes, sync_dir: Path, fetcher: CappedFetcher | None = None):
        self.base_url = url.rstrip("/") + "/"
        self.trust_root = trust_root
        self.metadata_dir = sync_dir / "metadata"
        self.cache_dir = sync_dir / "cache"
        self.fetcher = fetcher or CappedFetcher()

    def fetch_latest(self, active_version: int | None) -> tuple[VerifiedBundle | None, dt.datetime | None]:
        """(the newest bundle if newer than `active_version` else None, expiry of the trusted timestamp).

        Raises SyncError.
        """
        try:
            return self._fetch_latest(active_version)
        except Exception as e:
            raise classify(e) from e

    def _fetch_latest(self, active_version: int | None) -> tuple[VerifiedBundle | None, dt.datetime | None]:
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        updater = Updater(
            str(self.metadata_dir), self.base_url + "metadata/", str(self.cache_dir), self.base_url + "targets/",
            fetcher=self.fetcher, config=UPDATER_CONFIG, bootstrap=self.trust_root,
        )
        updater.refresh()
        expires = self._trusted_expiry()
        manifest_bytes = self._get(updater, MANIFEST_TARGET).read_bytes()
        manifest = parse_manifest(manifest_bytes)
        version = manifest["version"]
        if active_version is not None and version == active_version:
            return None, expires
        if active_version is not None and version < active_version:
            raise SyncError("rollback", f"bundle {version} is older than the active bundle {active_version}")
        files = {rel: self._get(updater, FILE_PREFIX + rel) for rel in manifest["files"]}
        targets_bytes = (self.metadata_dir / "targets.json").read_bytes()
        return VerifiedBundle(version, manifest["policy"], files, manifest_bytes, targets_bytes,
                              str(manifest.get("published", "")), expires), expires

    def _get(self, updater: Updater, target: str) -> Path:
        info = updater.get_targetinfo(target)
        if info is None:
            raise SyncError("bad_bundle", f"{target} is not a signed target of the repository")
        return Path(updater.find_cached_target(info) or updater.download_target(info))

    def _trusted_expiry(self) -> dt.datetime | None:
        """Earliest expiry among the trusted timestamp/snapshot/targets (what ngclient just accepted)."""
        dates = []
        for role in ("timestamp", "snapshot", "targets"):
            try:
                dates.append(Metadata.from_file(str(self.metadata_dir / f"{role}.json")).signed.expires)
            except (OSError, DeserializationError):
                continue
        return min(dates) if dates else None


def trusted_roots(trust_root: bytes, metadata_dir: Path) -> list[Root]:
    """The chain of root versions from the install-time trust root, each verified by its predecessor."""
    current = Metadata[Root].from_bytes(trust_root)
    current.signed.verify_delegate("root", current.signed_bytes, current.signatures)
    chain = [current.signed]
    history = metadata_dir / "root_history"
    while True:
        path = history / f"{current.signed.version + 1}.root.json"
        if not path.is_file():
            return chain
        new = Metadata[Root].from_bytes(path.read_bytes())
        if new.signed.version != current.signed.version + 1:
            raise exceptions.BadVersionNumberError(f"{path}: version {new.signed.version}")
        current.signed.verify_delegate("root", new.signed_bytes, new.signatures)
        new.signed.verify_delegate("root", new.signed_bytes, new.signatures)
        current = new
        chain.append(new.signed)


def verify_installed(bundle_dir: Path, trust_root: bytes, metadata_dir: Path) -> VerifiedBundle:
    """Re-verify an installed bundle (layout of agent.sync.store) without the network. Raises SyncError."""
    try:
        targets_bytes = (bundle_dir / "targets.json").read_bytes()
        targets_md = Metadata[Targets].from_bytes(targets_bytes)
        roots = trusted_roots(trust_root, metadata_dir)
        # The bundle was verified under some root of the chain; a later key rotation re-signs targets,
        # but a gateway may hold the older bundle until its next successful sync.
        for root in reversed(roots):
            try:
                root.verify_delegate("targets", targets_md.signed_bytes, targets_md.signatures)
                break
            except exceptions.UnsignedMetadataError:
                continue
        else:
            raise exceptions.UnsignedMetadataError("targets metadata not signed by any trusted root's keys")
        targets = targets_md.signed.targets
        manifest_bytes = _checked(bundle_dir / MANIFEST_TARGET, targets.get(MANIFEST_TARGET)).read_bytes()
        manifest = parse_manifest(manifest_bytes)
        files = {rel: _checked(bundle_dir / "files" / rel, targets.get(FILE_PREFIX + rel))
                 for rel in manifest["files"]}
    except Exception as e:
        raise classify(e) from e
    return VerifiedBundle(manifest["version"], manifest["policy"], files, manifest_bytes, targets_bytes,
                          str(manifest.get("published", "")), targets_md.signed.expires)


def _checked(path: Path, info: TargetFile | None) -> Path:
    if info is None:
        raise SyncError("bad_bundle", f"{path.name} is not signed in the bundle's targets metadata")
    with open(path, "rb") as f:
        info.verify_length_and_hashes(f)
    return path
