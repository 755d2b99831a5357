"""The Department's TUF repository on disk: create it, re-sign timestamp/snapshot, rotate keys.

Layout of DIR:

    department.json     settings (expiry of each role)
    keys/               private keys (see agent.department.keys); NEVER served
    repository/         what the web server serves, and nothing else:
        metadata/       <N>.root.json, root.json, timestamp.json, <N>.snapshot.json, <N>.targets.json
        targets/        <sha256>.<name> for every file of every bundle (consistent snapshots)
    fleet.json          gateways' last reports (written by `classgate department serve`)

Consistent snapshots (hash-prefixed targets, version-prefixed metadata) mean a file never changes once
published, so caches and mirrors can keep anything but `timestamp.json` forever, and a gateway that reads
`timestamp.json` mid-publish still finds every file it points to. Writes happen in the order files ->
targets -> snapshot -> timestamp for the same reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from classgate.agent.department import keys as keystore
from classgate.agent.department.errors import DepartmentError
from classgate.policies.atomicfile import atomic_write

DEFAULT_EXPIRY_DAYS = {"root": 365, "targets": 180, "snapshot": 7, "timestamp": 1}
SETTINGS_FILE = "department.json"
_SERIALIZER = JSONSerializer(compact=True)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Repository:
    """An opened Department repository. Methods that change it hold an exclusive lock on DIR."""

    root_dir: Path
    keys_dir: Path
    expiry_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_EXPIRY_DAYS))

    @property
    def metadata_dir(self) -> Path:
        return self.root_dir / "repository" / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.root_dir / "repository" / "targets"

    # --- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, root_dir: Path, keys_dir: Path | None = None) -> Repository:
        settings_path = root_dir / SETTINGS_FILE
        if not settings_path.is_file():
            raise DepartmentError(f"{root_dir} is not a classgate Department repository (no {SETTINGS_FILE}); "
                                  "create one with `classgate department init`")
        try:
            settings = json.loads(settings_path.read_text())
            expiry = {**DEFAULT_EXPIRY_DAYS, **{k: int(v) for k, v in settings["expiry_days"].items()}}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise DepartmentError(f"{settings_path}: unreadable settings ({e})") from None
        return cls(root_dir, keys_dir or root_dir / "keys", expiry)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time: the refresh timer must not interleave with a publish."""
        self.root_dir.mkdir(parents=True, exist_ok=True)
        with open(self.root_dir / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- reading metadata --------------------------------------------------------------------------

    def load(self, role: str) -> Metadata[Any]:
        """The newest metadata of a top-level role."""
        if role == "timestamp":
            return Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
        versions = sorted(
            int(p.name.split(".", 1)[0])
            for p in self.metadata_dir.glob(f"*.{role}.json")
            if p.name.split(".", 1)[0].isdigit()
        )
        if not versions:
            raise DepartmentError(f"{self.metadata_dir}: no {role} metadata")
        return Metadata.from_file(str(self.metadata_dir / f"{versions[-1]}.{role}.json"))

    def root(self) -> Metadata[Root]:
        return self.load("root")

    # --- signing and writing -----------------------------------------------------------------------

    def expires(self, role: str, now: dt.datetime | None) -> dt.datetime:
        return (now or utcnow()) + dt.timedelta(days=self.expiry_days[role])

    def signers(self, role: str, root: Root) -> list[keystore.KeyPair]:
        """Threshold-many private keys of `role`, or a DepartmentError that says where they should be."""
        role_info = root.roles[role]
        pairs = keystore.load_role_keys(self.keys_dir, role, set(role_info.keyids))
        if len(pairs) < role_info.threshold:
            where = "kept OFFLINE: mount it and pass --keys" if role in keystore.OFFLINE_ROLES else "missing"
            raise DepartmentError(
                f"signing {role} needs {role_info.threshold} key(s) of {role}, found {len(pairs)} in "
                f"{self.keys_dir / role} (the {role} key is {where})"
            )
        return pairs[: max(role_info.threshold, len(pairs))]

    def write(self, md: Metadata[Any], signers: list[keystore.KeyPair]) -> None:
        """Sign and write one role's metadata under its consistent-snapshot name."""
        md.signatures.clear()
        for pair in signers:
            md.sign(pair.signer, append=True)
        data = md.to_bytes(_SERIALIZER)
        role = md.signed.type
        if role == "timestamp":
            atomic_write(self.metadata_dir / "timestamp.json", data)
            return
        atomic_write(self.metadata_dir / f"{md.signed.version}.{role}.json", data)
        if role == "root":  # plain root.json for humans and tools; gateways only read <N>.root.json
            atomic_write(self.metadata_dir / "root.json", data)

    def sign_snapshot_and_timestamp(self, now: dt.datetime | None, *, new_snapshot: bool = True) -> None:
        """Point snapshot at the newest targets and timestamp at the newest snapshot."""
        root = self.root().signed
        if new_snapshot:
            targets_md = self.load("targets")
            targets_bytes = (self.metadata_dir / f"{targets_md.signed.version}.targets.json").read_bytes()
            snapshot = self.load("snapshot")
            snapshot.signed.version += 1
            snapshot.signed.expires = self.expires("snapshot", now)
            snapshot.signed.meta["targets.json"] = _metafile(targets_md.signed.version, targets_bytes)
            self.write(snapshot, self.signers("snapshot", root))
        snapshot = self.load("snapshot")
        snapshot_bytes = (self.metadata_dir / f"{snapshot.signed.version}.snapshot.json").read_bytes()
        timestamp = self.load("timestamp")
        timestamp.signed.version += 1
        timestamp.signed.expires = self.expires("timestamp", now)
        timestamp.signed.snapshot_meta = _metafile(snapshot.signed.version, snapshot_bytes)
        self.write(timestamp, self.signers("timestamp", root))


def _metafile(version: int, data: bytes) -> MetaFile:
    # Length and hash let the gateway refuse an oversized or swapped file before it parses it.
    return MetaFile(version=version, length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()})


@dataclass(frozen=True)
class InitResult:
    root_dir: Path
    keys: dict[str, list[Path]]  # role -> private key files
    thresholds: dict[str, int]


def init_repository(
    root_dir: Path,
    key_counts: dict[str, int] | None = None,
    thresholds: dict[str, int] | None = None,
    expiry_days: dict[str, int] | None = None,
    now: dt.datetime | None = None,
) -> InitResult:
    """Create keys and version-1 metadata (an empty bundle is not published: `publish` does that)."""
    counts = {role: 1 for role in keystore.ROLES} | (key_counts or {})
    thresh = {role: 1 for role in keystore.ROLES} | (thresholds or {})
    for role in keystore.ROLES:
        if not 1 <= thresh[role] <= counts[role]:
            raise DepartmentError(
                f"{role}: the threshold ({thresh[role]}) must be between 1 and the number of keys ({counts[role]})"
            )
    if (root_dir / SETTINGS_FILE).exists() or (root_dir / "keys").exists():
        raise DepartmentError(f"{root_dir} already holds a repository; refusing to overwrite its keys")

    expiry = {**DEFAULT_EXPIRY_DAYS, **(expiry_days or {})}
    repo = Repository(root_dir, root_dir / "keys", expiry)
    with repo.locked():
        atomic_write(root_dir / SETTINGS_FILE, json.dumps({"format": 1, "expiry_days": expiry}, indent=2).encode())
        repo.keys_dir.mkdir(mode=0o700)
        root = Root(expires=repo.expires("root", now), consistent_snapshot=True)
        key_files: dict[str, list[Path]] = {}
        signers: dict[str, list[keystore.KeyPair]] = {}
        for role in keystore.ROLES:
            root.roles[role] = Role([], thresh[role])
            key_files[role], signers[role] = [], []
            for _ in range(counts[role]):
                pair, pem = keystore.generate()
                root.add_key(pair.public, role)
                key_files[role].append(keystore.write_private(repo.keys_dir / role, pair, pem))
                signers[role].append(pair)
        repo.write(Metadata(root), signers["root"])
        repo.write(Metadata(Targets(expires=repo.expires("targets", now))), signers["targets"])
        targets_bytes = (repo.metadata_dir / "1.targets.json").read_bytes()
        snapshot = Snapshot(expires=repo.expires("snapshot", now))
        snapshot.meta["targets.json"] = _metafile(1, targets_bytes)
        repo.write(Metadata(snapshot), signers["snapshot"])
        snapshot_bytes = (repo.metadata_dir / "1.snapshot.json").read_bytes()
        timestamp = Timestamp(expires=repo.expires("timestamp", now), snapshot_meta=_metafile(1, snapshot_bytes))
        repo.write(Metadata(timestamp), signers["timestamp"])
        repo.targets_dir.mkdir(parents=True, exist_ok=True)
    return InitResult(root_dir, key_files, thresh)


def refresh(repo: Repository, now: dt.datetime | None = None, *, force_snapshot: bool = False) -> tuple[int, int]:
    """Re-sign timestamp (always) and snapshot (when half its lifetime is gone, or forced).

    Re-signing the snapshot only when needed keeps an idle poll at one small download per gateway.
    Returns (snapshot version, timestamp version).
    """
    now = now or utcnow()
    with repo.locked():
        snapshot = repo.load("snapshot").signed
        half_life = dt.timedelta(days=repo.expiry_days["snapshot"]) / 2
        renew = force_snapshot or snapshot.expires - now < half_life
        repo.sign_snapshot_and_timestamp(now, new_snapshot=renew)
        return repo.load("snapshot").signed.version, repo.load("timestamp").signed.version


def rotate_key(repo: Repository, role: str, now: dt.datetime | None = None) -> tuple[int, list[Path], list[Path]]:
    """Replace every key of `role` with fresh ones through a new root version.

    The new root is signed by a threshold of the OLD root keys (so gateways accept it) and, when root itself
    rotates, by the new ones too (so it is valid on its own). Metadata signed by the rotated role is re-signed
    with the new keys and a new version. Returns (new root version, new key files, retired key files).
    """
    if role not in keystore.ROLES:
        raise DepartmentError(f"unknown role {role!r}; one of {', '.join(keystore.ROLES)}")
    now = now or utcnow()
    with repo.locked():
        root_md = repo.root()
        old_root_signers = repo.signers("root", root_md.signed)
        old_role = root_md.signed.roles[role]
        old_ids = list(old_role.keyids)
        # Every key this needs must be at hand before anything changes: no half-done rotation. The keys
        # being replaced are not needed (they may be the lost or stolen ones).
        for needed in {"snapshot", "timestamp"} - {role}:
            repo.signers(needed, root_md.signed)

        new_pairs: list[keystore.KeyPair] = []
        new_files: list[Path] = []
        for keyid in old_ids:
            root_md.signed.revoke_key(keyid, role)
        for _ in old_ids:
            pair, pem = keystore.generate()
            root_md.signed.add_key(pair.public, role)
            new_files.append(keystore.write_private(repo.keys_dir / role, pair, pem))
            new_pairs.append(pair)
        root_md.signed.version += 1
        root_md.signed.expires = repo.expires("root", now)
        root_signers = old_root_signers + (new_pairs if role == "root" else [])
        repo.write(root_md, root_signers)

        if role == "targets":
            targets = repo.load("targets")
            targets.signed.version += 1
            targets.signed.expires = repo.expires("targets", now)
            repo.write(targets, new_pairs)
        if role in ("targets", "snapshot"):
            repo.sign_snapshot_and_timestamp(now, new_snapshot=True)
        else:
            repo.sign_snapshot_and_timestamp(now, new_snapshot=False)

        retired = [p for k in old_ids if (p := keystore.retire(repo.keys_dir, role, k)) is not None]
        return root_md.signed.version, new_files, retired


def prune(repo: Repository, keep: int = 3) -> tuple[int, int]:
    """Delete targets and snapshot/targets metadata older than the newest `keep` bundles.

    Root metadata is never deleted (gateways walk the root chain from their install-time root). A gateway
    in the middle of a poll only needs the newest versions, so `keep` must be at least 2.
    Returns (files deleted, bytes freed).
    """
    if keep < 2:
        raise DepartmentError("--keep must be at least 2 (a gateway mid-poll may still read the previous one)")
    with repo.locked():
        removed = freed = 0
        newest = repo.load("targets").signed.version
        kept_targets: set[Path] = set()
        for version in range(max(1, newest - keep + 1), newest + 1):
            path = repo.metadata_dir / f"{version}.targets.json"
            if path.is_file():
                targets: Metadata[Targets] = Metadata.from_file(str(path))
                for name, info in targets.signed.targets.items():
                    directory, _, base = name.rpartition("/")
                    kept_targets.add(repo.targets_dir / directory / f"{info.hashes['sha256']}.{base}")
        snapshot_newest = repo.load("snapshot").signed.version
        doomed = [p for p in repo.targets_dir.rglob("*") if p.is_file() and p not in kept_targets]
        for role, latest in (("targets", newest), ("snapshot", snapshot_newest)):
            doomed += [p for p in repo.metadata_dir.glob(f"*.{role}.json")
                       if p.name.split(".", 1)[0].isdigit() and int(p.name.split(".", 1)[0]) <= latest - keep]
        for path in doomed:
            freed += path.stat().st_size
            path.unlink()
            removed += 1
        return removed, freed
